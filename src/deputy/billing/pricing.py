"""Pricing: usage of a period and the plans that apply → invoice lines. Pure: no I/O.

Rules (the same for invoices, previews and budget spend):

- Usage is grouped per scope (an agent, or the workspace for events of no agent: seats) and
  component. Each scope is priced by its own plan (`Terms`), so a free allowance is per agent
  and month even when several agents fall back to the workspace plan.
- A line's `quantity` is the sum of its events' quantities, exactly (Decimal). The free
  allowance is used first: `free_allowance_used` = min(allowance, max(quantity, 0)), the rest is
  `billable_quantity`.
- `amount` = billable x unit price / per (per = 1,000 for tokens: tokens are priced on the
  period's sum, never per call), computed exactly and rounded **half-even to the currency's
  minor unit once, at the line**. The total is the exact sum of the line amounts.
- An outcome reversed in the period of its outcome nets out of that period's line (its event,
  quantity -1, is one of the line's events). A reversal of an outcome of an earlier period is a
  `credit` line: what the earlier period would have charged for its count of outcomes (`base`)
  minus what it charges for one fewer per reversal, so an outcome that fell inside the free
  allowance is credited nothing.
- A `late` line bills events of an already invoiced period at the unit price (the earlier
  period's allowance is not reopened).
- Components no plan prices still get a line (unit price None, amount 0): usage is counted."""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from deputy.billing.periods import period_of
from deputy.domain.currencies import NO_CURRENCY, minor_units
from deputy.domain.errors import InvalidRequest
from deputy.domain.pricing import (
    COMPONENTS,
    WORKSPACE_SCOPE,
    Component,
    InvoiceLine,
    LineKind,
    Plan,
    PlanSource,
    ScopeMargin,
    component_of,
)

ZERO = Decimal(0)
_EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_EVEN)
_COMPONENT_ORDER = {name: index for index, name in enumerate(COMPONENTS)}
_KIND_ORDER: dict[LineKind, int] = {"usage": 0, "credit": 1, "late": 2}


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One usage event as pricing reads it. `reversed_outcome_at`: for a reversal, when the
    outcome it reverses occurred."""

    event_id: str
    kind: str
    agent_id: str | None
    subject: str | None
    quantity: Decimal
    occurred_at: datetime
    conversation_id: str | None = None
    cost_usd: Decimal | None = None
    reversed_outcome_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """What one line sums, before pricing. `base` (credit lines): the earlier period's count
    of outcomes before this credit."""

    kind: LineKind
    agent_id: str | None
    component: Component
    quantity: Decimal
    event_ids: tuple[str, ...] = ()
    provider_cost_usd: Decimal | None = None
    earlier_period: str | None = None
    base: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Terms:
    """The plan that prices a scope, and where it comes from."""

    plan: Plan
    source: PlanSource


TermsLookup = Callable[[str | None], "Terms | None"]
GroupKey = tuple[str | None, Component, str | None]


def scope_of(agent_id: str | None) -> str:
    return agent_id or WORKSPACE_SCOPE


def split_allowance(quantity: Decimal, allowance: Decimal) -> tuple[Decimal, Decimal]:
    """(free allowance used, billable quantity) of `quantity`."""
    used = min(allowance, max(quantity, ZERO))
    return used, quantity - used


def round_amount(value: Decimal, currency: str) -> Decimal:
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return value.quantize(exponent, rounding=ROUND_HALF_EVEN, context=_EXACT)


def line_amount(billable: Decimal, unit_price: Decimal, per: int, currency: str) -> Decimal:
    exact = _EXACT.divide(_EXACT.multiply(billable, unit_price), Decimal(per))
    return round_amount(exact, currency)


def _quantities(tally: Tally, allowance: Decimal) -> tuple[Decimal, Decimal]:
    if tally.kind == "late":
        return ZERO, tally.quantity
    if tally.kind == "credit":
        _, before = split_allowance(tally.base, allowance)
        _, after = split_allowance(tally.base + tally.quantity, allowance)
        billable = after - before
        return tally.quantity - billable, billable
    return split_allowance(tally.quantity, allowance)


def _description(tally: Tally) -> str:
    label = COMPONENTS[tally.component].label
    if tally.kind == "credit":
        return f"{label}: reversed outcomes of {tally.earlier_period}"
    if tally.kind == "late":
        return f"{label}: late events of {tally.earlier_period}"
    return label


def price_tally(tally: Tally, terms: Terms | None, number: int = 0) -> InvoiceLine:
    """One line: `tally` priced by `terms` (None: counted, not charged)."""
    info = COMPONENTS[tally.component]
    priced = terms.plan.component(tally.component) if terms is not None else None
    allowance = priced.free_allowance if priced is not None else ZERO
    used, billable = _quantities(tally, allowance)
    amount = ZERO
    if priced is not None and terms is not None:
        amount = line_amount(billable, priced.unit_price, info.per, terms.plan.currency)
    return InvoiceLine(
        number=number,
        kind=tally.kind,
        scope=scope_of(tally.agent_id),
        agent_id=tally.agent_id,
        component=tally.component,
        description=_description(tally),
        plan_source=terms.source if terms is not None else "none",
        unit=info.unit,
        per=info.per,
        quantity=tally.quantity,
        free_allowance=allowance,
        free_allowance_used=used,
        billable_quantity=billable,
        unit_price=priced.unit_price if priced is not None else None,
        amount=amount,
        event_count=len(tally.event_ids),
        provider_cost_usd=tally.provider_cost_usd,
        earlier_period=tally.earlier_period,
    )


def _order(tally: Tally) -> tuple[int, str, int, int, str]:
    return (
        tally.agent_id is None,
        tally.agent_id or "",
        _KIND_ORDER[tally.kind],
        _COMPONENT_ORDER[tally.component],
        tally.earlier_period or "",
    )


def invoice_currency(tallies: Iterable[Tally], lookup: TermsLookup) -> str:
    """The one currency of the plans pricing these scopes (`XXX` when none does)."""
    by_currency: dict[str, set[str]] = defaultdict(set)
    for agent_id in {t.agent_id for t in tallies}:
        terms = lookup(agent_id)
        if terms is not None:
            by_currency[terms.plan.currency].add(scope_of(agent_id))
    if len(by_currency) > 1:
        raise InvalidRequest(
            "the plans pricing this invoice use several currencies; an invoice has one: give "
            "the agents whose plan differs a plan of their own in one currency",
            details={"scopes_by_currency": {k: sorted(v) for k, v in by_currency.items()}},
        )
    return next(iter(by_currency), NO_CURRENCY)


def order_tallies(tallies: Iterable[Tally]) -> list[Tally]:
    """Invoice order: agents by id, then the workspace; usage, credits, late events;
    components in a fixed order."""
    return sorted(tallies, key=_order)


def margins(lines: Sequence[InvoiceLine], currency: str) -> list[ScopeMargin]:
    """Per scope: revenue (its line amounts), provider cost (its model calls' cost, from its
    token lines) and, in USD, the margin."""
    revenue: dict[str | None, Decimal] = {}
    cost: dict[str | None, Decimal] = {}
    for line in lines:
        revenue[line.agent_id] = revenue.get(line.agent_id, ZERO) + line.amount
        if line.component == "tokens_1k" and line.kind != "credit":
            cost[line.agent_id] = cost.get(line.agent_id, ZERO) + (line.provider_cost_usd or ZERO)
    result = []
    for agent_id, earned in revenue.items():
        spent = cost.get(agent_id, ZERO)
        result.append(
            ScopeMargin(
                scope=scope_of(agent_id),
                agent_id=agent_id,
                revenue=earned,
                provider_cost_usd=spent,
                margin=earned - spent if currency == "USD" else None,
            )
        )
    return result


def _sum_costs(costs: Iterable[Decimal | None]) -> Decimal | None:
    known = [c for c in costs if c is not None]
    return sum(known, ZERO) if known else None


def _provider_cost(
    component: Component, records: Sequence[UsageRecord], spend: Mapping[str, Decimal]
) -> Decimal | None:
    if component == "tokens_1k":
        return _sum_costs(r.cost_usd for r in records)
    if component in ("resolved_outcome", "escalated_outcome", "conversation"):
        conversations = {r.conversation_id for r in records if r.conversation_id}
        return _sum_costs(spend.get(c) for c in conversations)
    return None


def _tally(
    kind: LineKind,
    key: GroupKey,
    records: Sequence[UsageRecord],
    spend: Mapping[str, Decimal],
) -> Tally:
    agent_id, component, earlier = key
    return Tally(
        kind=kind,
        agent_id=agent_id,
        component=component,
        quantity=sum((r.quantity for r in records), ZERO),
        event_ids=tuple(sorted(r.event_id for r in records)),
        provider_cost_usd=_provider_cost(component, records, spend),
        earlier_period=earlier,
    )


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """A period's records sorted into lines: `usage` tallies, and the reversals of outcomes of
    earlier periods (`credits`, by scope, component and earlier period; their `base` is for
    the caller to look up) and the `late` events of invoiced periods, as tallies."""

    usage: list[Tally]
    credits: dict[GroupKey, Tally]
    late: list[Tally]


def sort_records(
    records: Iterable[UsageRecord],
    period_start: datetime,
    spend: Mapping[str, Decimal],
    late_records: Iterable[UsageRecord] = (),
) -> PeriodUsage:
    groups: dict[GroupKey, list[UsageRecord]] = defaultdict(list)
    reversals: dict[GroupKey, list[UsageRecord]] = defaultdict(list)
    for record in records:
        component = component_of(record.kind, record.subject)
        if component is None:
            continue
        reversed_at = record.reversed_outcome_at
        if record.kind == "outcome_reversal" and reversed_at and reversed_at < period_start:
            reversals[(record.agent_id, component, period_of(reversed_at))].append(record)
        else:
            groups[(record.agent_id, component, None)].append(record)
    late: dict[GroupKey, list[UsageRecord]] = defaultdict(list)
    for record in late_records:
        component = component_of(record.kind, record.subject)
        if component is not None:
            late[(record.agent_id, component, period_of(record.occurred_at))].append(record)
    return PeriodUsage(
        usage=[_tally("usage", key, group, spend) for key, group in groups.items()],
        credits={key: _tally("credit", key, group, spend) for key, group in reversals.items()},
        late=[_tally("late", key, group, spend) for key, group in late.items()],
    )
