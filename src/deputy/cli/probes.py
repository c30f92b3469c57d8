"""`deputy probes`: synthetic probes, scripted scenarios run on a schedule against an agent's
production deployment. A run that does not pass opens the probe's alert; the next passing run
resolves it.

The scenario file (YAML or JSON) is a sandbox scenario with a `script` (the customer's
messages) and `assertions`; a scenario suite works too, with `--scenario-id` naming the
scenario when it has several. Durations are seconds or a number with s, m, h or d (`5m`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from deputy.cli.output import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    table,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.ids import is_id
from deputy.domain.probes import Probe, ProbeRun, ProbeStatus
from deputy.sdk import DeputyClient

probes_app = typer.Typer(
    help="Synthetic probes: scripted scenarios run on a schedule against production.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}

ProbeRef = Annotated[
    str, typer.Argument(metavar="PROBE", help="The probe: its name or id (prb_…).")
]
ScenarioFile = Annotated[
    Path | None,
    typer.Option(
        "--scenario", exists=True, dir_okay=False, help="The scenario (or a suite), YAML or JSON."
    ),
]
ScenarioId = Annotated[
    str | None, typer.Option("--scenario-id", help="Which scenario of a suite file.")
]
Every = Annotated[
    str | None, typer.Option("--every", metavar="DURATION", help="How often it runs (e.g. 5m).")
]
Channel = Annotated[
    str | None, typer.Option("--channel", help="The deployment channel it tests (default api).")
]
JudgeModel = Annotated[
    str | None,
    typer.Option(
        "--judge-model", help="Judges natural-language assertions (default: the agent's)."
    ),
]
TurnTimeout = Annotated[
    str | None,
    typer.Option("--turn-timeout", metavar="DURATION", help="Longest wait for each reply."),
]
MaxLatency = Annotated[
    str | None,
    typer.Option("--max-latency", metavar="DURATION", help="A slower reply fails the run."),
]

PROBE_COLUMNS: list[Column[Probe]] = [
    ("ID", lambda probe: probe.id),
    ("NAME", lambda probe: probe.name),
    ("AGENT", lambda probe: probe.agent_id),
    ("CHANNEL", lambda probe: probe.channel),
    ("EVERY", lambda probe: duration_text(probe.interval_seconds)),
    ("ENABLED", lambda probe: "yes" if probe.enabled else "no"),
    ("NEXT RUN", lambda probe: when(probe.next_run_at) if probe.enabled else "-"),
]
RUN_COLUMNS: list[Column[ProbeRun]] = [
    ("ID", lambda run: run.id),
    ("STATUS", lambda run: run.status),
    ("VERSION", lambda run: "-" if run.agent_version is None else str(run.agent_version)),
    ("LATENCY", lambda run: "-" if run.latency_ms is None else f"{run.latency_ms} ms"),
    ("ALERT", lambda run: f"{run.alert.change} ({run.alert.severity})" if run.alert else "-"),
    ("STARTED", lambda run: when(run.started_at)),
    ("WHY", lambda run: run.reason or "-"),
]


def seconds_of(text: str, option: str) -> float:
    """`90`, `90s`, `5m`, `1.5h`, `1d` in seconds."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise fail(f"{option} takes a duration like 90s, 5m or 1h, not {text!r}", EXIT_USAGE)
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def duration_text(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def read_scenario(path: Path, scenario_id: str | None) -> dict[str, Any]:
    """The scenario in the file: the file itself, or one of a suite's `scenarios`."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise fail(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    if not isinstance(loaded, dict):
        raise fail(f"{path} must hold a scenario (a mapping)", EXIT_USAGE)
    suite = loaded.get("scenarios")
    if not isinstance(suite, list):
        return loaded
    chosen = [s for s in suite if isinstance(s, dict) and s.get("id") == scenario_id]
    if scenario_id is None and len(suite) == 1 and isinstance(suite[0], dict):
        chosen = suite
    if len(chosen) != 1:
        ids = ", ".join(str(s.get("id")) for s in suite if isinstance(s, dict))
        raise fail(
            f"{path} is a suite: name one of its scenarios with --scenario-id ({ids})", EXIT_USAGE
        )
    found: dict[str, Any] = chosen[0]
    return found


def _options(
    every: str | None,
    channel: str | None,
    judge_model: str | None,
    turn_timeout: str | None,
    max_latency: str | None,
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if every is not None:
        options["interval_seconds"] = round(seconds_of(every, "--every"))
    if channel is not None:
        options["channel"] = channel
    if judge_model is not None:
        options["judge_model"] = judge_model
    if turn_timeout is not None:
        options["turn_timeout_seconds"] = seconds_of(turn_timeout, "--turn-timeout")
    if max_latency is not None:
        options["max_turn_latency_ms"] = round(seconds_of(max_latency, "--max-latency") * 1000)
    return options


def probe_id_of(sdk: DeputyClient, probe: str) -> str:
    """A probe id as given, or the id of the probe named `probe`."""
    if is_id(probe, "prb"):
        return probe
    for found in sdk.probes.iter_all():
        if found.name == probe:
            return found.id
    raise fail(f"no probe is named {probe!r}", EXIT_NOT_FOUND)


def _print_probe(probe: Probe, as_json: bool) -> None:
    print_fields(probe, as_json=as_json, title=f"Probe {probe.name}", skip=("scenario",))
    if not as_json:
        script = "\n".join(f"  {n}. {m}" for n, m in enumerate(probe.scenario.script, 1))
        out().print(f"Script:\n{script}", markup=False)


def _print_run(run: ProbeRun, as_json: bool) -> None:
    if as_json:
        print_json(run)
        return
    version = "-" if run.agent_version is None else run.agent_version
    out().print(f"Run {run.id}: {run.status.upper()} (version {version})", markup=False)
    if run.reason:
        out().print(f"Why: {run.reason}", markup=False)
    for turn in run.turns:
        took = "" if turn.latency_ms is None else f" in {turn.latency_ms} ms"
        out().print(f"  > {turn.message}", markup=False)
        out().print(f"  < {turn.reply or turn.error or turn.status}{took}", markup=False)
    if run.checks:
        checks = table(
            run.checks,
            [("CHECK", lambda c: c.kind), ("OK", lambda c: "yes" if c.passed else "NO"),
             ("DETAIL", lambda c: c.detail)],
        )  # fmt: skip
        out().print(checks)
    if run.alert:
        out().print(f"Alert {run.alert.id}: {run.alert.change} ({run.alert.severity})")


@probes_app.command("add")
def add(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option("--agent", help="The agent: its name or id.")],
    name: Annotated[str, typer.Option("--name", help="A name for the probe.")],
    scenario: Annotated[
        Path,
        typer.Option("--scenario", exists=True, dir_okay=False, help="The scenario file."),
    ],
    every: Every = "5m",
    scenario_id: ScenarioId = None,
    channel: Channel = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Store it without running.")] = False,
    allow_irreversible: Annotated[
        bool,
        typer.Option("--allow-irreversible", help="Let it expect calls of irreversible tools."),
    ] = False,
    judge_model: JudgeModel = None,
    turn_timeout: TurnTimeout = None,
    max_latency: MaxLatency = None,
    as_json: AsJson = False,
) -> None:
    """Define a probe; an enabled one runs at once, then every DURATION."""
    body = read_scenario(scenario, scenario_id)
    options = _options(every, channel, judge_model, turn_timeout, max_latency)
    options |= {"enabled": not disabled, "allow_irreversible": allow_irreversible}
    sdk = client(ctx)
    _print_probe(sdk.probes.create(agent_id_of(sdk, agent), name, body, **options), as_json)


@probes_app.command("list")
def list_probes(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's only.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's probes."""
    sdk = client(ctx)
    agent_id = agent_id_of(sdk, agent) if agent else None
    page = sdk.probes.list(agent_id=agent_id, limit=limit, cursor=cursor)
    print_page(page, PROBE_COLUMNS, as_json=as_json, noun="probes")


@probes_app.command("show")
def show(ctx: typer.Context, probe: ProbeRef, as_json: AsJson = False) -> None:
    """One probe: its settings, its script and its latest run."""
    sdk = client(ctx)
    found = sdk.probes.get(probe_id_of(sdk, probe))
    _print_probe(found, as_json)
    if not as_json:
        latest = sdk.probes.runs(found.id, limit=1).data
        out().print("Latest run:" if latest else "No run yet.", markup=False)
        if latest:
            _print_run(latest[0], as_json=False)


@probes_app.command("update")
def update(
    ctx: typer.Context,
    probe: ProbeRef,
    scenario: ScenarioFile = None,
    scenario_id: ScenarioId = None,
    every: Every = None,
    channel: Channel = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Run on schedule or not.")
    ] = None,
    judge_model: JudgeModel = None,
    turn_timeout: TurnTimeout = None,
    max_latency: MaxLatency = None,
    as_json: AsJson = False,
) -> None:
    """Change a probe's scenario, schedule or settings."""
    changes = _options(every, channel, judge_model, turn_timeout, max_latency)
    if scenario is not None:
        changes["scenario"] = read_scenario(scenario, scenario_id)
    if enabled is not None:
        changes["enabled"] = enabled
    if not changes:
        raise fail("nothing to change: give --scenario, --every, --enable ...", EXIT_USAGE)
    sdk = client(ctx)
    _print_probe(sdk.probes.update(probe_id_of(sdk, probe), **changes), as_json)


@probes_app.command("run")
def run(ctx: typer.Context, probe: ProbeRef, as_json: AsJson = False) -> None:
    """Run a probe now and show the run; exits 1 when it did not pass."""
    sdk = client(ctx)
    result = sdk.probes.run(probe_id_of(sdk, probe))
    _print_run(result, as_json)
    if result.status != "passed":
        raise typer.Exit(EXIT_ERROR)


@probes_app.command("runs")
def runs(
    ctx: typer.Context,
    probe: ProbeRef,
    status: Annotated[str | None, typer.Option("--status", help="passed, failed or error.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """A probe's runs, newest first."""
    if status not in (None, "passed", "failed", "error"):
        raise fail("--status is one of passed, failed, error", EXIT_USAGE)
    chosen: ProbeStatus | None = status  # type: ignore[assignment]  # checked above
    sdk = client(ctx)
    page = sdk.probes.runs(probe_id_of(sdk, probe), status=chosen, limit=limit, cursor=cursor)
    print_page(page, RUN_COLUMNS, as_json=as_json, noun="runs")


@probes_app.command("remove")
def remove(
    ctx: typer.Context,
    probe: ProbeRef,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a probe and its runs (its firing alert is resolved)."""
    sdk = client(ctx)
    probe_id = probe_id_of(sdk, probe)
    if not yes:
        typer.confirm(f"Remove probe {probe} and its runs?", abort=True)
    sdk.probes.delete(probe_id)
    out().print(f"Removed {probe_id}.", markup=False)
