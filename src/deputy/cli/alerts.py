"""`deputy alerts`: the workspace's alerts (list, show, silence, resolve) and where they go
(`deputy alerts targets add|list|remove|test`); `deputy status AGENT`: an agent at a glance.

A webhook target needs a signing secret and an email target with an SMTP login its password:
`--secret VALUE`, `--secret @FILE` (the file's content), `--secret env:VAR`, else
$DEPUTY_SECRET_SECRET or a hidden prompt. Secrets are never printed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, get_args

import typer
from rich.table import Table

from deputy.cli.channels import read_secrets
from deputy.cli.output import (
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
from deputy.domain import alerts as a
from deputy.domain.ids import is_id
from deputy.sdk import DeputyClient

alerts_app = typer.Typer(
    help="Alerts (SLO burn, budgets, probes) and where they are sent.", no_args_is_help=True
)
targets_app = typer.Typer(help="Where alerts go: signed webhooks and email.", no_args_is_help=True)
alerts_app.add_typer(targets_app, name="targets")

AlertId = Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id (alr_…).")]
Target = Annotated[
    str, typer.Argument(metavar="TARGET", help="The target: its name or id (altg_…).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]
SEVERITIES = get_args(a.Severity)


def _silenced(alert: a.Alert) -> bool:
    return alert.silenced_until is not None and alert.silenced_until > datetime.now(UTC)


COLUMNS: list[Column[a.Alert]] = [
    ("ID", lambda x: x.id),
    ("STATUS", lambda x: x.status + (" (silenced)" if _silenced(x) else "")),
    ("SEVERITY", lambda x: x.severity),
    ("KIND", lambda x: x.kind),
    ("AGENT", lambda x: x.agent_id or "-"),
    ("TITLE", lambda x: x.title),
    ("OPENED", lambda x: when(x.opened_at)),
    ("RESOLVED", lambda x: when(x.resolved_at)),
]
TARGET_COLUMNS: list[Column[a.AlertTarget]] = [
    ("ID", lambda x: x.id),
    ("NAME", lambda x: x.name),
    ("KIND", lambda x: x.kind),
    ("TO", lambda x: str(x.config.get("url") or ", ".join(x.config.get("to", [])))),
    ("MIN SEVERITY", lambda x: x.min_severity),
    ("ENABLED", lambda x: "yes" if x.enabled else "no"),
    ("SECRET", lambda x: "set" if x.secret_set else "-"),
]


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="firing or resolved.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's only.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="slo_burn, budget or probe.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's alerts, newest first."""
    if status is not None and status not in get_args(a.AlertStatus):
        raise fail(f"--status is firing or resolved, not {status!r}", EXIT_USAGE)
    if kind is not None and kind not in get_args(a.AlertKind):
        raise fail(f"--kind is slo_burn, budget or probe, not {kind!r}", EXIT_USAGE)
    sdk = client(ctx)
    page = sdk.alerts.list(
        status=status,  # type: ignore[arg-type]  # checked above
        agent_id=agent_id_of(sdk, agent) if agent else None,
        kind=kind,  # type: ignore[arg-type]  # checked above
        limit=limit,
        cursor=cursor,
    )
    print_page(page, COLUMNS, as_json=as_json, noun="alerts")


def _print_alert(alert: a.Alert, as_json: bool) -> None:
    print_fields(alert, as_json=as_json, title=f"Alert {alert.id}", skip=("details",))
    if not as_json:
        out().print("details:", markup=False)
        print_json(alert.details)


@alerts_app.command("show")
def show(ctx: typer.Context, alert: AlertId, as_json: AsJson = False) -> None:
    """One alert with its details (for an SLO alert: the burn rates per window)."""
    _print_alert(client(ctx).alerts.get(alert), as_json)


@alerts_app.command("silence")
def silence(
    ctx: typer.Context,
    alert: AlertId,
    reason: Reason,
    minutes: Annotated[
        int, typer.Option("--minutes", min=1, max=a.MAX_SILENCE_MINUTES, help="How long.")
    ] = 60,
    as_json: AsJson = False,
) -> None:
    """Notify no one about a firing alert for a while (it still resolves)."""
    _print_alert(client(ctx).alerts.silence(alert, minutes, reason), as_json)


@alerts_app.command("resolve")
def resolve(ctx: typer.Context, alert: AlertId, reason: Reason, as_json: AsJson = False) -> None:
    """Resolve a firing alert now; if its condition still holds, a new one opens at the next
    check."""
    _print_alert(client(ctx).alerts.resolve(alert, reason), as_json)


# ---- targets ------------------------------------------------------------------------------


def target_id_of(sdk: DeputyClient, target: str) -> str:
    if is_id(target, "altg"):
        return target
    for found in sdk.alerts.targets.iter_all():
        if found.name == target:
            return found.id
    raise fail(f"no alert target is named {target!r}", EXIT_NOT_FOUND)


def _target_config(
    kind: str,
    url: str | None,
    to: list[str] | None,
    sender: str | None,
    smtp: tuple[str | None, int, str, str | None],
) -> dict[str, Any]:
    host, port, security, username = smtp
    if kind == "webhook":
        if not url:
            raise fail("a webhook target needs --url", EXIT_USAGE)
        return {"url": url}
    if not (to and sender and host):
        raise fail("an email target needs --to, --from and --smtp-host", EXIT_USAGE)
    config: dict[str, Any] = {
        "to": to,
        "from_address": sender,
        "smtp_host": host,
        "smtp_port": port,
        "smtp_security": security,
    }
    if username:
        config["smtp_username"] = username
    return config


@targets_app.command("add")
def add_target(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the target.")],
    kind: Annotated[str, typer.Argument(metavar="KIND", help="webhook or email.")],
    url: Annotated[str | None, typer.Option("--url", help="The webhook's URL.")] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="An address to email (repeatable).")
    ] = None,
    sender: Annotated[str | None, typer.Option("--from", help="The sender's address.")] = None,
    smtp_host: Annotated[str | None, typer.Option("--smtp-host")] = None,
    smtp_port: Annotated[int, typer.Option("--smtp-port", min=1, max=65535)] = 587,
    smtp_security: Annotated[
        str, typer.Option("--smtp-security", help="none, starttls or tls.")
    ] = "starttls",
    smtp_username: Annotated[str | None, typer.Option("--smtp-username")] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="VALUE|@FILE|env:VAR",
            help="The webhook's signing secret or the SMTP password.",
        ),
    ] = None,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="ticket (everything) or page.")
    ] = "ticket",
    as_json: AsJson = False,
) -> None:
    """Send alerts to a webhook (signed JSON POSTs) or to email addresses."""
    if kind not in get_args(a.TargetKind):
        raise fail(f"KIND is webhook or email, not {kind!r}", EXIT_USAGE)
    if min_severity not in SEVERITIES:
        raise fail(f"--min-severity is ticket or page, not {min_severity!r}", EXIT_USAGE)
    config = _target_config(
        kind, url, to, sender, (smtp_host, smtp_port, smtp_security, smtp_username)
    )
    needs_secret = kind == "webhook" or smtp_username is not None
    given = None
    if secret is not None or needs_secret:
        item = "secret" if secret is None else f"secret={secret}"
        given = read_secrets([item])["secret"]
    created = client(ctx).alerts.targets.create(
        name,
        kind,  # type: ignore[arg-type]  # checked above
        config,
        secret=given,
        min_severity=min_severity,  # type: ignore[arg-type]  # checked above
    )
    print_fields(created, as_json=as_json, title=f"Alert target {created.name}")


@targets_app.command("list")
def list_targets(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's alert targets."""
    page = client(ctx).alerts.targets.list(limit=limit, cursor=cursor)
    print_page(page, TARGET_COLUMNS, as_json=as_json, noun="alert targets")


@targets_app.command("remove")
def remove_target(
    ctx: typer.Context,
    target: Target,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a target (notifications still queued for it are dropped)."""
    sdk = client(ctx)
    target_id = target_id_of(sdk, target)
    if not yes:
        typer.confirm(f"Remove alert target {target}?", abort=True)
    sdk.alerts.targets.delete(target_id)
    out().print(f"Removed {target_id}.", markup=False)


@targets_app.command("test")
def send_test_notification(ctx: typer.Context, target: Target, as_json: AsJson = False) -> None:
    """Send a test notification to a target now."""
    sdk = client(ctx)
    result = sdk.alerts.test(target_id_of(sdk, target))
    if as_json:
        print_json(result)
    elif result.sent:
        out().print(f"Sent a test notification to {target}.", markup=False)
    if not result.sent:
        raise fail(f"the test notification to {target} failed: {result.error}")


# ---- deputy status AGENT ------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _slo_table(status: a.AgentStatus) -> Table:
    grid = Table(title="SLOs", show_lines=False)
    for header in ("SLI", "OBJECTIVE", "COMPLIANCE", "BUDGET LEFT", "BURN 1H", "BURN 6H", "ALERT"):
        grid.add_column(header)
    for item in status.slos.slis:
        burns = {w.window: w.burn_rate for w in item.windows}
        grid.add_row(
            item.sli,
            _pct(item.objective),
            f"{_pct(item.compliance)} ({item.good}/{item.total})",
            _pct(item.budget_remaining),
            "-" if burns.get("1h") is None else f"{burns['1h']:.2f}x",
            "-" if burns.get("6h") is None else f"{burns['6h']:.2f}x",
            f"{item.alert.severity}: {item.alert.id}" if item.alert else "-",
        )
    return grid


def print_status(status: a.AgentStatus) -> None:
    console = out()
    health = status.health
    version = f" v{health.live_version}" if health.live_version else ""
    console.print(
        f"{status.agent_name} ({status.agent_id}){version}: {health.state.upper()}", markup=False
    )
    for reason in health.reasons:
        console.print(f"  - {reason}", markup=False)
    if status.slos.slis:
        console.print(_slo_table(status))
    for burn in status.budget:
        console.print(
            f"Budget {burn.scope}: {burn.spend} of {burn.amount} {burn.currency} "
            f"({burn.fraction:.0%}) in {burn.period}" + (" — exhausted" if burn.exhausted else ""),
            markup=False,
        )
    if status.incidents:
        console.print(table(status.incidents[:10], COLUMNS, title="Incidents"))
    if status.probes:
        probes: list[Column[a.ProbeRunSummary]] = [
            ("PROBE", lambda p: p.probe_name),
            ("LAST RUN", lambda p: p.status or "never"),
            ("AT", lambda p: when(p.started_at)),
            ("LATENCY", lambda p: "-" if p.latency_ms is None else f"{p.latency_ms} ms"),
        ]
        console.print(table(status.probes, probes, title="Probes"))


def status_command(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(metavar="AGENT", help="The agent: its name or id.")],
    as_json: AsJson = False,
) -> None:
    """An agent at a glance: health and why, SLOs, budget, incidents and probes."""
    sdk = client(ctx)
    status = sdk.slos.status(agent_id_of(sdk, agent))
    if as_json:
        print_json(status)
    else:
        print_status(status)
