"""Usage: what the workspace consumed (model tokens and calls, conversations, outcomes, tool
calls, voice minutes, seats), summed, listed, exported, and the provider cost of each outcome.
Every call needs `billing:read`. Windows are half-open, `[from, to)` on when the fact happened
(default: the current calendar month, UTC; at most 366 days)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain.billing import UsageKind
from deputy.domain.resources import Page
from deputy.domain.usage import (
    ExportFormat,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
)
from deputy.services import usage as svc

router = APIRouter(tags=["usage"])

From = Annotated[
    datetime | None,
    Query(alias="from", description="Start of the window (inclusive; RFC 3339, UTC if no zone)."),
]
To = Annotated[datetime | None, Query(description="End of the window (exclusive).")]
AgentFilter = Annotated[str | None, Query(max_length=64, description="Only this agent's usage.")]
KindFilter = Annotated[UsageKind | None, Query(description="Only events of this kind.")]


@router.get("/usage", response_model=UsageSummary)
def usage_summary(
    platform: PlatformDep,
    principal: PrincipalDep,
    start: From = None,
    to: To = None,
    agent_id: AgentFilter = None,
    group_by: Annotated[
        UsageGroupBy, Query(description="One row per kind within each kind, agent, day or channel.")
    ] = "kind",
) -> UsageSummary:
    """Event counts, quantities (exact decimals, as strings) and provider cost per group and
    kind, and per kind over the whole window."""
    return svc.summary(
        platform, principal, start=start, end=to, agent_id=agent_id, group_by=group_by
    )


@router.get("/usage/events", response_model=Page[UsageEventInfo])
def list_usage_events(
    platform: PlatformDep,
    principal: PrincipalDep,
    start: From = None,
    to: To = None,
    kind: KindFilter = None,
    agent_id: AgentFilter = None,
    conversation_id: Annotated[
        str | None, Query(max_length=64, description="Only this conversation's events.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[UsageEventInfo]:
    """The raw usage events, oldest first, every column."""
    return svc.list_events(
        platform,
        principal,
        start=start,
        end=to,
        kind=kind,
        agent_id=agent_id,
        conversation_id=conversation_id,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/usage/events/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The events as CSV (a header row, RFC 4180) or as a CloudEvents 1.0 "
            "JSON batch, streamed",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/cloudevents-batch+json": {"schema": {"type": "array"}},
            },
        }
    },
)
def export_usage_events(
    platform: PlatformDep,
    principal: PrincipalDep,
    export_format: Annotated[ExportFormat, Query(alias="format")] = "csv",
    start: From = None,
    to: To = None,
    kind: KindFilter = None,
    agent_id: AgentFilter = None,
) -> StreamingResponse:
    """Every event of the window (recorded before the export began), oldest first."""
    export = svc.export_events(
        platform,
        principal,
        export_format=export_format,
        start=start,
        end=to,
        kind=kind,
        agent_id=agent_id,
    )
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


@router.get("/usage/outcomes", response_model=Page[OutcomeCost])
def list_outcome_costs(
    platform: PlatformDep,
    principal: PrincipalDep,
    start: From = None,
    to: To = None,
    agent_id: AgentFilter = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[OutcomeCost]:
    """One row per outcome, oldest first, with the provider cost of its conversation's model
    calls (null when one had no known price), its tokens and tool calls: the margin's other
    half."""
    return svc.list_outcomes(
        platform, principal, start=start, end=to, agent_id=agent_id, limit=limit, cursor=cursor
    )
