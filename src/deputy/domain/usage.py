"""Usage as callers see it: the raw usage events, their sums, and the provider cost of each
outcome. Quantities and costs are exact decimals, sent as strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from deputy.domain.billing import UsageKind

UsageGroupBy = Literal["kind", "agent", "day", "channel"]
ExportFormat = Literal["csv", "cloudevents"]
MAX_WINDOW_DAYS = 366


class UsageView(BaseModel):
    model_config = ConfigDict(frozen=True)


class UsageEventInfo(UsageView):
    """One immutable usage event, every column of it."""

    id: str
    event_id: str
    workspace_id: str
    kind: UsageKind
    agent_id: str | None
    conversation_id: str | None
    channel: str | None
    subject: str | None
    quantity: str
    unit: str
    reverses_event_id: str | None
    outcome: str | None
    model: str | None
    provider: str | None
    error_code: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    latency_ms: int
    cost_usd: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class UsageTotal(UsageView):
    """The events of one kind within one group (`group` is None in the totals, and for events
    without the grouping attribute, e.g. a seat has no agent). `cost_usd` is the provider cost
    of the events that carry one (None when none does); `unpriced_events` counts model calls
    whose price was not known."""

    group: str | None
    kind: UsageKind
    unit: str
    events: int
    quantity: str
    cost_usd: str | None
    unpriced_events: int


class UsageSummary(UsageView):
    """Sums over the half-open window [`start`, `end`) of `occurred_at`."""

    start: datetime
    end: datetime
    group_by: UsageGroupBy
    agent_id: str | None
    groups: list[UsageTotal]
    totals: list[UsageTotal]


class OutcomeCost(UsageView):
    """One outcome event and what the conversation behind it cost the platform: the provider
    cost of all its model calls (None when some call had no known price:
    `unpriced_model_calls` says how many), its tokens and its tool calls."""

    event_id: str
    conversation_id: str | None
    agent_id: str | None
    channel: str | None
    outcome: str | None
    occurred_at: datetime
    reversed: bool
    model_calls: int
    unpriced_model_calls: int
    tokens: int
    provider_cost_usd: str | None
    tool_calls: int
