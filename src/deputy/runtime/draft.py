"""What a mode engine (reasoning or guided) hands back to the turn: the reply it drafted, and
whether the conversation must go to a human or end. The turn runs the output guardrails on the
draft before anything leaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from deputy.domain.spec import OutcomeKind

HandoffTrigger = Literal[
    "rule",
    "customer_request",
    "repeated_failure",
    "model_outage",
    "guardrail",
    "procedure",
    "agent",
]


@dataclass(frozen=True)
class HandoffRequest:
    """Move the conversation to a human queue. `rule_id`: the escalation rule that matched."""

    trigger: HandoffTrigger
    reason: str
    queue: str
    summary: str | None = None
    rule_id: str | None = None


@dataclass(frozen=True)
class EndRequest:
    """The agent ends the conversation (the `end_conversation` built-in)."""

    outcome: OutcomeKind
    summary: str | None = None


@dataclass(frozen=True)
class TransferRequest:
    """Pass the conversation to another deployed agent (one of the spec's `routes`): `agent`
    is the route's target as the spec names it (an id or a name in the same workspace)."""

    route_id: str
    agent: str
    reason: str


@dataclass(frozen=True)
class Draft:
    text: str
    citations: tuple[dict[str, Any], ...] = ()
    """The `citation`s of the passages the reply draws on."""
    handoff: HandoffRequest | None = None
    end: EndRequest | None = None
    transfer: TransferRequest | None = None
    failed: bool = False
    """The turn did not achieve what it tried (a refused or failed tool call, a model that
    could not answer): consecutive failed turns escalate under the spec's rule."""
    details: dict[str, Any] = field(default_factory=dict)
    """Recorded on the agent message (procedure, step, template id…)."""
