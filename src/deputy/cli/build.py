"""`deputy build`: files + a goal → an AgentSpec draft (YAML), its scenarios and the build
report, with a progress bar per stage; `deputy builds`: list and show builds, change a draft in
plain language, file it as an agent version."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from deputy.builder.report import BuildReport
from deputy.cli import listing
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    err,
    error_lines,
    exit_code_for,
    out,
    print_fields,
    print_json,
    print_page,
    report_error,
    when,
)
from deputy.cli.state import client
from deputy.domain.builds import Build, BuildChange, BuildError
from deputy.domain.errors import DeputyError
from deputy.domain.resources import Material
from deputy.domain.spec import AgentSpec, load_spec
from deputy.sdk import DeputyClient

builds_app = typer.Typer(
    help="Builds: drafts of agents made from materials, and changes to them.",
    no_args_is_help=True,
)

POLL_SECONDS = 0.5
BuildId = Annotated[str, typer.Argument(metavar="BUILD_ID", help="The build's id (bld_…).")]
BUILD_COLUMNS: list[Column[Build]] = [
    ("ID", lambda b: b.id),
    ("STATUS", lambda b: b.status),
    ("NAME", lambda b: b.name or "-"),
    ("GOAL", lambda b: b.goal if len(b.goal) <= 50 else b.goal[:49] + "…"),
    ("REVISION", lambda b: str(b.revision) if b.revision else "-"),
    ("MATERIALS", lambda b: str(len(b.material_ids))),
    ("CREATED", lambda b: when(b.created_at)),
]


class BuildFailed(DeputyError):
    """A build that ended `failed`, reported with its own code."""

    def __init__(self, build: Build, error: BuildError) -> None:
        super().__init__(f"build {build.id} failed: {error.message}")
        self.reported_code = error.code


def _upload(sdk: DeputyClient, files: list[Path]) -> list[Material]:
    """Upload each file; one the server refuses (or that cannot be read) is reported with its
    reason and the rest go on."""
    uploaded: list[Material] = []
    for path in files:
        try:
            if not path.is_file():
                raise FileNotFoundError("not a readable file")
            uploaded.append(sdk.materials.upload(path))
        except DeputyError as error:
            lines = error_lines(error)
            err().print(f"{path}: " + "\n    ".join(lines), markup=False, style="red")
        except OSError as error:
            err().print(f"{path}: error: {error}", markup=False, style="red")
    return uploaded


class _StageBars:
    """One progress bar per stage of the build, on stderr (when it is a terminal); a stage is
    shown complete once the next one starts, or the build ends."""

    def __init__(self) -> None:
        console = err()
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, tuple[TaskID, int]] = {}
        self._current: str | None = None

    def _complete(self) -> None:
        if self._current is not None:
            task, total = self._tasks[self._current]
            self.progress.update(task, completed=total)

    def __call__(self, build: Build) -> None:
        stage, done, total = build.progress.stage, build.progress.done, build.progress.total
        if stage is not None:
            if stage != self._current:
                self._complete()
            task = self._tasks[stage][0] if stage in self._tasks else None
            if task is None:
                task = self.progress.add_task(stage, total=total or None)
            self._tasks[stage] = (task, total)
            self.progress.update(task, completed=done, total=total or None)
            self._current = stage
        if build.status == "succeeded":
            self._complete()


def _dump_scenarios(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _summary(spec: AgentSpec, report: BuildReport, names: dict[str, str]) -> None:
    """What was drafted: procedures with where each came from, scenarios, what was left out,
    the questions for the client and each file's problems."""
    console = out()
    console.print(f"Procedures ({len(spec.procedures)}):", markup=False, style="bold")
    for procedure in spec.procedures:
        origin = "-"
        if procedure.provenance is not None:
            source = names.get(procedure.provenance.source, procedure.provenance.source)
            origin = (
                f"{source}, {procedure.provenance.span}" if procedure.provenance.span else source
            )
        console.print(f"  {procedure.id}: {procedure.title} ({origin})", markup=False)
    console.print(f"Scenarios: {report.stats.scenarios}", markup=False, style="bold")
    unmapped = report.unmapped
    console.print(f"Unmapped ({len(unmapped)}):", markup=False, style="bold")
    for item in unmapped:
        where = names.get(item.material or "", item.material or "goal")
        reason = f": {item.reason}" if item.reason else ""
        console.print(f"  {where}, {item.span}{reason}", markup=False)
    console.print(f"Open questions ({len(report.questions)}):", markup=False, style="bold")
    for question in report.questions:
        console.print(f"  [{question.kind}] {question.text}", markup=False)
    by_file: dict[str, list[str]] = defaultdict(list)
    for problem in report.problems:
        by_file[problem.name].append(f"{problem.code}: {problem.message}")
    if by_file:
        console.print("Problems:", markup=False, style="bold")
        for name, problems in by_file.items():
            for line in problems:
                console.print(f"  {name}: {line}", markup=False)


def build(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="Materials: SOPs, policies, transcripts, tools."),
    ],
    goal: Annotated[str, typer.Option("--goal", help="What the agent is for.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the spec YAML.")],
    name: Annotated[str | None, typer.Option("--name", help="The agent's name.")] = None,
    constraints: Annotated[
        list[str] | None,
        typer.Option("--constraint", help="A rule the agent must follow (repeatable)."),
    ] = None,
    tool_sources: Annotated[
        list[str] | None,
        typer.Option("--tool-source", help="A tool source of the workspace (repeatable)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="The model to ask (`none`: rules only; default: the workspace's)."
        ),
    ] = None,
    scenarios: Annotated[
        Path | None, typer.Option("--scenarios", help="Also write the scenario suite (YAML).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the build report (JSON).")
    ] = None,
) -> None:
    """Draft an agent from files: upload them, build, and write the spec (and, when asked,
    its scenarios and the report). A file the server refuses is reported and left out."""
    sdk = client(ctx)
    materials = _upload(sdk, files)
    if not materials:
        err().print("error: no file could be uploaded; nothing to build", markup=False, style="red")
        raise typer.Exit(EXIT_USAGE)
    started = sdk.builds.create(
        goal,
        materials=[m.id for m in materials],
        constraints=constraints or (),
        tool_sources=tool_sources or (),
        model=model,
        name=name,
    )
    err().print(f"Build {started.id} started.", markup=False, style="dim")
    bars = _StageBars()
    with bars.progress:
        finished = sdk.builds.wait(started.id, poll=POLL_SECONDS, on_progress=bars)
    if finished.status != "succeeded":
        error = finished.error or BuildError(code="internal_error", message="no result")
        failure = BuildFailed(finished, error)
        report_error(failure)
        raise typer.Exit(exit_code_for(failure))
    text = sdk.builds.spec(finished.id, format="yaml")
    output.write_text(text, encoding="utf-8")
    if scenarios is not None:
        suite = sdk.builds.scenarios(finished.id)
        scenarios.write_text(
            _dump_scenarios(suite.model_dump(mode="json", exclude_defaults=True)), encoding="utf-8"
        )
    built = sdk.builds.report(finished.id)
    if report is not None:
        report.write_text(built.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _summary(load_spec(text, "yaml"), built, {m.id: m.filename for m in materials})
    written = ", ".join(str(p) for p in (output, scenarios, report) if p is not None)
    err().print(f"Wrote {written} (build {finished.id}).", markup=False, style="dim")


@builds_app.command("list")
def list_builds(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's builds, newest first."""
    api = client(ctx).builds
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_page(page, BUILD_COLUMNS, as_json=as_json, noun="builds")


@builds_app.command("show")
def show_build(ctx: typer.Context, build_id: BuildId, as_json: AsJson = False) -> None:
    """Show a build: its inputs, status, progress and revision (or why it failed)."""
    print_fields(client(ctx).builds.get(build_id), as_json=as_json)


def _print_change(change: BuildChange) -> None:
    console = out()
    console.print(f"Revision {change.revision}.", markup=False, style="bold")
    for line in change.applied:
        console.print(f"  applied: {line}", markup=False)
    console.print(change.text.rstrip("\n"), markup=False)
    affected = ", ".join(change.affected_scenarios) or "none"
    console.print(f"Scenarios to run again: {affected}", markup=False)
    for question in change.questions:
        console.print(f"Question [{question.kind}]: {question.text}", markup=False)


@builds_app.command("change")
def change_build(
    ctx: typer.Context,
    build_id: BuildId,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The change in plain language.")],
    as_json: AsJson = False,
) -> None:
    """Change a build's draft in plain language; prints the diff and the scenarios to run
    again."""
    change = client(ctx).builds.change(build_id, text)
    if as_json:
        print_json(change)
        return
    _print_change(change)


@builds_app.command("agent")
def create_agent(
    ctx: typer.Context,
    build_id: BuildId,
    agent_id: Annotated[
        str | None, typer.Option("--agent-id", help="Add the draft as this agent's new version.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the new agent (default: the draft's).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """File the build's draft as an agent version, for review."""
    version = client(ctx).builds.create_agent(build_id, agent_id=agent_id, name=name)
    if as_json:
        print_json(version)
        return
    out().print(f"Agent {version.agent_id} version {version.number} ({version.id}).", markup=False)
