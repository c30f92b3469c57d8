"""`deputy usage`: what the workspace consumed (model tokens, conversations, outcomes, tool
calls, voice minutes, seats), summed per kind, agent, day or channel; the raw events, listed or
exported (CSV, CloudEvents); and the model spend behind each outcome.

Windows are `--from` (inclusive) to `--to` (exclusive), ISO 8601 dates or times (UTC when no
zone is given); by default the current calendar month."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, get_args

import typer

from deputy.cli.listing import AllPages, Cursor, Limit, fetch
from deputy.cli.output import EXIT_USAGE, AsJson, Column, err, fail, out, print_json, print_page
from deputy.cli.output import table as make_table
from deputy.cli.state import agent_id_of, client
from deputy.domain.billing import UsageKind
from deputy.domain.usage import (
    ExportFormat,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
    UsageTotal,
)
from deputy.sdk import DeputyClient

usage_app = typer.Typer(
    help="Usage: sums, raw events and exports, and the model spend of each outcome.",
    invoke_without_command=True,
)

KINDS = get_args(UsageKind)
GROUPS = get_args(UsageGroupBy)
FORMATS = get_args(ExportFormat)

From = Annotated[
    str | None,
    typer.Option("--from", help="Start (inclusive), e.g. 2026-11-01 or an RFC 3339 time."),
]
To = Annotated[str | None, typer.Option("--to", help="End (exclusive).")]
AgentOption = Annotated[str | None, typer.Option("--agent", help="One agent's (name or id).")]


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} must be an ISO 8601 date or time, got {text!r}", EXIT_USAGE) from None


def _agent(sdk: DeputyClient, agent: str | None) -> str | None:
    return agent_id_of(sdk, agent) if agent else None


def _cost(value: str | None) -> str:
    return "-" if value is None else f"${value}"


TOTAL_COLUMNS: list[Column[UsageTotal]] = [
    ("KIND", lambda u: u.kind),
    ("EVENTS", lambda u: str(u.events)),
    ("QUANTITY", lambda u: u.quantity),
    ("UNIT", lambda u: u.unit),
    ("PROVIDER COST", lambda u: _cost(u.cost_usd)),
    ("UNPRICED", lambda u: str(u.unpriced_events) if u.unpriced_events else "-"),
]
EVENT_COLUMNS: list[Column[UsageEventInfo]] = [
    ("EVENT", lambda e: e.event_id),
    ("OCCURRED (UTC)", lambda e: e.occurred_at.strftime("%Y-%m-%d %H:%M:%S")),
    ("KIND", lambda e: e.kind),
    ("QUANTITY", lambda e: f"{e.quantity} {e.unit}"),
    ("CONVERSATION", lambda e: e.conversation_id or "-"),
    ("SUBJECT", lambda e: e.subject or "-"),
    ("COST", lambda e: _cost(e.cost_usd)),
]
OUTCOME_COLUMNS: list[Column[OutcomeCost]] = [
    ("CONVERSATION", lambda o: o.conversation_id or "-"),
    ("OCCURRED (UTC)", lambda o: o.occurred_at.strftime("%Y-%m-%d %H:%M:%S")),
    ("AGENT", lambda o: o.agent_id or "-"),
    ("OUTCOME", lambda o: (o.outcome or "-") + (" (reversed)" if o.reversed else "")),
    ("MODEL CALLS", lambda o: str(o.model_calls)),
    ("TOKENS", lambda o: str(o.tokens)),
    ("PROVIDER COST", lambda o: _cost(o.provider_cost_usd)),
    ("TOOL CALLS", lambda o: str(o.tool_calls)),
]


def _print_summary(summary: UsageSummary) -> None:
    window = f"{summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC"
    if not summary.totals:
        out().print(f"No usage from {window}.", markup=False)
        return
    if summary.group_by != "kind":
        heading = summary.group_by.upper()
        columns: list[Column[UsageTotal]] = [(heading, lambda u: u.group or "-"), *TOTAL_COLUMNS]
        out().print(make_table(summary.groups, columns, title=f"Usage by {summary.group_by}"))
    out().print(make_table(summary.totals, TOTAL_COLUMNS, title=f"Usage from {window}"))


@usage_app.callback()
def usage(
    ctx: typer.Context,
    start: From = None,
    end: To = None,
    agent: AgentOption = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help=f"One of: {', '.join(GROUPS)}.")
    ] = "kind",
    as_json: AsJson = False,
) -> None:
    """Sums of the window's usage per kind (and per agent, day or channel with --group-by)."""
    if ctx.invoked_subcommand is not None:
        return
    if group_by not in GROUPS:
        raise fail(f"--group-by is one of {', '.join(GROUPS)}, got {group_by!r}", EXIT_USAGE)
    sdk = client(ctx)
    summary = sdk.usage.summary(
        start=_moment(start, "--from"),
        end=_moment(end, "--to"),
        agent_id=_agent(sdk, agent),
        group_by=group_by,  # type: ignore[arg-type]  # checked against GROUPS above
    )
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)


@usage_app.command("events")
def events(
    ctx: typer.Context,
    start: From = None,
    end: To = None,
    kind: Annotated[str | None, typer.Option("--kind", help=f"One of: {', '.join(KINDS)}.")] = None,
    agent: AgentOption = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="One conversation's (cnv_…).")
    ] = None,
    export: Annotated[
        str | None,
        typer.Option("--export", help="Write every event of the window: csv or cloudevents."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="The file to export to.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    all_pages: AllPages = False,
    as_json: AsJson = False,
) -> None:
    """The raw usage events, oldest first; or, with --export, all of them into a file."""
    if kind is not None and kind not in KINDS:
        raise fail(f"--kind is one of {', '.join(KINDS)}, got {kind!r}", EXIT_USAGE)
    if export is not None and export not in FORMATS:
        raise fail(f"--export is one of {', '.join(FORMATS)}, got {export!r}", EXIT_USAGE)
    if (export is None) != (output is None):
        raise fail("--export FORMAT and --output FILE go together", EXIT_USAGE)
    sdk = client(ctx)
    since, until = _moment(start, "--from"), _moment(end, "--to")
    agent_id = _agent(sdk, agent)
    chosen: UsageKind | None = kind  # type: ignore[assignment]  # checked against KINDS above
    if export is not None and output is not None:
        if conversation is not None:
            raise fail("--conversation cannot be exported; list it instead", EXIT_USAGE)
        fmt: ExportFormat = export  # type: ignore[assignment]  # checked against FORMATS above
        written = sdk.usage.export(
            output, fmt, start=since, end=until, kind=chosen, agent_id=agent_id
        )
        err().print(f"Wrote {written} bytes to {output}.", markup=False)
        return
    page = fetch(
        lambda size, after: sdk.usage.events_page(
            start=since,
            end=until,
            kind=chosen,
            agent_id=agent_id,
            conversation_id=conversation,
            limit=size,
            cursor=after,
        ),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, EVENT_COLUMNS, as_json=as_json, noun="usage events")


@usage_app.command("outcomes")
def outcomes(
    ctx: typer.Context,
    start: From = None,
    end: To = None,
    agent: AgentOption = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    all_pages: AllPages = False,
    as_json: AsJson = False,
) -> None:
    """Each outcome with the provider cost of its conversation's model calls ('-' when a
    call's price is unknown), its tokens and tool calls."""
    sdk = client(ctx)
    since, until = _moment(start, "--from"), _moment(end, "--to")
    agent_id = _agent(sdk, agent)
    page = fetch(
        lambda size, after: sdk.usage.outcomes_page(
            start=since, end=until, agent_id=agent_id, limit=size, cursor=after
        ),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, OUTCOME_COLUMNS, as_json=as_json, noun="outcomes")
