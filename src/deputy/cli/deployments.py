"""`deputy deployments`: put a version live on a channel or start it as a canary, list and show
deployments (a canary's metrics beside the live version's, its breaches and the decision),
promote, pause, resume, roll back, and an agent's trust record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from deputy.cli.output import (
    AsJson,
    Column,
    out,
    print_fields,
    print_json,
    table,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.lifecycle import ALL_CHANNELS, ArmMetrics, CanaryStatus, Deployment

deployments_app = typer.Typer(
    help="Which versions answer, canaries, promote and roll back.", no_args_is_help=True
)

Agent = Annotated[str, typer.Argument(metavar="AGENT", help="The agent: its name or id.")]
DeploymentId = Annotated[
    str, typer.Argument(metavar="DEPLOYMENT_ID", help="The deployment's id (dep_…).")
]


def _canary(d: Deployment) -> str:
    if d.canary_version is None:
        return "-"
    paused = ", paused" if d.canary_paused else ""
    by = ", autopilot" if d.canary_by_autopilot else ""
    return f"v{d.canary_version} at {d.canary_percent}%{paused}{by}"


COLUMNS: list[Column[Deployment]] = [
    ("ID", lambda d: d.id),
    ("CHANNEL", lambda d: d.channel),
    ("LIVE", lambda d: f"v{d.live_version}"),
    ("PREVIOUS", lambda d: f"v{d.previous_version}" if d.previous_version else "-"),
    ("CANARY", _canary),
    ("UPDATED", lambda d: when(d.updated_at)),
]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


METRICS: list[tuple[str, Callable[[ArmMetrics], str]]] = [
    ("conversations", lambda m: str(m.conversations)),
    ("resolved", lambda m: str(m.resolved)),
    ("escalated", lambda m: str(m.escalated)),
    ("resolution rate", lambda m: _rate(m.resolution_rate)),
    ("escalation rate", lambda m: _rate(m.escalation_rate)),
    ("turns", lambda m: str(m.turns)),
    ("error rate", lambda m: _rate(m.error_rate)),
    ("guardrail violations", lambda m: _rate(m.guardrail_violation_rate)),
    ("p95 latency", lambda m: "-" if m.p95_latency_ms is None else f"{m.p95_latency_ms:.0f} ms"),
]


def _print_canary(status: CanaryStatus) -> None:
    """The two arms side by side, then the breaches and the decision."""
    grid = Table(title="Canary against the live version")
    grid.add_column("METRIC", no_wrap=True)
    grid.add_column(f"LIVE v{status.live.version}", justify="right")
    grid.add_column(f"CANARY v{status.canary.version}", justify="right")
    for name, render in METRICS:
        grid.add_row(name, render(status.live), render(status.canary))
    console = out()
    console.print(grid)
    for breach in status.breaches:
        console.print(f"breach: {breach}", markup=False, style="red")
    acts = "autopilot acts on it" if status.autonomy == "auto_with_rollback" else "a human decides"
    console.print(
        f"decision: {status.decision} ({status.reason}); {status.autonomy}: {acts}", markup=False
    )


def _print(deployment: Deployment, as_json: bool) -> None:
    print_fields(deployment, as_json=as_json, title=f"Deployment {deployment.id}")


@deployments_app.command("deploy")
def deploy(
    ctx: typer.Context,
    agent: Agent,
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="The version.")],
    channel: Annotated[
        str, typer.Option("--channel", help="A channel, or `all` (every channel without its own).")
    ] = ALL_CHANNELS,
    canary: Annotated[
        int | None,
        typer.Option("--canary", min=1, max=99, help="Start it as a canary on N% of new ones."),
    ] = None,
    proposal: Annotated[
        str | None, typer.Option("--proposal", help="The approved proposal it carries out.")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")] = "",
    as_json: AsJson = False,
) -> None:
    """Put a version live on a channel, or start it as a canary beside the live version."""
    sdk = client(ctx)
    deployment = sdk.deployments.deploy(
        agent_id_of(sdk, agent),
        version,
        channel=channel,
        canary_percent=canary,
        proposal_id=proposal,
        note=note,
    )
    _print(deployment, as_json)


@deployments_app.command("list")
def list_deployments(ctx: typer.Context, agent: Agent, as_json: AsJson = False) -> None:
    """The agent's deployments, one per channel."""
    sdk = client(ctx)
    found = sdk.deployments.list(agent_id_of(sdk, agent))
    if as_json:
        print_json(found)
    elif not found:
        out().print("Not deployed: its latest version answers every channel.")
    else:
        out().print(table(found, COLUMNS))


@deployments_app.command("show")
def show(ctx: typer.Context, deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """A deployment, and its canary's metrics beside the live version's with the decision."""
    sdk = client(ctx)
    deployment = sdk.deployments.get(deployment_id)
    status = sdk.deployments.canary(deployment_id) if deployment.canary_version else None
    if as_json:
        print_json({"deployment": deployment, "canary": status})
        return
    _print(deployment, False)
    if status is not None:
        out().print("")
        _print_canary(status)


@deployments_app.command("promote")
def promote(ctx: typer.Context, deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """The canary becomes the live version."""
    _print(client(ctx).deployments.promote(deployment_id), as_json)


@deployments_app.command("pause")
def pause(ctx: typer.Context, deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """The canary takes no new conversations until resumed."""
    _print(client(ctx).deployments.pause(deployment_id), as_json)


@deployments_app.command("resume")
def resume(ctx: typer.Context, deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """The canary takes its share of new conversations again."""
    _print(client(ctx).deployments.resume(deployment_id), as_json)


@deployments_app.command("rollback")
def rollback(
    ctx: typer.Context,
    deployment_id: DeploymentId,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    as_json: AsJson = False,
) -> None:
    """Remove the canary; without one, put the previous version live again."""
    _print(client(ctx).deployments.rollback(deployment_id, reason=reason), as_json)


@deployments_app.command("trust")
def trust(ctx: typer.Context, agent: Agent, as_json: AsJson = False) -> None:
    """How the agent's proposals and canaries went: the case for (or against) more autonomy."""
    sdk = client(ctx)
    record = sdk.deployments.trust(agent_id_of(sdk, agent))
    print_fields(record, as_json=as_json, title=f"Trust record of {record.agent_id}")
