"""`deputy improve`: run the improvement loop over an agent's production conversations on the
server (a progress bar per stage while it runs, the report at the end), show a run's report,
and list runs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_ERROR,
    AsJson,
    Column,
    err,
    exit_code_for,
    out,
    print_json,
    print_page,
    report_error,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.errors import DeputyError
from deputy.domain.improvement import Candidate, ImprovementReport, ImprovementRun
from deputy.sdk.improvement import StartOptions

improve_app = typer.Typer(
    help="The improvement loop over production conversations.", no_args_is_help=True
)

POLL_SECONDS = 0.5
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id (imp_…).")]
RUN_COLUMNS: list[Column[ImprovementRun]] = [
    ("ID", lambda r: r.id),
    ("STATUS", lambda r: r.status),
    ("AGENT", lambda r: r.agent_id),
    ("TRIGGER", lambda r: r.trigger),
    ("STAGE", lambda r: r.progress.stage or "-"),
    ("CONVERSATIONS", lambda r: str(r.report.conversations) if r.report else "-"),
    ("PROPOSALS", lambda r: ", ".join(r.proposal_ids) or "-"),
    ("CREATED", lambda r: when(r.created_at)),
]


class RunFailed(DeputyError):
    """A run that ended `failed` (with its own code) or `cancelled`."""

    def __init__(self, run: ImprovementRun) -> None:
        error = run.error or {"code": "cancelled", "message": "it was cancelled"}
        super().__init__(f"improvement run {run.id} {run.status}: {error.get('message', '')}")
        self.reported_code = error.get("code", "internal_error")


class StageBar:
    """The run's stage (collect, evaluate, cluster, propose, validate) and how far it is, on
    stderr: a bar on a terminal, otherwise a line whenever the stage changes."""

    def __init__(self) -> None:
        console = err()
        self.terminal = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=not self.terminal,
        )
        self._task = self.progress.add_task("queued", total=None)
        self._stage: str | None = None

    def show(self, run: ImprovementRun) -> None:
        stage, done, total = run.progress.stage, run.progress.done, run.progress.total
        label = stage or run.status
        self.progress.update(self._task, description=label, completed=done, total=total or None)
        if not self.terminal and stage is not None and stage != self._stage:
            err().print(f"{stage} {done}/{total}", markup=False)
        self._stage = stage


def parse_world(text: str | None) -> dict[str, Any] | None:
    """`--world` as JSON: spec tool source -> sandbox target (or `{"sources": {...}}`)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--world") from None
    if isinstance(value, dict) and isinstance(value.get("sources"), dict):
        value = value["sources"]
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'a JSON object: {"SOURCE": {"target": "simulation", "backend": "NAME"}}',
            param_hint="--world",
        )
    return value


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _candidate_lines(candidate: Candidate) -> list[str]:
    lines = [
        f"  {candidate.cluster_id}: {candidate.status.upper()}: {candidate.reason}",
        f"    change: {candidate.change_request}",
    ]
    if candidate.version is not None:
        lines.append(f"    version {candidate.version}")
    if candidate.regression_scenario_ids:
        lines.append(f"    regression scenarios: {', '.join(candidate.regression_scenario_ids)}")
    if candidate.comparison is not None:
        ab = candidate.comparison
        lines += [
            f"    A/B: live {candidate.baseline_run_id} -> candidate {candidate.candidate_run_id}",
            f"      {ab.verdict}, pass^1 {ab.baseline_pass_1:.2f} -> {ab.candidate_pass_1:.2f}, "
            f"p = {ab.p_value:.3f}",
            f"      regressions: {', '.join(ab.regressions) or 'none'}",
            f"      improvements: {', '.join(ab.improvements) or 'none'}",
        ]
    if candidate.proposal_id is not None:
        lines.append(f"    proposal: {candidate.proposal_id}")
    return lines


def render_report(report: ImprovementReport) -> str:
    """A run's report for a reader: the evaluations in sum, each cluster with its size and
    cause, the regressions against the previous period, and each candidate with its status,
    reason, A/B verdict and proposal."""
    evaluations = report.evaluations
    failed = [e for e in evaluations if e.failed]
    causes = Counter(e.cause or "unknown" for e in failed)
    lines = [
        f"window: {when(report.window_start)} -> {when(report.window_end)}",
        f"conversations: {report.conversations} (previous period: {report.previous_conversations})",
        f"evaluations: {len(evaluations)}, failed {len(failed)} "
        f"({_percent(len(failed), len(evaluations))}), resolved "
        f"{sum(e.resolved for e in evaluations)}",
    ]
    if causes:
        lines.append("  by cause: " + ", ".join(f"{c} {n}" for c, n in causes.most_common()))
    lines.append("clusters:" if report.clusters else "clusters: none")
    lines += [
        f"  {c.id}: {c.cause}, {len(c.conversation_ids)} conversations ({c.share:.0%}): {c.label}"
        for c in report.clusters
    ]
    lines.append("regressions:" if report.regressions else "regressions: none")
    lines += [
        f"  {g.cause}: {g.previous_rate:.0%} -> {g.current_rate:.0%} "
        f"({g.previous_failures} -> {g.current_failures} failures)"
        for g in report.regressions
    ]
    lines.append("candidates:" if report.candidates else "candidates: none")
    for candidate in report.candidates:
        lines += _candidate_lines(candidate)
    return "\n".join(lines)


def _print_run(run: ImprovementRun) -> None:
    progress = run.progress
    lines = [
        f"Improvement run {run.id}: {run.status} ({run.trigger})",
        f"agent: {run.agent_id}, model: {run.model}",
        f"stage: {progress.stage or '-'} {progress.done}/{progress.total}",
        f"created {when(run.created_at)}, started {when(run.started_at)}, "
        f"finished {when(run.finished_at)}",
    ]
    if run.proposal_ids:
        lines.append(f"proposals: {', '.join(run.proposal_ids)}")
    if run.error is not None:
        lines.append(f"error: {run.error.get('code')}: {run.error.get('message')}")
    if run.report is not None:
        lines += ["", render_report(run.report)]
    out().print("\n".join(lines), markup=False)


def _finished(run: ImprovementRun, as_json: bool) -> None:
    """Print a finished run (its report, or JSON); one that did not succeed exits with its
    error's code."""
    if as_json:
        print_json(run)
    elif run.status == "succeeded":
        _print_run(run)
    if run.status != "succeeded":
        failure = RunFailed(run)
        report_error(failure)
        raise typer.Exit(exit_code_for(failure) if run.error else EXIT_ERROR)


def _utc(value: datetime | None) -> datetime | None:
    """A date given without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@improve_app.command("run")
def run_improvement(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent: its name or id.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Default: the agent's model.")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since", formats=DATE_FORMATS, help="Window start, UTC (default: the last run's end)."
        ),
    ] = None,
    max_conversations: Annotated[
        int | None, typer.Option("--max-conversations", min=1, max=1000)
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, max=5, help="Sandbox trials per scenario.")
    ] = None,
    suite_scenarios: Annotated[
        int | None,
        typer.Option(
            "--suite-scenarios",
            min=0,
            max=500,
            help="Existing scenarios in the A/B beside the regression ones (default 20).",
        ),
    ] = None,
    world: Annotated[
        str | None,
        typer.Option(
            "--world",
            help='The sandbox world as JSON: {"SOURCE": {"target": "simulation", '
            '"backend": "NAME"}} (unmapped sources replay recorded calls).',
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the report (default) or not.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Run the improvement loop for an agent: evaluate its recent conversations, cluster the
    failures, and try a change against the live version in the sandbox; prints the report."""
    options: StartOptions = {}
    if model:
        options["model"] = model
    if (start := _utc(since)) is not None:
        options["since"] = start
    if max_conversations is not None:
        options["max_conversations"] = max_conversations
    if trials is not None:
        options["trials"] = trials
    if suite_scenarios is not None:
        options["suite_scenarios"] = suite_scenarios
    if (mapping := parse_world(world)) is not None:
        options["world"] = mapping
    sdk = client(ctx)
    started = sdk.improvement.start(agent_id_of(sdk, agent), **options)
    if not wait:
        if as_json:
            print_json(started)
        else:
            out().print(started.id, markup=False)
        return
    err().print(f"Improvement run {started.id} started.", markup=False, style="dim")
    bar = StageBar()
    show: Callable[[ImprovementRun], None] = bar.show
    with bar.progress:
        finished = sdk.improvement.wait(started.id, poll=POLL_SECONDS, on_progress=show)
    _finished(finished, as_json)


@improve_app.command("show")
def show_run(ctx: typer.Context, run_id: RunId, as_json: AsJson = False) -> None:
    """Show a run: its status and the report (evaluations, clusters, regressions, candidates
    with their A/B and proposal)."""
    run = client(ctx).improvement.get(run_id)
    if as_json:
        print_json(run)
        return
    _print_run(run)


@improve_app.command("list")
def list_runs(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's (name or id).")] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's improvement runs, newest first."""
    sdk = client(ctx)
    agent_id = agent_id_of(sdk, agent) if agent is not None else None
    page = listing.fetch(
        lambda n, c: sdk.improvement.list(agent_id=agent_id, limit=n, cursor=c),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, RUN_COLUMNS, as_json=as_json, noun="improvement runs")
