"""Reading a period's usage for pricing, in the caller's (tenant-scoped) session.

Two ways to read the same usage, priced by the same `deputy.billing.pricing` rules:

- `traced_tallies` loads the events themselves (light columns) so every line knows the event
  ids it sums and the model spend behind it: invoices and previews.
- `summed_tallies` starts from the month's sums per agent and component
  (`deputy.billing.month_sums`, kept incrementally; a credit adds two counts of its earlier
  month): budget checks, which run before every new conversation.

Late events (`deputy.billing.late_events`) are only in the traced reading: a budget
counts what occurred in its month."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from deputy.billing.event_lookup import EVENTS, by_event_ids
from deputy.billing.month_sums import MONTH_SUMS
from deputy.billing.periods import Period, parse_period
from deputy.billing.pricing import ZERO, Tally, UsageRecord, sort_records
from deputy.domain.pricing import COMPONENTS
from deputy.store import tables as t

PRICED_KINDS = tuple(sorted({info.kind for info in COMPONENTS.values()} | {"outcome_reversal"}))
BATCH = 500
SPEND_AFTER = timedelta(days=31)
U = t.UsageEventRow


def _window(workspace_id: str, start: datetime, end: datetime, agent_id: str | None) -> list[Any]:
    where = [U.workspace_id == workspace_id, U.occurred_at >= start, U.occurred_at < end]
    if agent_id is not None:
        where.append(U.agent_id == agent_id)
    return where


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for index in range(0, len(values), BATCH):
        yield values[index : index + BATCH]


def outcome_times(
    session: Session, workspace_id: str, event_ids: Iterable[str]
) -> dict[str, datetime]:
    """When each of these outcome events occurred (those that exist)."""
    rows = by_event_ids(session, workspace_id, event_ids, EVENTS.c.event_id, EVENTS.c.occurred_at)
    return {row.event_id: row.occurred_at for row in rows}


def record_of(row: Any, reversed_at: dict[str, datetime]) -> UsageRecord:
    return UsageRecord(
        event_id=row.event_id,
        kind=row.kind,
        agent_id=row.agent_id,
        subject=row.subject,
        quantity=Decimal(row.quantity),
        occurred_at=row.occurred_at,
        conversation_id=row.conversation_id,
        cost_usd=None if row.cost_usd is None else Decimal(row.cost_usd),
        reversed_outcome_at=reversed_at.get(row.reverses_event_id or ""),
    )


RECORD_NAMES = (
    "event_id",
    "kind",
    "agent_id",
    "subject",
    "quantity",
    "occurred_at",
    "conversation_id",
    "cost_usd",
    "reverses_event_id",
)
RECORD_COLUMNS = tuple(getattr(U, name) for name in RECORD_NAMES)
RECORD_TABLE_COLUMNS = tuple(EVENTS.c[name] for name in RECORD_NAMES)


def records(session: Session, workspace_id: str, rows: Sequence[Any]) -> list[UsageRecord]:
    """Rows of the record columns as records, reversals knowing when their outcome occurred."""
    reversed_ids = [row.reverses_event_id for row in rows if row.reverses_event_id]
    reversed_at = outcome_times(session, workspace_id, reversed_ids) if reversed_ids else {}
    return [record_of(row, reversed_at) for row in rows]


def period_records(
    session: Session, workspace_id: str, start: datetime, end: datetime, agent_id: str | None
) -> list[UsageRecord]:
    """Every priced kind's events that occurred in [start, end), oldest first."""
    query = (
        select(*RECORD_COLUMNS)
        .where(*_window(workspace_id, start, end, agent_id), U.kind.in_(PRICED_KINDS))
        .order_by(U.occurred_at, U.event_id)
    )
    return records(session, workspace_id, session.execute(query).all())


def conversation_spend(
    session: Session,
    workspace_id: str,
    conversation_ids: Iterable[str],
    window: tuple[datetime, datetime],
) -> dict[str, Decimal]:
    """The provider cost of each conversation's model calls (those with a known cost) made in
    `window`, or since the conversation began when earlier: one pass over the workspace's
    model calls in that span (there is no index by conversation)."""
    wanted = set(conversation_ids)
    if not wanted:
        return {}
    began, until = window
    for chunk in _chunks(sorted(wanted)):
        query = select(func.min(t.Conversation.created_at)).where(t.Conversation.id.in_(chunk))
        earliest = session.scalar(query)
        began = min(began, earliest) if earliest is not None else began
    calls = session.execute(
        select(U.conversation_id, U.cost_usd).where(
            U.workspace_id == workspace_id,
            U.kind == "model_call",
            U.occurred_at >= began,
            U.occurred_at < until,
            U.cost_usd.is_not(None),
        )
    )
    spend: dict[str, Decimal] = {}
    for conversation_id, cost in calls:
        if conversation_id in wanted and cost is not None:
            spend[conversation_id] = spend.get(conversation_id, ZERO) + Decimal(cost)
    return spend


def earlier_outcome_count(
    session: Session,
    workspace_id: str,
    credit: Tally,
    earlier: tuple[datetime, datetime],
    before: datetime,
) -> Decimal:
    """How many outcomes of `credit`'s scope and component occurred in the earlier period,
    less those reversed before `before` (what that period counts before this credit)."""
    info = COMPONENTS[credit.component]
    start, end = earlier
    outcomes = select(func.count()).where(
        *_window(workspace_id, start, end, None),
        U.agent_id.is_(None) if credit.agent_id is None else U.agent_id == credit.agent_id,
        U.kind == "outcome",
        U.subject == info.subject,
    )
    outcome = aliased(t.UsageEventRow)
    reversed_before = (
        select(func.count())
        .select_from(U)
        .join(outcome, outcome.event_id == U.reverses_event_id)
        .where(
            U.workspace_id == workspace_id,
            U.kind == "outcome_reversal",
            U.occurred_at < before,
            outcome.workspace_id == workspace_id,
            outcome.kind == "outcome",
            outcome.subject == info.subject,
            outcome.occurred_at >= start,
            outcome.occurred_at < end,
            outcome.agent_id.is_(None)
            if credit.agent_id is None
            else outcome.agent_id == credit.agent_id,
        )
    )
    counted = session.scalar(outcomes) or 0
    taken_back = session.scalar(reversed_before) or 0
    return Decimal(counted - taken_back)


def with_bases(
    session: Session,
    workspace_id: str,
    credits: Iterable[Tally],
    period_start: datetime,
) -> list[Tally]:
    """Credit tallies with the earlier period's count filled in."""
    result = []
    for credit in credits:
        earlier = parse_period(credit.earlier_period or "")
        window = (earlier.start, earlier.end)
        base = earlier_outcome_count(session, workspace_id, credit, window, period_start)
        result.append(dataclasses.replace(credit, base=base))
    return result


def traced_tallies(
    session: Session,
    workspace_id: str,
    start: datetime,
    end: datetime,
    agent_id: str | None,
    late: Sequence[UsageRecord] = (),
) -> list[Tally]:
    """The period's tallies from its events (each knowing its event ids and model spend),
    plus `late` lines for `late` records."""
    found = period_records(session, workspace_id, start, end, agent_id)
    conversations = {
        r.conversation_id
        for r in (*found, *late)
        if r.conversation_id and r.kind in ("outcome", "outcome_reversal", "conversation")
    }
    spend = conversation_spend(session, workspace_id, conversations, (start, end + SPEND_AFTER))
    usage = sort_records(found, start, spend, late)
    credits = with_bases(session, workspace_id, usage.credits.values(), start)
    return [*usage.usage, *credits, *usage.late]


def summed_tallies(
    session: Session, workspace_id: str, period: Period, agent_id: str | None
) -> list[Tally]:
    """The period's tallies from its sums (`deputy.billing.month_sums`): no event ids, no
    model spend; credits with the earlier period's count looked up."""
    usage: list[Tally] = []
    credits: list[Tally] = []
    for (agent, component, earlier), quantity in MONTH_SUMS.sums(
        session, workspace_id, period
    ).items():
        if agent_id is not None and agent != agent_id:
            continue
        if earlier is None:
            usage.append(Tally("usage", agent, component, quantity))
        else:
            credits.append(Tally("credit", agent, component, quantity, earlier_period=earlier))
    return [*usage, *with_bases(session, workspace_id, credits, period.start)]
