"""A workspace's usage this month, summed per agent and component, cheaply enough to check
budgets before every new conversation.

Summing a month of events in SQL costs a pass over all of them (about a second for 100k events
on SQLite), so each process keeps the sums of the events it has **settled** and reads only
what came after:

- Usage event ids are time-sortable (`deputy.domain.ids`: a millisecond clock first), so "the
  events written since" is a primary-key range, the one index SQLite and PostgreSQL both use for
  it whatever the month's size. That range is read for every workspace (filtering on the
  workspace would make SQLite choose the workspace index and scan the month) and this
  workspace's rows are kept.
- Events whose id is older than `SETTLE` are settled: a transaction is assumed to commit within
  `SETTLE` of writing its events (the same assumption as `deputy.billing.late_events`). Younger
  ones are read again on every check, so a slow commit is never missed.
- The first check of a month in a process sums the settled part in SQL, once; later checks add
  the newly settled range to it.

An outcome reversal is summed with its outcome's component: netted into the period's usage
when the outcome is of the same period, else under the earlier period it gives back (a credit,
`deputy.billing.pricing`). Quantities are summed as exact decimals."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, case, cast, func, select
from sqlalchemy.orm import Session

from deputy.billing.event_lookup import EVENTS, by_event_ids, usage_id_floor, written_between
from deputy.billing.periods import Period, period_of
from deputy.domain.pricing import COMPONENTS, Component, component_of
from deputy.store import tables as t
from deputy.store.tables import utcnow

SETTLE = timedelta(seconds=60)
SumKey = tuple[str | None, Component, str | None]
"""(agent id, component, the earlier period an outcome reversal gives back; None: this one's
usage, reversals of this period's outcomes netted in)."""
U = t.UsageEventRow
SUMMED_KINDS = tuple(sorted({info.kind for info in COMPONENTS.values()}))


def _add(totals: dict[SumKey, Decimal], key: SumKey, quantity: Any) -> None:
    value = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity))
    totals[key] = totals.get(key, Decimal(0)) + value


def _add_reversals(
    session: Session,
    workspace_id: str,
    period: Period,
    rows: Sequence[Any],
    totals: dict[SumKey, Decimal],
) -> None:
    """Reversal rows (agent_id, subject, quantity, reverses_event_id) into `totals`, by when
    the outcome they reverse occurred."""
    outcomes = {row.reverses_event_id for row in rows if row.reverses_event_id}
    found = by_event_ids(session, workspace_id, outcomes, EVENTS.c.event_id, EVENTS.c.occurred_at)
    occurred = {row.event_id: row.occurred_at for row in found}
    for row in rows:
        component = component_of("outcome_reversal", row.subject)
        if component is None:
            continue
        at = occurred.get(row.reverses_event_id or "")
        earlier = period_of(at) if at is not None and at < period.start else None
        _add(totals, (row.agent_id, component, earlier), row.quantity)


def settled_sums(
    session: Session, workspace_id: str, period: Period, below: str
) -> dict[SumKey, Decimal]:
    """The period's events with an id below `below`, summed by the database: integer-valued
    kinds as NUMERIC (exact on both backends), voice minutes (fractions) counted per distinct
    quantity, reversals (few) read one by one."""
    where = [
        U.workspace_id == workspace_id,
        U.occurred_at >= period.start,
        U.occurred_at < period.end,
        U.id < below,
    ]
    subject = case((U.kind == "outcome", U.subject), else_=None)
    totals: dict[SumKey, Decimal] = {}
    rows = session.execute(
        select(U.agent_id, U.kind, subject, func.sum(cast(U.quantity, Numeric)))
        .where(*where, U.kind.in_([k for k in SUMMED_KINDS if k != "voice_minutes"]))
        .group_by(U.agent_id, U.kind, subject)
    )
    for agent_id, kind, outcome, quantity in rows:
        component = component_of(kind, outcome)
        if component is not None:
            _add(totals, (agent_id, component, None), quantity)
    minutes = session.execute(
        select(U.agent_id, U.quantity, func.count())
        .where(*where, U.kind == "voice_minutes")
        .group_by(U.agent_id, U.quantity)
    )
    for agent_id, quantity, count in minutes:
        _add(totals, (agent_id, "voice_minute", None), Decimal(quantity) * count)
    reversals = session.execute(
        select(U.agent_id, U.subject, U.quantity, U.reverses_event_id).where(
            *where, U.kind == "outcome_reversal"
        )
    ).all()
    _add_reversals(session, workspace_id, period, reversals, totals)
    return totals


def recent_sums(
    session: Session, workspace_id: str, period: Period, since: str, below: str
) -> dict[SumKey, Decimal]:
    """The period's events with an id in [since, below), read by primary-key range."""
    names = ("agent_id", "kind", "subject", "quantity", "occurred_at", "reverses_event_id")
    rows = [
        row
        for row in written_between(
            session, workspace_id, since, below, [EVENTS.c[n] for n in names]
        )
        if period.start <= row.occurred_at < period.end
    ]
    totals: dict[SumKey, Decimal] = {}
    for row in rows:
        component = component_of(row.kind, row.subject) if row.kind in SUMMED_KINDS else None
        if component is not None:
            _add(totals, (row.agent_id, component, None), row.quantity)
    reversals = [row for row in rows if row.kind == "outcome_reversal"]
    if reversals:
        _add_reversals(session, workspace_id, period, reversals, totals)
    return totals


def _merged(*parts: Mapping[SumKey, Decimal]) -> dict[SumKey, Decimal]:
    merged: dict[SumKey, Decimal] = {}
    for part in parts:
        for key, quantity in part.items():
            _add(merged, key, quantity)
    return merged


@dataclass(frozen=True, slots=True)
class _Settled:
    period: str
    below: str
    sums: dict[SumKey, Decimal]


class MonthSums:
    """The settled sums of each workspace's current month, per database (one per process)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._settled: dict[tuple[str, str], _Settled] = {}
        self._lock = threading.Lock()

    def sums(self, session: Session, workspace_id: str, period: Period) -> dict[SumKey, Decimal]:
        """Every event of `period` so far, summed by `SumKey`."""
        now = self._clock()
        below, ahead = usage_id_floor(now - SETTLE), usage_id_floor(now + SETTLE)
        key = (str(session.get_bind().engine.url), workspace_id)
        with self._lock:
            known = self._settled.get(key)
        if known is None or known.period != period.name:
            known = _Settled(period.name, below, settled_sums(session, workspace_id, period, below))
        elif known.below < below:
            newly = recent_sums(session, workspace_id, period, known.below, below)
            known = _Settled(period.name, below, _merged(known.sums, newly))
        with self._lock:
            self._settled[key] = known
        return _merged(known.sums, recent_sums(session, workspace_id, period, known.below, ahead))


MONTH_SUMS = MonthSums()
