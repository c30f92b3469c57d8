"""`deputy quickstart`: the whole loop on the embedded defaults, offline, on the retail example.

Start the platform (SQLite in the data directory) and its API; start the retail example's order
system (`examples/retail`, a checkout's) as the agent's tool backend and register it; build the
agent from the retail policy and tool descriptions; prove it in the sandbox (a simulation of
the same backend, each trial on a fresh copy of its data); file the version as a proposal with
the scorecard as evidence and show it for review (approve at the prompt, or `--yes`); deploy it;
chat with it in the terminal. Every step after the first goes through the HTTP API, as any
client would. Steps that need the owner key run on first start only (the key is shown once)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deputy.cli.output import EXIT_ERROR, fail, out
from deputy.cli.server import (
    BackgroundServer,
    HostOption,
    LogLevel,
    PortOption,
    build_jobs,
    configure_server_logging,
    load_server_settings,
    print_bootstrap,
    public_url,
)
from deputy.sdk import DeputyClient

if TYPE_CHECKING:
    from deputy.config import Settings
    from deputy.domain.builds import Build
    from deputy.domain.sandbox import SandboxRun
    from deputy.services.platform import Platform
    from deputy.services.workspaces import Bootstrap

RETAIL_BACKEND = "examples.retail.sandbox:world_factory"
"""The retail example's simulation, registered as the sandbox backend `retail`."""
RETAIL_SOURCE = "retail"
SAMPLE_GOAL = (
    "Help customers of our online store with their orders, returns, exchanges and accounts."
)
SAMPLE_CONSTRAINTS = ("Never issue refunds over $200 without a human.",)
SAMPLE_BUILD_TIMEOUT = 1800.0
SANDBOX_TIMEOUT = 3600.0


@dataclass
class QuickstartRun:
    """What the quickstart steps hand on to each other."""

    settings: Settings
    url: str
    build_model: str = "none"
    scenarios: int = 1
    approve: bool = False
    chat: bool = False
    platform: Platform | None = None
    bootstrap: Bootstrap | None = None
    server: BackgroundServer | None = None
    owner_key: str | None = None
    retail_url: str | None = None
    tool_source_id: str | None = None
    build_id: str | None = None
    agent_id: str | None = None
    version: int | None = None
    sandbox_run_id: str | None = None
    proposal_id: str | None = None
    deployed: bool = False
    widget_key: str | None = None
    resources: ExitStack = field(default_factory=ExitStack)

    def client(self) -> DeputyClient:
        """The platform seen through its API, as any other client sees it."""
        return DeputyClient(self.url, self.owner_key, require_key=False)

    def note(self, text: str) -> None:
        out().print(f"      {text}", markup=False)


QuickstartStep = tuple[str, Callable[[QuickstartRun], None]]


def retail_example_available() -> bool:
    """Whether the retail example (a Deputy checkout's `examples/retail`, run from the
    checkout) and its data can be loaded."""
    checkout = Path.cwd()
    if (checkout / "examples" / "retail").is_dir() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        from examples.retail.store import default_db_path
    except ImportError:
        return False
    return default_db_path().is_file()


def _prepare(run: QuickstartRun) -> None:
    from deputy.services.startup import prepare

    run.platform, run.bootstrap = prepare(run.settings)
    if run.bootstrap.created is not None:
        run.owner_key = run.bootstrap.created.owner_key.secret
    run.note(f"data directory: {run.settings.data_dir}")


def _start_server(run: QuickstartRun) -> None:
    from deputy.api.app import create_app

    assert run.platform is not None
    app = create_app(run.platform, jobs=build_jobs(run.platform))
    run.server = BackgroundServer(app, run.settings.host, run.settings.port)
    problem = run.server.start()
    if problem is not None:
        raise fail(
            f"the server did not start on {run.settings.host}:{run.settings.port}: {problem}. "
            "Choose another port with --port.",
            EXIT_ERROR,
        )


def _check_api(run: QuickstartRun) -> None:
    with run.client() as client:
        readiness = client.ready()
        if not readiness.ready:
            raise fail(f"the API is not ready: {readiness.checks}", EXIT_ERROR)
        if run.owner_key is not None:
            workspace = client.workspace.get()
            run.note(f"the owner key works: workspace {workspace.name!r}")


def _start_retail(run: QuickstartRun) -> None:
    """The retail example's REST app on the port after the API's (stable across starts, so
    the tool source registered on first start keeps working), over its own copy of the data;
    registered as the OpenAPI tool source `retail` on first start."""
    if not retail_example_available():
        run.note(
            "skipped: the retail example (examples/retail and tau2's retail db.json) is not "
            "here; run the quickstart from a Deputy checkout for tools, sandbox and chat"
        )
        return
    from examples.retail.auth import AuthConfig
    from examples.retail.rest import create_app as create_retail_app
    from examples.retail.server import serve_app
    from examples.retail.store import RetailStore

    store = RetailStore()
    app = create_retail_app(store, AuthConfig(mode="none"))
    port = run.settings.port + 1
    try:
        run.retail_url = run.resources.enter_context(serve_app(app, run.settings.host, port))
    except (RuntimeError, OSError) as exc:
        run.note(f"skipped: the retail example did not start on port {port} ({exc})")
        return
    run.note(f"the retail order system answers at {run.retail_url} (its own copy of the data)")
    if run.owner_key is None:
        return
    with run.client() as client:
        source = client.tool_sources.create(
            RETAIL_SOURCE,
            "openapi",
            description="The retail example's order system (examples/retail)",
            document=agent_operations(app.openapi()),
            base_url=run.retail_url,
        )
    run.tool_source_id = source.id
    run.note(f"registered as tool source {source.name!r} ({source.id})")


def agent_operations(document: dict[str, Any]) -> dict[str, Any]:
    """The retail app's OpenAPI document with only its tool operations (`/tools/...`): its
    admin and health endpoints are the operator's, never an agent's."""
    paths = {path: item for path, item in document["paths"].items() if path.startswith("/tools/")}
    return {**document, "paths": paths}


def _build_sample(run: QuickstartRun) -> None:
    """The builder drafts the retail sample agent from tau2's retail policy and tool
    descriptions (shipped with Deputy), by rules alone unless `--build-model` names a model,
    binds its tools to the registered retail source, and files the draft as the agent
    `retail-support`."""
    from deputy.samples import retail_material

    if run.owner_key is None:
        run.note("skipped: the sample agent was built on first start")
        return
    with run.client() as client:
        material_ids = [
            client.materials.upload(path.read_bytes(), filename=path.name).id
            for path in retail_material()
        ]
        build = client.builds.create(
            SAMPLE_GOAL,
            materials=material_ids,
            constraints=SAMPLE_CONSTRAINTS,
            tool_sources=[run.tool_source_id] if run.tool_source_id else [],
            name="retail-support",
            model=run.build_model,
        )
        asked = "rules only" if run.build_model == "none" else f"asking {run.build_model}"
        run.note(f"build {build.id} ({asked})")

        def show(current: Build) -> None:
            progress = current.progress
            if progress.stage is not None:
                run.note(f"{progress.stage}: {progress.done}/{progress.total}")

        done = client.builds.wait(build.id, timeout=SAMPLE_BUILD_TIMEOUT, on_progress=show)
        if done.status != "succeeded":
            error = done.error.message if done.error is not None else done.status
            raise fail(f"the sample build did not succeed: {error}", EXIT_ERROR)
        report = client.builds.report(done.id)
        version = client.builds.create_agent(done.id)
        spec_path = run.settings.data_dir / "retail-support.yaml"
        spec_path.write_text(client.builds.spec(done.id, format="yaml"), encoding="utf-8")
    run.build_id, run.agent_id, run.version = done.id, version.agent_id, version.number
    run.note(
        f"{report.stats.procedures} procedures, {report.stats.policies} policies, "
        f"{report.stats.scenarios} scenarios, {len(report.unmapped)} unmapped item(s), "
        f"{report.stats.model_calls} model question(s) in {report.stats.seconds:.0f} s"
    )
    run.note(f"filed as agent {version.agent_id} version {version.number}; draft: {spec_path}")


def _happy_paths(client: DeputyClient, build_id: str, count: int) -> list[str]:
    """The first `count` scenarios that walk a procedure's happy path (the suite's own order),
    else the first scenarios."""
    suite = client.builds.scenarios(build_id)
    happy = [s.id for s in suite.scenarios if s.kind == "happy_path"]
    chosen = happy or [s.id for s in suite.scenarios]
    return chosen[:count]


def _sandbox(run: QuickstartRun) -> None:
    """The draft against simulated customers on `--scenarios` of its scenarios, with the
    platform's default model, in a simulation of the retail backend."""
    from deputy.cli.progress import TrialBar
    from deputy.sandbox.scorecard import render_scorecard

    if run.agent_id is None or run.build_id is None:
        run.note("skipped: no new agent to prove")
        return
    if run.retail_url is None or run.scenarios == 0:
        run.note("skipped: " + ("--scenarios 0" if run.scenarios == 0 else "no retail example"))
        return
    bar = TrialBar()
    with run.client() as client:
        scenario_ids = _happy_paths(client, run.build_id, run.scenarios)
        run.note(
            f"{len(scenario_ids)} scenario(s) on {run.settings.default_model}, each in a fresh "
            "simulation of the retail backend: " + ", ".join(scenario_ids)
        )

        def show(current: SandboxRun) -> None:
            p = current.progress
            bar.update(p.done, p.total, p.passed, p.errors)

        with bar.progress:
            finished = client.sandbox.run(
                run.agent_id,
                build_id=run.build_id,
                scenario_ids=scenario_ids,
                trials=1,
                concurrency=1,
                world={RETAIL_SOURCE: {"target": "simulation", "backend": "retail"}},
                timeout=SANDBOX_TIMEOUT,
                on_progress=show,
            )
    if finished.status != "succeeded" or finished.scorecard is None:
        error = finished.error.message if finished.error is not None else finished.status
        run.note(f"the sandbox run {finished.id} did not finish: {error}")
        return
    run.sandbox_run_id = finished.id
    out().print(render_scorecard(finished.scorecard), markup=False)
    run.note(f"the trials' transcripts: deputy sandbox trials {finished.id}")


def _review(run: QuickstartRun) -> None:
    """File the version as a proposal with its scorecard, show it, and approve it when the
    reviewer says so (or `--yes`)."""
    from deputy.cli.proposals import render_proposal

    if run.agent_id is None or run.version is None:
        run.note("skipped: nothing new to review")
        return
    with run.client() as client:
        proposal = client.proposals.create(
            run.agent_id,
            run.version,
            "Deploy the retail support agent built from the store's policy",
            rationale="First version, drafted by the builder from the retail policy and tool "
            "descriptions; every rule cites its source in the draft.",
            sandbox_run_id=run.sandbox_run_id,
        )
        run.proposal_id = proposal.id
        out().print(render_proposal(proposal), markup=False)
        if not run.approve:
            if sys.stdin.isatty():
                run.approve = typer.confirm("      Approve it and deploy?", default=True)
            else:
                run.note("no terminal to ask: pass --yes to approve and deploy")
        if not run.approve:
            run.note(f"left for review: deputy proposals approve {proposal.id}")
            return
        client.proposals.approve(proposal.id, "approved in the quickstart")
    run.note(f"approved: {proposal.id}")


def _deploy(run: QuickstartRun) -> None:
    if run.agent_id is None or run.version is None or run.proposal_id is None or not run.approve:
        run.note("skipped: nothing approved to deploy")
        return
    with run.client() as client:
        deployment = client.deployments.deploy(
            run.agent_id, run.version, proposal_id=run.proposal_id
        )
        run.widget_key = client.keys.create(  # published in web pages: it only starts chats
            "web chat widget", kind="channel", agent_id=run.agent_id, scopes=["widget:sessions"]
        ).secret
    run.deployed = True
    run.note(
        f"version {deployment.live_version} is live on {deployment.channel} channels "
        f"(deployment {deployment.id}); roll back: deputy deployments rollback {deployment.id}"
    )


def _chat(run: QuickstartRun) -> None:
    from deputy.cli.conversations import chat_session

    if not run.deployed or run.agent_id is None:
        run.note("skipped: no agent was deployed")
        return
    if not run.chat:
        run.note(f"skipped (no terminal): deputy chat {run.agent_id}")
        return
    run.note("type a message (e.g. 'I want to return something'); /quit ends the chat")
    with run.client() as client:
        chat_session(client, run.agent_id, [], channel="chat")


QUICKSTART_STEPS: tuple[QuickstartStep, ...] = (
    ("Prepare the data directory and the SQLite database", _prepare),
    ("Start the API server", _start_server),
    ("Check the API over HTTP", _check_api),
    ("Start the retail example's order system (the agent's tools)", _start_retail),
    ("Build the retail sample agent from its policy and tool descriptions", _build_sample),
    ("Prove it in the sandbox against simulated customers", _sandbox),
    ("Review the proposal", _review),
    ("Deploy the approved version", _deploy),
    ("Chat with the deployed agent", _chat),
)


def print_access(run: QuickstartRun) -> None:
    assert run.bootstrap is not None
    console = out()
    console.print(
        f"\nDeputy is running at {run.url}\n  API reference:  {run.url}/docs\n", markup=False
    )
    print_bootstrap(run.bootstrap, run.url)
    if run.widget_key is not None and run.agent_id is not None:
        tag = f'data-agent="{run.agent_id}" data-key="{run.widget_key}"'
        console.print(
            f"\nWeb chat:  {run.url}/chat/{run.agent_id}#key={run.widget_key}\nEmbed it in a "
            f'web page:  <script src="{run.url}/widget.js" {tag}></script>',
            markup=False,
        )
    key = run.owner_key or "<your key>"
    console.print(
        f"\nTry it:\n  curl -H 'Authorization: Bearer {key}' {run.url}/v1/workspace\n"
        "\nPress Ctrl-C to stop.",
        markup=False,
    )


def _settings(host: str | None, port: int | None, log_level: str) -> Settings:
    overrides: dict[str, Any] = {"database_url": None, "jobs_database_url": None}
    if retail_example_available():
        overrides["sandbox_backends"] = {"retail": RETAIL_BACKEND}
    return load_server_settings(host, port, log_level=log_level, **overrides)


def quickstart(
    host: HostOption = None,
    port: PortOption = None,
    log_level: Annotated[
        LogLevel, typer.Option("--log-level", help="Log level on stderr while the quickstart runs.")
    ] = "WARNING",
    build_model: Annotated[
        str,
        typer.Option(
            "--build-model",
            help="Model the builder asks while drafting the sample agent ('none': rules only; "
            "e.g. local:qwen2.5-coder-1.5b for the embedded model).",
        ),
    ] = "none",
    scenarios: Annotated[
        int,
        typer.Option(
            "--scenarios", min=0, max=50, help="Scenarios the sandbox runs (0: no sandbox run)."
        ),
    ] = 1,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve and deploy without asking.")
    ] = False,
) -> None:
    """Start Deputy on the embedded defaults and run the whole loop on the retail example:
    build → sandbox scorecard → review → deploy → chat. On the first start this prints the
    owner key, once."""
    if os.environ.get("DEPUTY_DATABASE_URL"):
        out().print(
            "note: quickstart uses the embedded SQLite database; DEPUTY_DATABASE_URL "
            "is ignored (use `deputy serve` for a configured database).",
            markup=False,
        )
    settings = _settings(host, port, log_level)
    configure_server_logging(settings, log_level)
    run = QuickstartRun(
        settings=settings,
        url=public_url(settings),
        build_model=build_model,
        scenarios=scenarios,
        approve=yes,
        chat=sys.stdin.isatty() and sys.stdout.isatty(),
    )
    try:
        for number, (title, step) in enumerate(QUICKSTART_STEPS, start=1):
            out().print(f"[{number}/{len(QUICKSTART_STEPS)}] {title}", markup=False)
            step(run)
        print_access(run)
        assert run.server is not None
        run.server.wait()
    finally:
        if run.server is not None:
            run.server.stop()
        run.resources.close()
        if run.platform is not None:
            run.platform.close()
