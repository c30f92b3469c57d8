"""The commands that run a server process: `deputy serve` and `deputy quickstart`.

They are the only commands that touch the platform directly (to migrate, bootstrap and serve
it); everything else goes through the HTTP API. Server modules are imported inside the
commands so the client commands stay light.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from deputy.cli.output import EXIT_ERROR, EXIT_USAGE, fail, out
from deputy.sdk import DeputyClient

if TYPE_CHECKING:
    from deputy.api.app import BackgroundJobs
    from deputy.config import Settings
    from deputy.domain.builds import Build
    from deputy.services.platform import Platform
    from deputy.services.workspaces import Bootstrap

HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Interface to listen on (default: DEPUTY_HOST or 127.0.0.1)."),
]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", min=1, max=65535, help="Port to listen on (default: DEPUTY_PORT or 8750)."
    ),
]
START_TIMEOUT = 60.0
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def build_jobs(platform: Platform) -> BackgroundJobs | None:
    """The durable background-jobs runner the API starts and stops with itself (in process:
    the embedded default), or None when DEPUTY_JOBS_ENABLED=false (jobs run in workers)."""
    if not platform.settings.jobs_enabled:
        return None
    from deputy.jobs.dbos_runner import DbosJobRunner

    return DbosJobRunner.from_settings(platform.settings, platform.db)


def load_server_settings(host: str | None, port: int | None, **overrides: Any) -> Settings:
    """Settings from the environment, with the command line's host and port when given."""
    from deputy.config import ConfigError, load_settings

    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise fail(f"invalid configuration: {exc}", EXIT_USAGE) from exc


def public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - displaying, not binding
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _configure_logging(settings: Settings, level: str | None = None) -> None:
    from deputy.observability.logging import configure_logging

    configure_logging(level or settings.log_level, json_lines=settings.log_json)


def print_bootstrap(bootstrap: Bootstrap, url: str) -> None:
    """The owner key on first start (shown this once), or how to get a key otherwise."""
    console = out()
    created = bootstrap.created
    if created is None:
        console.print(
            "This platform was set up before: its owner key was shown on first start and is "
            "not shown again.\n"
            f"Log in with it:     deputy login --url {url} --key <owner key>\n"
            "Make another key:   deputy keys create NAME   (while logged in with a key that "
            "may manage keys)",
            markup=False,
        )
        return
    secret = created.owner_key.secret
    console.print(
        f"Deputy created the first workspace, {created.workspace.name!r}, and its owner key:\n\n"
        f"    {secret}\n\n"
        "This key is shown now and will NOT be shown again: store it somewhere safe.\n"
        "It is the platform operator's key (it can also create workspaces).\n"
        f"Log in with it:  deputy login --url {url} --key {secret}",
        markup=False,
    )


def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run the API server (data directory from DEPUTY_DATA_DIR)."""
    import uvicorn

    from deputy.api.app import create_app
    from deputy.services.startup import prepare

    settings = load_server_settings(host, port)
    _configure_logging(settings)
    platform, bootstrap = prepare(settings)
    url = public_url(settings)
    print_bootstrap(bootstrap, url)
    out().print(f"Serving the Deputy API on {url} (docs: {url}/docs)", markup=False)
    try:
        app = create_app(platform, jobs=build_jobs(platform))
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        uvicorn.Server(config).run()
    finally:
        platform.close()


def worker(
    modules: Annotated[
        list[str] | None, typer.Option("--import", help="A module that defines jobs (repeatable).")
    ] = None,
    drain_seconds: Annotated[
        int, typer.Option("--drain-seconds", min=0, help="On SIGTERM, give running jobs this long.")
    ] = 0,
) -> None:
    """Run a durable-jobs worker (DEPUTY_EXECUTOR_ID names it; one id per process)."""
    from deputy.jobs.worker import run_worker

    settings = load_server_settings(None, None, process_role="worker")
    _configure_logging(settings)
    run_worker(settings, modules or [], drain_seconds=drain_seconds)


# ---- quickstart --------------------------------------------------------------------------


class BackgroundServer:
    """Uvicorn on a helper thread, so the main thread can drive the API while it serves."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="deputy-server", daemon=True)

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Start serving; False when the server did not come up (e.g. the port is taken)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.05)
        return True

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C or SIGTERM)."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
            self._server.should_exit = True

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            out().print("\nStopping…", markup=False)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)


@dataclass
class QuickstartRun:
    """What the quickstart steps hand on to each other."""

    settings: Settings
    url: str
    platform: Platform | None = None
    bootstrap: Bootstrap | None = None
    server: BackgroundServer | None = None
    owner_key: str | None = None
    build_model: str = "none"

    def client(self) -> DeputyClient:
        """The platform seen through its API, as any other client sees it."""
        return DeputyClient(self.url, self.owner_key, require_key=False)


QuickstartStep = tuple[str, Callable[[QuickstartRun], None]]


def _prepare(run: QuickstartRun) -> None:
    from deputy.services.startup import prepare

    run.platform, run.bootstrap = prepare(run.settings)
    if run.bootstrap.created is not None:
        run.owner_key = run.bootstrap.created.owner_key.secret
    out().print(f"      data directory: {run.settings.data_dir}", markup=False)


def _start_server(run: QuickstartRun) -> None:
    from deputy.api.app import create_app

    assert run.platform is not None
    app = create_app(run.platform, jobs=build_jobs(run.platform))
    run.server = BackgroundServer(app, run.settings.host, run.settings.port)
    if not run.server.start():
        raise fail(
            f"the server did not start on {run.settings.host}:{run.settings.port}; is "
            "the port in use (another Deputy?) Choose another with --port.",
            EXIT_ERROR,
        )


def _check_api(run: QuickstartRun) -> None:
    with run.client() as client:
        readiness = client.ready()
        if not readiness.ready:
            raise fail(f"the API is not ready: {readiness.checks}", EXIT_ERROR)
        if run.owner_key is not None:
            workspace = client.workspace.get()
            out().print(f"      the owner key works: workspace {workspace.name!r}", markup=False)


SAMPLE_GOAL = (
    "Help customers of our online store with their orders, returns, exchanges and accounts."
)
SAMPLE_CONSTRAINTS = ("Never issue refunds over $200 without a human.",)
SAMPLE_BUILD_TIMEOUT = 1800.0


def _build_sample(run: QuickstartRun) -> None:
    """The builder drafts the retail sample agent from tau2's retail policy and tool
    descriptions (shipped with Deputy), by rules alone unless `--build-model` names a model
    (a few seconds against minutes of questions to the embedded model on two cores), and files
    the draft as the agent `retail-support`. Only on first start: later starts do not know the
    owner key."""
    from deputy.samples import retail_material

    if run.owner_key is None:
        out().print("      skipped: the sample agent was built on first start", markup=False)
        return
    console = out()
    with run.client() as client:
        material_ids = [
            client.materials.upload(path.read_bytes(), filename=path.name).id
            for path in retail_material()
        ]
        build = client.builds.create(
            SAMPLE_GOAL,
            materials=material_ids,
            constraints=SAMPLE_CONSTRAINTS,
            name="retail-support",
            model=run.build_model,
        )
        asked = "rules only" if run.build_model == "none" else f"asking {run.build_model}"
        console.print(f"      build {build.id} ({asked})", markup=False)

        def show(current: Build) -> None:
            progress = current.progress
            if progress.stage is not None:
                console.print(
                    f"      {progress.stage}: {progress.done}/{progress.total}", markup=False
                )

        done = client.builds.wait(build.id, timeout=SAMPLE_BUILD_TIMEOUT, on_progress=show)
        if done.status != "succeeded":
            error = done.error.message if done.error is not None else done.status
            raise fail(f"the sample build did not succeed: {error}", EXIT_ERROR)
        report = client.builds.report(done.id)
        version = client.builds.create_agent(done.id)
        spec_path = run.settings.data_dir / "retail-support.yaml"
        spec_path.write_text(client.builds.spec(done.id, format="yaml"), encoding="utf-8")
    console.print(
        f"      {report.stats.procedures} procedures, {report.stats.policies} policies, "
        f"{report.stats.scenarios} scenarios, {len(report.unmapped)} unmapped item(s), "
        f"{report.stats.model_calls} model question(s) in {report.stats.seconds:.0f} s\n"
        f"      filed as agent {version.agent_id} version {version.number}; draft: {spec_path}",
        markup=False,
    )


# Later issues add sandbox → review → deploy → chat here, each through `run.client()`.
QUICKSTART_STEPS: tuple[QuickstartStep, ...] = (
    ("Prepare the data directory and the SQLite database", _prepare),
    ("Start the API server", _start_server),
    ("Check the API over HTTP", _check_api),
    ("Build the retail sample agent from its policy and tool descriptions", _build_sample),
)


def print_access(run: QuickstartRun) -> None:
    assert run.bootstrap is not None
    console = out()
    console.print(
        f"\nDeputy is running at {run.url}\n  API reference:  {run.url}/docs\n", markup=False
    )
    print_bootstrap(run.bootstrap, run.url)
    key = run.owner_key or "<your key>"
    console.print(
        f"\nTry it:\n  curl -H 'Authorization: Bearer {key}' {run.url}/v1/workspace\n"
        "\nPress Ctrl-C to stop.",
        markup=False,
    )


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
) -> None:
    """Start Deputy on the embedded defaults (SQLite in the data directory), build the retail
    sample agent from its policy, and show how to reach it. On the first start this prints the
    owner key, once."""
    if os.environ.get("DEPUTY_DATABASE_URL"):
        out().print(
            "note: quickstart uses the embedded SQLite database; DEPUTY_DATABASE_URL "
            "is ignored (use `deputy serve` for a configured database).",
            markup=False,
        )
    settings = load_server_settings(
        host, port, database_url=None, jobs_database_url=None, log_level=log_level
    )
    _configure_logging(settings, log_level)
    run = QuickstartRun(settings=settings, url=public_url(settings), build_model=build_model)
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
        if run.platform is not None:
            run.platform.close()
