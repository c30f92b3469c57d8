"""Budgets as callers see them: a spending limit per calendar month for the workspace or one
agent, priced like the invoices, with alert thresholds and an optional hard stop on new
conversations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field, field_validator

from deputy.domain.resources import Body, Resource

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)


class BudgetSet(Body):
    amount: Decimal = Field(
        gt=0, max_digits=18, decimal_places=6, description="The limit per calendar month."
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="Must be the currency of the plan pricing the scope (the default).",
    )
    alert_thresholds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        max_length=10,
        description="Fractions of the amount whose crossing opens an alert (once per month); "
        "1.0 and above page, below it open a ticket.",
    )
    hard_stop: bool = Field(
        default=False,
        description="Refuse new conversations (402 `budget_exhausted`) once the spend reaches "
        "the amount; conversations already open go on.",
    )

    @field_validator("alert_thresholds")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        for fraction in value:
            if not 0 < fraction <= 10:
                raise ValueError("a threshold is a fraction of the amount in (0, 10]")
        if len(set(value)) != len(value):
            raise ValueError("each threshold may be given once")
        return sorted(value)


class BudgetBurn(Resource):
    """How much of a budget this month's spend has used."""

    budget_id: str
    scope: str
    agent_id: str | None
    amount: Decimal
    currency: str
    spend: Decimal
    fraction: float = Field(description="spend / amount.")
    hard_stop: bool
    exhausted: bool = Field(description="spend >= amount.")
    period: str
    period_end: datetime


class Budget(Resource):
    id: str
    scope: str
    agent_id: str | None
    amount: Decimal
    currency: str
    alert_thresholds: list[float]
    hard_stop: bool
    created_at: datetime
    updated_at: datetime
    burn: BudgetBurn
