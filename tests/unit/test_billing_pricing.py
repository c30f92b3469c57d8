"""Pricing without a database: plans, allowances, rounding, reversals, credits, late events,
margins; and properties over random usage."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deputy.billing.periods import parse_period, period_at
from deputy.billing.pricing import (
    Tally,
    Terms,
    UsageRecord,
    invoice_currency,
    line_amount,
    margins,
    order_tallies,
    price_tally,
    sort_records,
    split_allowance,
)
from deputy.domain.errors import InvalidRequest, ValidationFailed
from deputy.domain.pricing import COMPONENTS, Plan, component_of, plan_from_spec
from deputy.domain.spec.operations import Billing

MAY = datetime(2025, 5, 1, tzinfo=UTC)
APRIL_10 = datetime(2025, 4, 10, tzinfo=UTC)
MAY_10 = datetime(2025, 5, 10, tzinfo=UTC)


def plan(currency: str = "USD", **prices: str | tuple[str, str]) -> Plan:
    components = []
    for name, price in prices.items():
        unit_price, allowance = price if isinstance(price, tuple) else (price, "0")
        components.append(
            {"component": name, "unit_price": unit_price, "free_allowance": allowance}
        )
    models = sorted({COMPONENTS[name].model for name in prices})  # type: ignore[index]
    return Plan.model_validate(
        {"name": "test", "currency": currency, "models": models, "components": components}
    )


def record(
    event_id: str,
    kind: str,
    quantity: str = "1",
    *,
    agent: str | None = "agt_a",
    subject: str | None = None,
    at: datetime = MAY_10,
    conversation: str | None = None,
    cost: str | None = None,
    reversed_at: datetime | None = None,
) -> UsageRecord:
    return UsageRecord(
        event_id=event_id,
        kind=kind,
        agent_id=agent,
        subject=subject,
        quantity=Decimal(quantity),
        occurred_at=at,
        conversation_id=conversation,
        cost_usd=None if cost is None else Decimal(cost),
        reversed_outcome_at=reversed_at,
    )


# ---- plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "usd"}, "pattern"),
        ({"currency": "ABC"}, "not an ISO 4217"),
        ({"components": []}, "at least 1"),
        (
            {
                "components": [
                    {"component": "conversation", "unit_price": "1"},
                    {"component": "conversation", "unit_price": "2"},
                ]
            },
            "repeated",
        ),
        (
            {"components": [{"component": "seat_month", "unit_price": "1"}]},
            "add 'seat_based'",
        ),
        ({"models": ["consumption_based", "outcome_based"]}, "needs a component"),
        ({"models": ["consumption_based", "consumption_based"]}, "named once"),
        ({"components": [{"component": "conversation", "unit_price": "0.0000001"}]}, "decimal"),
        ({"components": [{"component": "conversation", "unit_price": "-1"}]}, "greater than"),
        (
            {
                "components": [
                    {"component": "conversation", "unit_price": "1", "free_allowance": -1}
                ]
            },
            "greater than",
        ),
        ({"extra": 1}, "Extra inputs"),
    ],
)
def test_plans_are_validated(changes: dict[str, object], message: str) -> None:
    body: dict[str, object] = {
        "name": "p",
        "currency": "EUR",
        "models": ["consumption_based"],
        "components": [{"component": "conversation", "unit_price": "0.5"}],
    }
    body.update(changes)
    with pytest.raises(ValidationError, match=message):
        Plan.model_validate(body)


def test_a_mixed_plan_names_each_model_it_prices() -> None:
    mixed = plan(resolved_outcome=("0.99", "100"), tokens_1k="0.002", seat_month="25")
    assert mixed.models == ["consumption_based", "outcome_based", "seat_based"]
    assert mixed.component("seat_month") is not None
    assert mixed.component("tool_call") is None


def test_a_spec_billing_becomes_a_plan_with_its_free_resolutions() -> None:
    billing = Billing(
        model="outcome_based",
        currency="EUR",
        price_per_resolution=Decimal("1.5"),
        price_per_1k_tokens=Decimal("0.01"),
        price_per_seat_month=Decimal("30"),
        free_resolutions_per_month=100,
    )
    converted = plan_from_spec(billing, "spec v3")
    assert converted is not None
    assert converted.currency == "EUR"
    assert converted.models == ["consumption_based", "outcome_based"]
    resolved = converted.component("resolved_outcome")
    assert resolved is not None and resolved.free_allowance == 100
    assert converted.component("seat_month") is None  # seats: the workspace plan's
    seats_only = Billing(model="seat_based", price_per_seat_month=Decimal("30"))
    assert plan_from_spec(seats_only, "spec v1") is None


def test_components_map_events() -> None:
    assert component_of("outcome", "resolved") == "resolved_outcome"
    assert component_of("outcome_reversal", "escalated") == "escalated_outcome"
    assert component_of("outcome", "abandoned") is None
    assert component_of("model_call", None) == "tokens_1k"
    assert component_of("seat", "mem_1") == "seat_month"
    assert component_of("something_else", None) is None


def test_periods_are_utc_calendar_months() -> None:
    december = parse_period("2024-12")
    assert (december.start, december.end) == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert period_at(MAY_10).name == "2025-05"
    for bad in ("2025-13", "2025-5", "25-05", "1999-01", "9999-12"):
        with pytest.raises(ValidationFailed):
            parse_period(bad)


# ---- amounts ----------------------------------------------------------------------------------


def test_amounts_round_half_even_to_the_currency_minor_unit_once_per_line() -> None:
    assert line_amount(Decimal(1), Decimal("0.125"), 1, "USD") == Decimal("0.12")
    assert line_amount(Decimal(1), Decimal("0.135"), 1, "USD") == Decimal("0.14")
    assert line_amount(Decimal(3), Decimal("0.5"), 1, "JPY") == Decimal("2")  # 1.5 -> 2
    assert line_amount(Decimal(5), Decimal("0.5"), 1, "JPY") == Decimal("2")  # 2.5 -> 2
    assert line_amount(Decimal(1), Decimal("0.0015"), 1, "KWD") == Decimal("0.002")
    assert line_amount(Decimal(-1), Decimal("0.125"), 1, "USD") == Decimal("-0.12")


def test_tokens_are_priced_on_the_period_sum_not_per_call() -> None:
    calls = [record(f"m{i}", "model_call", "333") for i in range(3)]
    [tally] = sort_records(calls, MAY, {}).usage
    line = price_tally(tally, Terms(plan(tokens_1k="1"), "workspace"))
    # 999 tokens at 1.00 per 1,000 = 0.999 -> 1.00 (per call: 3 x 0.33 = 0.99)
    assert (line.quantity, line.per, line.amount) == (Decimal(999), 1000, Decimal("1.00"))


def test_the_free_allowance_is_used_first() -> None:
    assert split_allowance(Decimal(120), Decimal(100)) == (Decimal(100), Decimal(20))
    assert split_allowance(Decimal(30), Decimal(100)) == (Decimal(30), Decimal(0))
    assert split_allowance(Decimal(-2), Decimal(100)) == (Decimal(0), Decimal(-2))
    outcomes = [record(f"o{i}", "outcome", subject="resolved") for i in range(5)]
    [tally] = sort_records(outcomes, MAY, {}).usage
    line = price_tally(tally, Terms(plan(resolved_outcome=("2", "3")), "agent"))
    assert (line.free_allowance_used, line.billable_quantity, line.amount) == (
        Decimal(3),
        Decimal(2),
        Decimal("4.00"),
    )


def test_unpriced_usage_is_counted_not_charged() -> None:
    [tally] = sort_records([record("t1", "tool_call", subject="lookup")], MAY, {}).usage
    unpriced = price_tally(tally, Terms(plan(conversation="1"), "workspace"))
    assert (unpriced.unit_price, unpriced.amount, unpriced.quantity) == (None, D(0), D(1))
    no_plan = price_tally(tally, None)
    assert no_plan.plan_source == "none" and no_plan.amount == 0


# ---- reversals, credits, late events ------------------------------------------------------------


def test_a_reversal_in_its_outcome_period_nets_out() -> None:
    records = [
        record("outcome:c1", "outcome", subject="resolved", conversation="c1"),
        record("outcome:c2", "outcome", subject="resolved", conversation="c2"),
        record("outcome:c3", "outcome", subject="abandoned", conversation="c3"),
        record(
            "reversal:outcome:c1",
            "outcome_reversal",
            "-1",
            subject="resolved",
            reversed_at=MAY_10,
            conversation="c1",
        ),
    ]
    usage = sort_records(records, MAY, {"c1": Decimal("0.02"), "c2": Decimal("0.03")})
    [tally] = usage.usage
    assert not usage.credits
    assert tally.quantity == 1 and len(tally.event_ids) == 3
    assert tally.provider_cost_usd == Decimal("0.05")
    line = price_tally(tally, Terms(plan(resolved_outcome="0.9"), "spec"))
    assert line.amount == Decimal("0.90")


def test_a_reversal_of_an_earlier_period_is_a_credit_of_what_that_period_charged() -> None:
    reversal = record(
        "reversal:outcome:old",
        "outcome_reversal",
        "-1",
        subject="resolved",
        reversed_at=APRIL_10,
    )
    usage = sort_records([reversal], MAY, {})
    [(key, credit)] = usage.credits.items()
    assert key == ("agt_a", "resolved_outcome", "2025-04") and credit.kind == "credit"
    terms = Terms(plan(resolved_outcome=("2", "100")), "agent")
    # April counted 101 resolutions (1 billed): the credit gives back that one.
    over = price_tally(dataclasses.replace(credit, base=Decimal(101)), terms)
    assert (over.quantity, over.billable_quantity, over.amount) == (D(-1), D(-1), D("-2.00"))
    assert over.earlier_period == "2025-04" and "reversed" in over.description
    # April counted 100 (all free): nothing to give back.
    free = price_tally(dataclasses.replace(credit, base=Decimal(100)), terms)
    assert (free.billable_quantity, free.amount, free.free_allowance_used) == (D(0), D(0), D(-1))


def test_late_events_are_billed_at_the_unit_price_on_their_own_line() -> None:
    late = [record("conversation:late", "conversation", at=APRIL_10)]
    usage = sort_records([record("conversation:now", "conversation")], MAY, {}, late)
    [late_tally] = usage.late
    assert (late_tally.kind, late_tally.earlier_period) == ("late", "2025-04")
    line = price_tally(late_tally, Terms(plan(conversation=("0.5", "10")), "workspace"))
    assert (line.free_allowance_used, line.billable_quantity, line.amount) == (
        D(0),
        D(1),
        D("0.50"),
    )
    ordered = order_tallies([late_tally, *usage.usage])
    assert [t.kind for t in ordered] == ["usage", "late"]


# ---- invoices ---------------------------------------------------------------------------------


def test_an_invoice_has_one_currency() -> None:
    tallies = [
        Tally("usage", "agt_a", "conversation", Decimal(1)),
        Tally("usage", "agt_b", "conversation", Decimal(1)),
    ]
    euro, dollar = (
        Terms(plan("EUR", conversation="1"), "agent"),
        Terms(plan(conversation="1"), "agent"),
    )
    assert invoice_currency(tallies, lambda agent: euro) == "EUR"
    assert invoice_currency(tallies, lambda agent: None) == "XXX"
    with pytest.raises(InvalidRequest, match="several currencies"):
        invoice_currency(tallies, lambda agent: euro if agent == "agt_a" else dollar)


def test_margins_are_revenue_less_model_spend_per_scope() -> None:
    records = [
        record("conversation:c1", "conversation", conversation="c1"),
        record("m1", "model_call", "2000", conversation="c1", cost="0.10"),
        record("m2", "model_call", "1000", conversation="c1", cost="0.05"),
        record("seat:mem:2025-05", "seat", agent=None, subject="mem"),
    ]
    usage = sort_records(records, MAY, {"c1": Decimal("0.15")})
    terms = Terms(plan(conversation="1", tokens_1k="0.1", seat_month="10"), "workspace")
    lines = [price_tally(t, terms, n) for n, t in enumerate(order_tallies(usage.usage), 1)]
    assert [(line.scope, line.component) for line in lines] == [
        ("agt_a", "conversation"),
        ("agt_a", "tokens_1k"),
        ("workspace", "seat_month"),
    ]
    assert lines[0].provider_cost_usd == Decimal("0.15")  # the conversation's model spend
    by_scope = {m.scope: m for m in margins(lines, "USD")}
    assert by_scope["agt_a"].revenue == Decimal("1.30")
    assert by_scope["agt_a"].provider_cost_usd == Decimal("0.15")
    assert by_scope["agt_a"].margin == Decimal("1.15")
    assert by_scope["workspace"].margin == Decimal("10.00")
    assert all(m.margin is None for m in margins(lines, "EUR"))


# ---- properties ---------------------------------------------------------------------------------

KINDS = st.sampled_from(
    [
        ("conversation", None),
        ("outcome", "resolved"),
        ("outcome", "escalated"),
        ("outcome", "abandoned"),
        ("model_call", None),
        ("voice_minutes", None),
        ("tool_call", "lookup"),
    ]
)
PRICES = st.decimals(min_value=0, max_value=50, places=6, allow_nan=False)
ALLOWANCES = st.integers(min_value=0, max_value=30).map(Decimal)


@st.composite
def usage_records(draw: st.DrawFn) -> list[UsageRecord]:
    count = draw(st.integers(min_value=0, max_value=60))
    result = []
    for index in range(count):
        kind, subject = draw(KINDS)
        if kind == "model_call":
            quantity = Decimal(draw(st.integers(min_value=0, max_value=50_000)))
        elif kind == "voice_minutes":
            quantity = Decimal(draw(st.integers(min_value=0, max_value=6000))) / 60
            quantity = quantity.quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
        else:
            quantity = Decimal(1)
        agent = draw(st.sampled_from(["agt_a", "agt_b", None]))
        result.append(record(f"e{index}", kind, str(quantity), agent=agent, subject=subject))
    return result


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    names = draw(
        st.lists(
            st.sampled_from(list(COMPONENTS)), min_size=1, max_size=len(COMPONENTS), unique=True
        )
    )
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
    prices = {name: (str(draw(PRICES)), str(draw(ALLOWANCES))) for name in names}
    return plan(currency, **prices)


@settings(max_examples=200, deadline=None)
@given(records=usage_records(), priced=plans())
def test_every_line_is_its_events_priced_and_the_total_is_their_sum(
    records: list[UsageRecord], priced: Plan
) -> None:
    terms = Terms(priced, "workspace")
    usage = sort_records(records, MAY, {})
    lines = [price_tally(t, terms, n) for n, t in enumerate(order_tallies(usage.usage), 1)]
    by_id = {r.event_id: r for r in records}
    counted = 0
    for line, tally in zip(lines, order_tallies(usage.usage), strict=True):
        events = [by_id[event_id] for event_id in tally.event_ids]
        counted += len(events)
        quantity = sum((e.quantity for e in events), Decimal(0))
        assert line.quantity == quantity
        assert line.free_allowance_used + line.billable_quantity == quantity
        component = priced.component(line.component)
        if component is None:
            assert line.amount == 0
            continue
        billable = quantity - min(component.free_allowance, max(quantity, Decimal(0)))
        exact = billable * component.unit_price / COMPONENTS[line.component].per
        places = Decimal(1).scaleb(-{"JPY": 0, "KWD": 3}.get(priced.currency, 2))
        assert line.amount == exact.quantize(places, ROUND_HALF_EVEN)
    assert counted == sum(1 for r in records if component_of(r.kind, r.subject) is not None)
    revenue = sum((m.revenue for m in margins(lines, priced.currency)), Decimal(0))
    assert revenue == sum((line.amount for line in lines), Decimal(0))
