"""Late events: usage that occurred in a period whose invoice was already issued, but was not
counted by it (recorded after the issue, or committed by a transaction still running then).

An issued invoice is never changed. Each late event is billed once, on a `late` line of the
period it was found in: the month of the later of its `recorded_at` and the invoice's issue.
The invoice of a period covers an event if it is the workspace's invoice for that period or
the invoice of the event's agent for it (the two never both exist: see
`deputy.services.invoices`).

A transaction is assumed to commit within `SKEW` of stamping its events' `recorded_at`: an
event recorded up to `SKEW` before an invoice was issued, yet not in it, is late too."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.billing.event_lookup import EVENTS, usage_id_floor, written_between
from deputy.billing.ledger import PRICED_KINDS, RECORD_TABLE_COLUMNS, records
from deputy.billing.periods import Period, period_at, period_of
from deputy.billing.pricing import UsageRecord
from deputy.domain.pricing import WORKSPACE_SCOPE
from deputy.store import tables as t

SKEW = timedelta(hours=1)
U = t.UsageEventRow


def counted_event_ids(invoice: t.Invoice) -> set[str]:
    return {event_id for line in invoice.lines for event_id in line.get("event_ids", ())}


def _scope_filter(agent_id: str | None) -> list[Any]:
    return [] if agent_id is None else [U.agent_id == agent_id]


def _issued(session: Session, starts: Iterable[datetime]) -> dict[tuple[str, str], t.Invoice]:
    rows = session.scalars(select(t.Invoice).where(t.Invoice.period_start.in_(list(starts))))
    return {(period_of(row.period_start), row.scope_key): row for row in rows}


def late_records(
    session: Session, workspace_id: str, period: Period, agent_id: str | None
) -> list[UsageRecord]:
    """The late events billed in `period` (for the workspace, or one agent's): among the
    events written from `SKEW` before it began to its end (a primary-key range), those that
    occurred before it, in an invoiced period, uncounted by its invoice."""
    since, until = usage_id_floor(period.start - SKEW), usage_id_floor(period.end + SKEW)
    columns = (*RECORD_TABLE_COLUMNS, EVENTS.c.recorded_at)
    rows = [
        row
        for row in written_between(
            session, workspace_id, since, until, columns, EVENTS.c.occurred_at < period.start
        )
        if row.kind in PRICED_KINDS
        and period.start - SKEW <= row.recorded_at < period.end
        and (agent_id is None or row.agent_id == agent_id)
    ]
    if not rows:
        return []
    invoices = _issued(session, {period_at(row.occurred_at).start for row in rows})
    counted: dict[str, set[str]] = {}
    late = []
    for row in rows:
        earlier = period_of(row.occurred_at)
        invoice = invoices.get((earlier, WORKSPACE_SCOPE)) or invoices.get(
            (earlier, row.agent_id or "")
        )
        if invoice is None:
            continue  # its period is not invoiced yet: it will be, with it
        if invoice.id not in counted:
            counted[invoice.id] = counted_event_ids(invoice)
        if row.event_id in counted[invoice.id]:
            continue
        if period_of(max(row.recorded_at, invoice.created_at)) == period.name:
            late.append(row)
    return records(session, workspace_id, late)


def late_count(session: Session, invoice: t.Invoice) -> int:
    """How many events of an issued invoice's period and scope it did not count."""
    agent_id = None if invoice.scope_key == WORKSPACE_SCOPE else invoice.scope_key
    found = session.scalars(
        select(U.event_id).where(
            U.workspace_id == invoice.workspace_id,
            U.kind.in_(PRICED_KINDS),
            U.occurred_at >= invoice.period_start,
            U.occurred_at < invoice.period_end,
            U.recorded_at >= invoice.created_at - SKEW,
            *_scope_filter(agent_id),
        )
    ).all()
    if not found:
        return 0
    counted = counted_event_ids(invoice)
    return sum(1 for event_id in found if event_id not in counted)
