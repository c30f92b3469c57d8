"""Plans and invoices as callers see them.

A **plan** says what a workspace or one agent pays: a currency and priced components, each
with a unit price and an optional free allowance per calendar month. The components are the
usage events (`deputy.domain.billing`) the plan prices: resolved and escalated outcomes
(outcome-based pricing), conversations, model tokens (per 1,000), voice minutes and tool calls
(consumption-based), seats (per member per month, seat-based). A plan names the billing
model(s) it mixes, and each model it names must price something.

An **invoice** is one period's priced usage for the workspace or one agent: lines (each the
sum of some usage events, which `GET /v1/billing/invoices/{id}/lines/{n}/events` lists), the
total (the sum of the lines), and per agent the revenue, the provider cost and the margin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from deputy.domain.currencies import MINOR_UNITS
from deputy.domain.resources import Body, Resource
from deputy.domain.spec.operations import Billing, BillingModel, Price

Component = Literal[
    "resolved_outcome",
    "escalated_outcome",
    "conversation",
    "tokens_1k",
    "voice_minute",
    "tool_call",
    "seat_month",
]
PlanSource = Literal["agent", "spec", "workspace", "none"]
"""Where the plan that priced a scope comes from: the agent's own plan, its live spec's
`outcomes.billing`, the workspace plan, or no plan at all (usage counted, nothing charged)."""
LineKind = Literal["usage", "credit", "late"]
WORKSPACE_SCOPE = "workspace"
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Period = Annotated[str, Field(pattern=PERIOD_PATTERN, description="A calendar month, YYYY-MM.")]
Allowance = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    """What a component prices: usage events of `kind` (and `subject`, for outcomes), in
    `unit`, `per` units at a time (1,000 tokens), under which billing model."""

    kind: str
    subject: str | None
    unit: str
    per: int
    model: BillingModel
    label: str


COMPONENTS: dict[Component, ComponentInfo] = {
    "resolved_outcome": ComponentInfo(
        "outcome", "resolved", "outcome", 1, "outcome_based", "Resolved conversations"
    ),
    "escalated_outcome": ComponentInfo(
        "outcome", "escalated", "outcome", 1, "outcome_based", "Escalated conversations"
    ),
    "conversation": ComponentInfo(
        "conversation", None, "conversation", 1, "consumption_based", "Conversations"
    ),
    "tokens_1k": ComponentInfo(
        "model_call", None, "token", 1000, "consumption_based", "Model tokens (per 1,000)"
    ),
    "voice_minute": ComponentInfo(
        "voice_minutes", None, "minute", 1, "consumption_based", "Voice minutes"
    ),
    "tool_call": ComponentInfo("tool_call", None, "call", 1, "consumption_based", "Tool calls"),
    "seat_month": ComponentInfo("seat", None, "seat", 1, "seat_based", "Seats (member-months)"),
}


def component_of(kind: str, subject: str | None) -> Component | None:
    """The component a usage event of `kind` (an outcome or its reversal: with `subject`)
    counts towards; None for what no plan prices (abandoned outcomes)."""
    if kind in ("outcome", "outcome_reversal"):
        return {"resolved": "resolved_outcome", "escalated": "escalated_outcome"}.get(subject or "")  # type: ignore[return-value]
    for name, info in COMPONENTS.items():
        if info.kind == kind:
            return name
    return None


class PlanComponent(Body):
    component: Component
    unit_price: Price = Field(
        description="Per unit of the component (per 1,000 tokens for `tokens_1k`); at most 6 "
        "decimals."
    )
    free_allowance: Allowance = Field(
        default=Decimal(0),
        description="Free units per calendar month, in the events' own unit (tokens for "
        "`tokens_1k`, minutes, outcomes...), used before anything is charged.",
    )


class Plan(Body):
    """A price list. Every component must belong to one of `models`, and every model named
    must price at least one component."""

    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. USD, EUR, JPY.")
    models: list[BillingModel] = Field(min_length=1, max_length=3)
    components: list[PlanComponent] = Field(min_length=1, max_length=len(COMPONENTS))

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [c.component for c in self.components]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"each component may be priced once; repeated: {repeated}")
        if len(set(self.models)) != len(self.models):
            raise ValueError("each billing model may be named once")
        for name in names:
            model = COMPONENTS[name].model
            if model not in self.models:
                raise ValueError(f"{name} is {model} pricing: add {model!r} to models")
        for model in self.models:
            if not any(COMPONENTS[name].model == model for name in names):
                raise ValueError(f"a {model} plan needs a component of that model")
        return self

    def component(self, name: Component) -> PlanComponent | None:
        return next((c for c in self.components if c.component == name), None)


class BillingPlan(Resource):
    """A plan set through the API for the workspace (`scope` "workspace") or one agent."""

    id: str
    scope: str
    agent_id: str | None
    plan: Plan
    created_at: datetime
    updated_at: datetime


class EffectivePlan(Resource):
    """The plan that prices an agent's events now, and where it comes from."""

    agent_id: str
    agent_name: str
    source: PlanSource
    plan: Plan | None
    plan_id: str | None = Field(default=None, description="The stored plan (agent, workspace).")
    spec_version: int | None = Field(default=None, description="The live spec's version.")


# ---- invoices --------------------------------------------------------------------------------


class InvoiceLine(Resource):
    """The sum of some usage events of one scope and component, priced.

    `quantity` (in `unit`) = `free_allowance_used` + `billable_quantity`, and `amount` =
    `billable_quantity` x `unit_price` / `per`, rounded half-even to the currency's minor unit
    (the only rounding: the invoice total is the exact sum of the line amounts). `usage` lines
    sum the period's events (outcomes net of reversals of the same period); `credit` lines give
    back outcomes of an earlier period reversed in this one; `late` lines bill events of an
    already invoiced period recorded after its invoice, at the unit price without allowance."""

    number: int
    kind: LineKind
    scope: str = Field(description="The agent id, or `workspace` (events of no agent: seats).")
    agent_id: str | None
    component: Component
    description: str
    plan_source: PlanSource
    unit: str
    per: int
    quantity: Decimal
    free_allowance: Decimal
    free_allowance_used: Decimal
    billable_quantity: Decimal
    unit_price: Decimal | None = Field(description="None: no plan prices it (counted only).")
    amount: Decimal
    event_count: int
    provider_cost_usd: Decimal | None = Field(
        default=None,
        description="Model spend behind the line: its model calls (tokens), or every model call "
        "of the conversations it counts (outcomes, conversations).",
    )
    earlier_period: str | None = Field(
        default=None, description="The period a credit or late line corrects."
    )


class ScopeMargin(Resource):
    """Revenue against provider cost (the model spend of the scope's calls in the period).
    `margin` is None when the invoice's currency is not USD (provider costs are in USD)."""

    scope: str
    agent_id: str | None
    revenue: Decimal
    provider_cost_usd: Decimal
    margin: Decimal | None


class Invoice(Resource):
    id: str | None = Field(description="None for a preview (nothing stored).")
    status: Literal["preview", "issued"]
    scope: str
    agent_id: str | None
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    total: Decimal
    lines: list[InvoiceLine]
    margins: list[ScopeMargin]
    issued_at: datetime | None = None
    late_events: int = Field(
        default=0,
        description="Issued invoices: events of this period recorded after it was issued; each "
        "is billed once, on a `late` line of the period it was found in.",
    )


class InvoiceSummary(Resource):
    id: str
    scope: str
    agent_id: str | None
    period: str
    currency: str
    total: Decimal
    issued_at: datetime


class InvoiceIssue(Body):
    period: Period
    agent_id: str | None = Field(
        default=None, max_length=64, description="One agent's invoice; default: the workspace's."
    )


def plan_from_spec(billing: Billing, name: str) -> Plan | None:
    """A spec's `outcomes.billing` as a plan: each price it sets becomes a component (its
    `free_resolutions_per_month`, the resolutions' allowance); the billing models are those of
    the prices set. A seat price is left out (seats are the workspace plan's): a spec that sets
    nothing else gives no plan."""
    prices: list[tuple[Component, Decimal | None]] = [
        ("resolved_outcome", billing.price_per_resolution),
        ("conversation", billing.price_per_conversation),
        ("tokens_1k", billing.price_per_1k_tokens),
        ("voice_minute", billing.price_per_voice_minute),
    ]
    components = [
        PlanComponent(
            component=component,
            unit_price=price,
            free_allowance=Decimal(
                billing.free_resolutions_per_month if component == "resolved_outcome" else 0
            ),
        )
        for component, price in prices
        if price is not None
    ]
    if not components:
        return None
    models = sorted({COMPONENTS[c.component].model for c in components})
    return Plan(name=name, currency=billing.currency, models=models, components=components)
