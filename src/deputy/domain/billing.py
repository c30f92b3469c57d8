"""Usage events: the billable facts every other billing number is a sum of."""

from __future__ import annotations

from typing import Literal

UsageKind = Literal[
    "model_call",  # quantity: input + output tokens; cost_usd: the provider's price
    "conversation",  # quantity 1 per conversation started (probes are not billed)
    "outcome",  # quantity 1, subject: resolved | escalated | abandoned
    "outcome_reversal",  # quantity -1, reverses an outcome event after an accepted dispute
    "tool_call",  # quantity 1, subject: the tool, outcome: the call's status
    "voice_minutes",  # quantity: minutes of a call (exact decimal)
    "seat",  # quantity 1 per member per calendar month, subject: the member id
]
USAGE_KINDS: tuple[UsageKind, ...] = (
    "model_call",
    "conversation",
    "outcome",
    "outcome_reversal",
    "tool_call",
    "voice_minutes",
    "seat",
)
UsageUnit = Literal["token", "conversation", "outcome", "call", "minute", "seat"]
