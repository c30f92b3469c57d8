"""`deputy sandbox`: prove an agent version against a scenario suite on the server (a progress
bar while it runs, the scorecard at the end), show and list runs, read the trials' transcripts,
and compare two runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_ERROR,
    EXIT_USAGE,
    AsJson,
    Column,
    err,
    exit_code_for,
    fail,
    out,
    print_json,
    print_page,
    report_error,
    when,
)
from deputy.cli.progress import TrialBar
from deputy.cli.state import agent_id_of, client
from deputy.domain.errors import DeputyError
from deputy.domain.sandbox import SandboxRun, SandboxRunError, SandboxTrial
from deputy.domain.sandbox_results import TranscriptMessage
from deputy.sandbox.compare import render_comparison
from deputy.sandbox.scorecard import render_scorecard
from deputy.sdk.sandbox import RunOptions

sandbox_app = typer.Typer(
    help="Sandbox runs: an agent version against scenarios, k trials each, in isolation.",
    no_args_is_help=True,
)

POLL_SECONDS = 0.5
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id (sbx_…).")]
RUN_COLUMNS: list[Column[SandboxRun]] = [
    ("ID", lambda r: r.id),
    ("STATUS", lambda r: r.status),
    ("AGENT", lambda r: f"{r.agent_id} v{r.version}"),
    ("SUITE", lambda r: f"{r.suite_name} ({r.scenario_count} x {r.trials})"),
    ("DONE", lambda r: f"{r.progress.done}/{r.progress.total}"),
    ("PASSED", lambda r: str(r.progress.passed)),
    ("PASS^1", lambda r: f"{r.scorecard.pass_hat[1].value:.3f}" if r.scorecard else "-"),
    ("CREATED", lambda r: when(r.created_at)),
]


class RunFailed(DeputyError):
    """A run that ended `failed` (with its own code) or `cancelled`."""

    def __init__(self, run: SandboxRun, error: SandboxRunError) -> None:
        super().__init__(f"sandbox run {run.id} {run.status}: {error.message}")
        self.reported_code = error.code


def parse_world(values: list[str]) -> dict[str, dict[str, str]]:
    """`SOURCE=simulation:BACKEND[:SEED]`, `SOURCE=staging:OTHER_SOURCE` or `SOURCE=recorded`
    → the API's world mapping."""
    world: dict[str, dict[str, str]] = {}
    for value in values:
        source, equals, target = value.partition("=")
        kind, _, rest = target.partition(":")
        if not equals or not source:
            kind = ""
        if kind == "simulation" and rest:
            backend, _, seed = rest.partition(":")
            world[source] = {"target": "simulation", "backend": backend}
            if seed:
                world[source]["seed"] = seed
        elif kind == "staging" and rest:
            world[source] = {"target": "staging", "source": rest}
        elif kind == "recorded" and not rest:
            world[source] = {"target": "recorded"}
        else:
            raise typer.BadParameter(
                f"{value!r}: use SOURCE=simulation:BACKEND, SOURCE=staging:OTHER_SOURCE or "
                "SOURCE=recorded",
                param_hint="--world",
            )
    return world


def _suite(path: Path) -> dict[str, Any]:
    """A scenario suite file (YAML or JSON); the server validates it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise fail(f"{path}: cannot read the suite: {error}", EXIT_USAGE) from None
    if not isinstance(data, dict):
        raise fail(f"{path}: a scenario suite is a mapping (name, scenarios)", EXIT_USAGE)
    return data


def _show(bar: TrialBar) -> Callable[[SandboxRun], None]:
    def show(run: SandboxRun) -> None:
        p = run.progress
        bar.update(p.done, p.total, p.passed, p.errors)

    return show


def _finished(run: SandboxRun, as_json: bool) -> None:
    """Print a finished run (the scorecard, or JSON); a run that did not succeed exits with
    its error's code."""
    if run.status != "succeeded":
        if as_json:
            print_json(run)
        default = SandboxRunError(code="cancelled", message="it was cancelled")
        failure = RunFailed(run, run.error or default)
        report_error(failure)
        raise typer.Exit(exit_code_for(failure) if run.error else EXIT_ERROR)
    if as_json:
        print_json(run)
    elif run.scorecard is not None:
        out().print(render_scorecard(run.scorecard), markup=False)


@sandbox_app.command("run")
def run_sandbox(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option("--agent", help="The agent: its name or id.")],
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Default: the latest.")
    ] = None,
    suite: Annotated[
        Path | None, typer.Option("--suite", help="A scenario suite file (YAML or JSON).")
    ] = None,
    build: Annotated[
        str | None, typer.Option("--build", help="Run this build's scenarios (bld_…).")
    ] = None,
    scenarios: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only this scenario (repeatable).")
    ] = None,
    trials: Annotated[int, typer.Option("--trials", min=1, max=10, help="k per scenario.")] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    model: Annotated[str | None, typer.Option("--model", help="The agent's model.")] = None,
    customer_model: Annotated[
        str | None, typer.Option("--customer-model", help="Plays the customers (`none`: none).")
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option("--judge-model", help="Judges assertions (`none`: none).")
    ] = None,
    world: Annotated[
        list[str] | None,
        typer.Option(
            "--world",
            help="SOURCE=simulation:BACKEND, SOURCE=staging:OTHER_SOURCE or SOURCE=recorded "
            "(repeatable; unmapped sources replay recorded calls).",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=16, help="Conversations at once.")
    ] = 4,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start it and print its id; do not wait.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Run an agent version against a suite (a file, or a build's scenarios), k trials per
    scenario, with a progress bar; prints the scorecard."""
    if (suite is None) == (build is None):
        raise fail("give --suite FILE or --build BUILD_ID (one of them)", EXIT_USAGE)
    options: RunOptions = {
        "scenario_ids": scenarios or [],
        "trials": trials,
        "seed": seed,
        "concurrency": concurrency,
        "world": parse_world(world or []),
    }
    if suite is not None:
        options["suite"] = _suite(suite)
    elif build is not None:
        options["build_id"] = build
    if version is not None:
        options["version"] = version
    if model:
        options["model"] = model
    if customer_model:
        options["customer_model"] = customer_model
    if judge_model:
        options["judge_model"] = judge_model
    sdk = client(ctx)
    started = sdk.sandbox.create(agent_id_of(sdk, agent), **options)
    if no_wait:
        if as_json:
            print_json(started)
        else:
            out().print(started.id, markup=False)
        return
    err().print(f"Sandbox run {started.id} started.", markup=False, style="dim")
    bar = TrialBar()
    with bar.progress:
        finished = sdk.sandbox.wait(started.id, poll=POLL_SECONDS, on_progress=_show(bar))
    _finished(finished, as_json)


def _print_run(run: SandboxRun) -> None:
    console = out()
    progress = run.progress
    lines = [
        f"Run {run.id}: {run.status}",
        f"agent: {run.agent_id} version {run.version}",
        f"suite: {run.suite_name}, {run.scenario_count} scenarios x {run.trials} trials, "
        f"seed {run.seed}" + (f" (build {run.build_id})" if run.build_id else ""),
        f"models: agent {run.models.agent}, customer {run.models.customer or '-'}, "
        f"judge {run.models.judge or '-'}",
        f"progress: {progress.done}/{progress.total} done, {progress.passed} passed, "
        f"{progress.errors} errors",
        *(f"world: {source} -> {where}" for source, where in run.world.items()),
        f"created {when(run.created_at)}, started {when(run.started_at)}, "
        f"finished {when(run.finished_at)}",
    ]
    if run.error is not None:
        lines.append(f"error: {run.error.code}: {run.error.message}")
    console.print("\n".join(lines), markup=False)
    if run.scorecard is not None:
        console.print("")
        console.print(render_scorecard(run.scorecard), markup=False)


@sandbox_app.command("show")
def show_run(ctx: typer.Context, run_id: RunId, as_json: AsJson = False) -> None:
    """Show a run: what it runs, where its tools go, its progress and its scorecard."""
    run = client(ctx).sandbox.get(run_id)
    if as_json:
        print_json(run)
        return
    _print_run(run)


@sandbox_app.command("list")
def list_runs(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's (name or id).")] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's sandbox runs, newest first."""
    sdk = client(ctx)
    agent_id = agent_id_of(sdk, agent) if agent is not None else None
    page = listing.fetch(
        lambda n, c: sdk.sandbox.list(agent_id=agent_id, limit=n, cursor=c),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, RUN_COLUMNS, as_json=as_json, noun="sandbox runs")


def _line(message: TranscriptMessage) -> str:
    """One transcript line: who said it, or the tool call (arguments) and how it went."""
    if message.role == "tool":
        arguments = json.dumps(message.arguments or {}, ensure_ascii=False)
        return f"  tool     {message.tool} {arguments} -> {'ok' if message.ok else 'failed'}"
    return f"  {message.role:<8} {message.text}"


def _print_trial(trial: SandboxTrial) -> None:
    console = out()
    verdict = "PASSED" if trial.passed else "FAILED"
    console.print(
        f"{trial.scenario_id} #{trial.trial} ({trial.scenario_title}): {verdict}, reward "
        f"{trial.reward:.2f}; {trial.termination}, outcome {trial.outcome or '-'}, "
        f"{trial.turns} turns, {trial.seconds:.1f}s",
        markup=False,
        style="bold",
    )
    for message in trial.transcript:
        console.print(_line(message), markup=False)
    for check in trial.checks:
        mark = "✓" if check.passed else "✗"
        console.print(f"  {mark} {check.kind}: {check.detail}", markup=False)
        if check.reasoning and not check.passed:
            console.print(f"      judge: {check.reasoning}", markup=False)
    if trial.error:
        console.print(f"  error: {trial.error}", markup=False, style="red")
    console.print("")


@sandbox_app.command("trials")
def list_trials(
    ctx: typer.Context,
    run_id: RunId,
    scenario: Annotated[str | None, typer.Option("--scenario", help="One scenario's.")] = None,
    as_json: AsJson = False,
) -> None:
    """The run's finished trials: each transcript, its tool calls and its checks."""
    found = list(client(ctx).sandbox.iter_trials(run_id, scenario_id=scenario))
    if as_json:
        print_json(found)
        return
    if not found:
        out().print("No finished trials.", markup=False)
    for trial in found:
        _print_trial(trial)


@sandbox_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    baseline: Annotated[str, typer.Argument(metavar="BASELINE", help="The baseline run.")],
    candidate: Annotated[str, typer.Argument(metavar="CANDIDATE", help="The candidate run.")],
    as_json: AsJson = False,
) -> None:
    """Compare two runs of the same suite: per-scenario differences, regressions first, the
    change in pass^1 and its significance."""
    comparison = client(ctx).sandbox.compare(baseline, candidate)
    if as_json:
        print_json(comparison)
        return
    out().print(render_comparison(comparison), markup=False)
