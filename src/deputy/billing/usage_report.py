"""Reading usage events back: the window a question covers, which events it selects, their
exact sums per group and kind, and the provider cost behind each outcome.

Sums are exact: quantities and costs are decimals stored as text, so the database groups the
events by their values (most events share them: a conversation, an outcome, a seat are all 1)
and the products are added here as `Decimal`s, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, String, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from deputy.billing.seats import month_start, next_month_start
from deputy.domain.billing import USAGE_KINDS, UsageKind
from deputy.domain.errors import ValidationFailed
from deputy.domain.usage import (
    MAX_WINDOW_DAYS,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
    UsageTotal,
)
from deputy.store import tables as t

E = t.UsageEventRow
PRICED_KINDS = frozenset({"model_call"})
"""Kinds whose events carry the provider's cost (an event without one was not priced)."""


def as_utc(moment: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_window(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The half-open window [start, end): by default the current calendar month (UTC); with
    only `end`, the month `end` falls in up to `end`; with only `start`, up to the end of the
    current month. `ValidationFailed` unless start < end and it spans at most 366 days."""
    try:
        end = as_utc(end) if end is not None else None
        start = as_utc(start) if start is not None else None
        if start is None:
            start = month_start(end - timedelta(microseconds=1) if end is not None else now)
        if end is None:
            end = max(next_month_start(now), next_month_start(start))
    except (OverflowError, ValueError):  # at the ends of the calendar (year 1 or 9999)
        raise ValidationFailed(
            "the usage window is out of range", details={"from": str(start), "to": str(end)}
        ) from None
    details = {"from": start.isoformat(), "to": end.isoformat()}
    if start >= end:
        raise ValidationFailed("`from` must be before `to`", details=details)
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationFailed(
            f"a usage window spans at most {MAX_WINDOW_DAYS} days",
            details={**details, "max_days": MAX_WINDOW_DAYS},
        )
    return start, end


@dataclass(frozen=True)
class EventFilter:
    """Which events a question is about."""

    start: datetime
    end: datetime
    kinds: tuple[UsageKind, ...] = ()
    agent_id: str | None = None
    conversation_id: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        query = query.where(E.occurred_at >= self.start, E.occurred_at < self.end)
        if self.kinds:
            query = query.where(E.kind.in_(self.kinds))
        if self.agent_id is not None:
            query = query.where(E.agent_id == self.agent_id)
        if self.conversation_id is not None:
            query = query.where(E.conversation_id == self.conversation_id)
        return query


EVENT_FIELDS: Final = tuple(UsageEventInfo.model_fields)
EVENT_COLUMNS: Final = tuple(getattr(E, name) for name in EVENT_FIELDS)
"""Every column of an event, in the order the API and the exports show them."""


def event_info(row: t.UsageEventRow) -> UsageEventInfo:
    return UsageEventInfo.model_validate(row, from_attributes=True)


def event_fields(row: Any) -> dict[str, Any]:
    """An event (a row of `EVENT_COLUMNS`) as the JSON the API shows for it, without building
    the model: what exports are made of, millions of times."""
    fields = {name: getattr(row, name) for name in EVENT_FIELDS}
    for name in ("occurred_at", "recorded_at"):
        fields[name] = fields[name].isoformat().replace("+00:00", "Z")
    return fields


def decimal_text(value: Decimal) -> str:
    """A decimal as plain digits (never an exponent)."""
    return format(value, "f")


# ---- sums ---------------------------------------------------------------------------------


def _group_column(
    group_by: UsageGroupBy, dialect: str
) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
    if group_by == "kind":
        return E.kind
    if group_by == "agent":
        return E.agent_id
    if group_by == "channel":  # model and tool calls carry no channel: their conversation's
        return func.coalesce(E.channel, t.Conversation.channel)
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", E.occurred_at), "YYYY-MM-DD", type_=String)
    return func.substr(E.occurred_at, 1, 10, type_=String)  # stored as "YYYY-MM-DD HH:MM:SS"


@dataclass
class _Sum:
    events: int = 0
    quantity: Decimal = Decimal(0)
    cost: Decimal | None = None
    unpriced: int = 0

    def add(self, kind: str, quantity: Decimal, cost: str | None, count: int) -> None:
        self.events += count
        self.quantity += quantity * count
        if cost is not None:
            self.cost = (self.cost or Decimal(0)) + Decimal(cost) * count
        elif kind in PRICED_KINDS:
            self.unpriced += count

    def total(self, group: str | None, kind: str, unit: str) -> UsageTotal:
        return UsageTotal(
            group=group,
            kind=kind,
            unit=unit,
            events=self.events,
            quantity=decimal_text(self.quantity),
            cost_usd=None if self.cost is None else decimal_text(self.cost),
            unpriced_events=self.unpriced,
        )


def _kind_order(kind: str) -> int:
    return USAGE_KINDS.index(kind) if kind in USAGE_KINDS else len(USAGE_KINDS)


def summarize(session: Session, selected: EventFilter, group_by: UsageGroupBy) -> UsageSummary:
    """Event counts, quantities and provider cost per group and kind, and per kind overall."""
    group = _group_column(group_by, session.get_bind().dialect.name).label("usage_group")
    query = select(group, E.kind, E.unit, E.quantity, E.cost_usd, func.count().label("n"))
    if group_by == "channel":
        query = query.select_from(E).outerjoin(
            t.Conversation, t.Conversation.id == E.conversation_id
        )
    query = selected.apply(query).group_by(group, E.kind, E.unit, E.quantity, E.cost_usd)
    groups: dict[tuple[str | None, str, str], _Sum] = defaultdict(_Sum)
    totals: dict[tuple[str, str], _Sum] = defaultdict(_Sum)
    for name, kind, unit, quantity, cost, count in session.execute(query):
        amount = Decimal(quantity)
        groups[(name, kind, unit)].add(kind, amount, cost, count)
        totals[(kind, unit)].add(kind, amount, cost, count)
    ordered = sorted(groups.items(), key=lambda i: (i[0][0] or "", _kind_order(i[0][1]), i[0][2]))
    return UsageSummary(
        start=selected.start,
        end=selected.end,
        group_by=group_by,
        agent_id=selected.agent_id,
        groups=[sums.total(name, kind, unit) for (name, kind, unit), sums in ordered],
        totals=[
            sums.total(None, kind, unit)
            for (kind, unit), sums in sorted(totals.items(), key=lambda i: _kind_order(i[0][0]))
        ],
    )


# ---- the provider cost of outcomes --------------------------------------------------------


@dataclass
class _ConversationCost:
    model_calls: int = 0
    unpriced: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    tool_calls: int = 0


def _conversation_costs(
    session: Session, conversation_ids: set[str]
) -> dict[str, _ConversationCost]:
    costs: dict[str, _ConversationCost] = defaultdict(_ConversationCost)
    if not conversation_ids:
        return costs
    # A conversation's calls come after it started: the bound lets the (kind, time) index
    # narrow the scan (usage events have no index on the conversation).
    started = session.scalar(
        select(func.min(t.Conversation.created_at)).where(t.Conversation.id.in_(conversation_ids))
    )
    query = select(E.conversation_id, E.kind, E.quantity, E.cost_usd).where(
        E.kind.in_(("model_call", "tool_call")), E.conversation_id.in_(conversation_ids)
    )
    if started is not None:
        query = query.where(E.occurred_at >= started)
    for conversation_id, kind, quantity, cost in session.execute(query):
        if conversation_id is None:  # excluded by the query; for the type checker
            continue
        sums = costs[conversation_id]
        if kind == "tool_call":
            sums.tool_calls += 1
            continue
        sums.model_calls += 1
        sums.tokens += int(Decimal(quantity))
        if cost is None:
            sums.unpriced += 1
        else:
            sums.cost += Decimal(cost)
    return costs


def outcome_costs(session: Session, outcomes: Sequence[t.UsageEventRow]) -> list[OutcomeCost]:
    """Each outcome event with its conversation's model spend, tokens and tool calls, and
    whether an accepted dispute reversed it."""
    event_ids = [row.event_id for row in outcomes]
    reversed_ids = set(
        session.scalars(
            select(E.reverses_event_id).where(
                E.kind == "outcome_reversal", E.reverses_event_id.in_(event_ids)
            )
        )
    )
    costs = _conversation_costs(
        session, {row.conversation_id for row in outcomes if row.conversation_id}
    )
    result = []
    for row in outcomes:
        spent = costs.get(row.conversation_id or "", _ConversationCost())
        result.append(
            OutcomeCost(
                event_id=row.event_id,
                conversation_id=row.conversation_id,
                agent_id=row.agent_id,
                channel=row.channel,
                outcome=row.outcome,
                occurred_at=row.occurred_at,
                reversed=row.event_id in reversed_ids,
                model_calls=spent.model_calls,
                unpriced_model_calls=spent.unpriced,
                tokens=spent.tokens,
                provider_cost_usd=None if spent.unpriced else decimal_text(spent.cost),
                tool_calls=spent.tool_calls,
            )
        )
    return result
