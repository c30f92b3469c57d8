"""The usage API (`billing:read`): sums of the workspace's usage events over a window, the raw
events oldest first, exports of them (CSV, CloudEvents) streamed in batches, and the provider
cost behind each outcome.

Windows are half-open on `occurred_at` (`deputy.billing.usage_report.resolve_window`). Lists
page by (`occurred_at`, id), so a page never skips or repeats an event however many are added
meanwhile. An export is one query in one transaction (the events as they were when it began),
read and sent `EXPORT_BATCH` events at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from deputy.billing.export import FILE_SUFFIXES, MEDIA_TYPES, export_chunks
from deputy.billing.usage_report import (
    EVENT_COLUMNS,
    E,
    EventFilter,
    event_fields,
    event_info,
    outcome_costs,
    resolve_window,
    summarize,
)
from deputy.domain.billing import UsageKind
from deputy.domain.errors import InvalidCursor, NotFound
from deputy.domain.resources import Page
from deputy.domain.tenancy import Principal, Scope
from deputy.domain.usage import (
    ExportFormat,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
)
from deputy.services.access import tenant
from deputy.services.pagination import decode_cursor, encode_cursor
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

EXPORT_BATCH = 1000
SCOPE: Scope = "billing:read"


def _check_subjects(session: Session, agent_id: str | None, conversation_id: str | None) -> None:
    """The agent and conversation a question names exist in the workspace (else `NotFound`,
    the same answer as for another workspace's)."""
    agent = select(t.Agent.id).where(t.Agent.id == agent_id)
    if agent_id is not None and session.scalar(agent) is None:
        raise NotFound("agent", agent_id)
    conversation = select(t.Conversation.id).where(t.Conversation.id == conversation_id)
    if conversation_id is not None and session.scalar(conversation) is None:
        raise NotFound("conversation", conversation_id)


def _filter(
    start: datetime | None,
    end: datetime | None,
    *,
    kind: UsageKind | None = None,
    agent_id: str | None = None,
    conversation_id: str | None = None,
) -> EventFilter:
    window_start, window_end = resolve_window(start, end, utcnow())
    return EventFilter(
        start=window_start,
        end=window_end,
        kinds=(kind,) if kind is not None else (),
        agent_id=agent_id,
        conversation_id=conversation_id,
    )


# ---- keyset pages, oldest first -----------------------------------------------------------

Position = tuple[datetime, str]


def _encode(row: t.UsageEventRow) -> str:
    return encode_cursor(f"{row.occurred_at.isoformat()}|{row.id}")


def _decode(cursor: str) -> Position:
    at, _, row_id = decode_cursor(cursor).partition("|")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidCursor("the cursor is not one this API returned") from None
    if not row_id or moment.tzinfo is None:
        raise InvalidCursor("the cursor is not one this API returned")
    return moment, row_id


def _page_rows(
    session: Session, query: Select[Any], limit: int, cursor: str | None
) -> tuple[list[t.UsageEventRow], str | None]:
    """A page of events after the cursor's, oldest first, and the cursor of the next page."""
    if cursor:
        at, row_id = _decode(cursor)
        query = query.where(or_(E.occurred_at > at, and_(E.occurred_at == at, E.id > row_id)))
    rows = list(session.scalars(query.order_by(E.occurred_at, E.id).limit(limit + 1)))
    next_cursor = _encode(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# ---- the operations -----------------------------------------------------------------------


def summary(
    platform: Platform,
    principal: Principal,
    *,
    start: datetime | None,
    end: datetime | None,
    agent_id: str | None,
    group_by: UsageGroupBy,
) -> UsageSummary:
    selected = _filter(start, end, agent_id=agent_id)
    with tenant(platform, principal, SCOPE) as session:
        _check_subjects(session, agent_id, None)
        return summarize(session, selected, group_by)


def list_events(
    platform: Platform,
    principal: Principal,
    *,
    start: datetime | None,
    end: datetime | None,
    kind: UsageKind | None,
    agent_id: str | None,
    conversation_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[UsageEventInfo]:
    selected = _filter(start, end, kind=kind, agent_id=agent_id, conversation_id=conversation_id)
    with tenant(platform, principal, SCOPE) as session:
        _check_subjects(session, agent_id, conversation_id)
        rows, next_cursor = _page_rows(session, selected.apply(select(E)), limit, cursor)
        return Page[UsageEventInfo](data=[event_info(row) for row in rows], next_cursor=next_cursor)


def list_outcomes(
    platform: Platform,
    principal: Principal,
    *,
    start: datetime | None,
    end: datetime | None,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[OutcomeCost]:
    selected = _filter(start, end, kind="outcome", agent_id=agent_id)
    with tenant(platform, principal, SCOPE) as session:
        _check_subjects(session, agent_id, None)
        rows, next_cursor = _page_rows(session, selected.apply(select(E)), limit, cursor)
        return Page[OutcomeCost](data=outcome_costs(session, rows), next_cursor=next_cursor)


@dataclass(frozen=True)
class UsageExport:
    media_type: str
    filename: str
    chunks: Iterator[str]


def _batches(
    platform: Platform, principal: Principal, selected: EventFilter
) -> Iterator[list[dict[str, Any]]]:
    """The selected events in JSON form, oldest first, `EXPORT_BATCH` at a time, from one
    query in one transaction (a consistent snapshot; on PostgreSQL a server-side cursor)."""
    query = selected.apply(select(*EVENT_COLUMNS)).order_by(E.occurred_at, E.id)
    with tenant(platform, principal, SCOPE) as session:
        rows = session.execute(query.execution_options(yield_per=EXPORT_BATCH))
        for batch in rows.partitions():
            yield [event_fields(row) for row in batch]


def export_events(
    platform: Platform,
    principal: Principal,
    *,
    export_format: ExportFormat,
    start: datetime | None,
    end: datetime | None,
    kind: UsageKind | None,
    agent_id: str | None,
) -> UsageExport:
    """Check the question now (scope, window, agent); the file is produced as it is read."""
    selected = _filter(start, end, kind=kind, agent_id=agent_id)
    with tenant(platform, principal, SCOPE) as session:
        _check_subjects(session, agent_id, None)
    name = f"usage-{selected.start:%Y%m%d}-{selected.end:%Y%m%d}.{FILE_SUFFIXES[export_format]}"
    return UsageExport(
        media_type=MEDIA_TYPES[export_format],
        filename=name,
        chunks=export_chunks(export_format, _batches(platform, principal, selected)),
    )
