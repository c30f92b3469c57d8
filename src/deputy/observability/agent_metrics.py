"""Prometheus series of what agents do: conversations, turns, model calls, tool calls, guardrail
stops, escalations and outcomes, on a registry per platform (tests never share counters).

Every series carries `workspace` (so a workspace's key scrapes only its own series, see
`deputy.observability.exposition`) and, where it applies, `agent` (an agent id) and `channel`.
Labels are bounded: ids and names from specs and settings, stable codes, and channels folded
into `CHANNELS` (anything else is `other`); never conversation ids or customer text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram

TURN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
"""Turn latency buckets. A latency SLO is measured at the largest bound not above the agent's
threshold (`slo_bucket`), so the default 5 s threshold is a bound."""
MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CHANNELS = frozenset(
    {"api", "chat", "email", "slack", "telegram", "whatsapp", "sms", "voice", "openai", "a2a"}
)
"""Channels the platform itself names; a caller's own channel name is counted as `other`."""
STAGES = frozenset({"input", "tool", "output"})
STOPPING_ACTIONS = frozenset({"block", "escalate"})
TurnStatus = Literal["completed", "failed"]


def channel_label(channel: str) -> str:
    return channel if channel in CHANNELS else "other"


def slo_bucket(threshold_seconds: float) -> float:
    """The turn-latency bucket bound a latency threshold is measured at: the largest bound not
    above it (a turn between that bound and the threshold counts as slow: strict, never
    lenient), or the smallest bound for a threshold below every bound."""
    below = [bound for bound in TURN_BUCKETS if bound <= threshold_seconds]
    return below[-1] if below else TURN_BUCKETS[0]


@dataclass(frozen=True)
class AgentMetrics:
    registry: CollectorRegistry
    conversations: Counter
    turns: Counter
    turn_duration: Histogram
    model_duration: Histogram
    model_tokens: Counter
    model_errors: Counter
    tool_calls: Counter
    tool_duration: Histogram
    guardrail_stops: Counter
    escalations: Counter
    outcomes: Counter

    @classmethod
    def create(cls) -> AgentMetrics:
        registry = CollectorRegistry()
        where = ["workspace", "agent", "channel"]
        return cls(
            registry=registry,
            conversations=Counter(
                "deputy_conversations_started",
                "Conversations started",
                where,
                registry=registry,
            ),
            turns=Counter(
                "deputy_turns",
                "Turns ended: completed (the agent answered) or failed (the turn failed, or the "
                "agent's model failed and it could only apologise or hand off)",
                [*where, "status"],
                registry=registry,
            ),
            turn_duration=Histogram(
                "deputy_turn_duration_seconds",
                "From the customer's message to the end of the agent's turn",
                where,
                buckets=TURN_BUCKETS,
                registry=registry,
            ),
            model_duration=Histogram(
                "deputy_model_request_duration_seconds",
                "Model calls, retries included",
                ["workspace", "agent", "model", "provider"],
                buckets=MODEL_BUCKETS,
                registry=registry,
            ),
            model_tokens=Counter(
                "deputy_model_tokens",
                "Model tokens by direction (input includes cached input)",
                ["workspace", "agent", "model", "direction"],
                registry=registry,
            ),
            model_errors=Counter(
                "deputy_model_errors",
                "Model calls that failed, by stable error code (or outcome)",
                ["workspace", "agent", "model", "code"],
                registry=registry,
            ),
            tool_calls=Counter(
                "deputy_tool_calls",
                "Tool calls by result status (succeeded, failed, refused, outcome_unknown)",
                ["workspace", "agent", "tool", "status"],
                registry=registry,
            ),
            tool_duration=Histogram(
                "deputy_tool_call_duration_seconds",
                "Tool calls through the executor (checks, ledger and retries included)",
                ["workspace", "agent", "tool"],
                buckets=TOOL_BUCKETS,
                registry=registry,
            ),
            guardrail_stops=Counter(
                "deputy_guardrail_blocks",
                "Guardrail stages that stopped a message, a tool result or a reply",
                [*where, "stage", "action"],
                registry=registry,
            ),
            escalations=Counter(
                "deputy_escalations",
                "Conversations handed to a human, by trigger",
                [*where, "trigger"],
                registry=registry,
            ),
            outcomes=Counter(
                "deputy_outcomes",
                "Conversations closed, by outcome",
                [*where, "outcome"],
                registry=registry,
            ),
        )

    def conversation_started(self, workspace: str, agent: str, channel: str) -> None:
        self.conversations.labels(workspace, agent, channel_label(channel)).inc()

    def turn_ended(
        self, workspace: str, agent: str, channel: str, status: TurnStatus, seconds: float
    ) -> None:
        """A turn's end. Both statuses' series exist from an agent's first turn on, so a rate
        of failures is 0 (not absent) until the first failure and counts that one."""
        where = (workspace, agent, channel_label(channel))
        for known in ("completed", "failed"):
            self.turns.labels(*where, known)
        self.turns.labels(*where, status).inc()
        self.turn_duration.labels(*where).observe(max(seconds, 0.0))

    def model_call(
        self,
        *,
        workspace: str,
        agent: str,
        model: str,
        provider: str,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
        error: str | None,
    ) -> None:
        self.model_duration.labels(workspace, agent, model, provider).observe(seconds)
        tokens = self.model_tokens
        tokens.labels(workspace, agent, model, "input").inc(max(input_tokens, 0))
        tokens.labels(workspace, agent, model, "output").inc(max(output_tokens, 0))
        if error is not None:
            self.model_errors.labels(workspace, agent, model, error).inc()

    def entry_recorded(
        self, workspace: str, agent: str, channel: str, kind: str, data: Mapping[str, Any]
    ) -> None:
        """A transcript entry a turn recorded: tool calls and stopping guardrail stages count."""
        if kind == "tool_call":
            tool = "unknown" if data.get("code") == "unknown_tool" else str(data.get("tool"))
            self.tool_calls.labels(workspace, agent, tool, str(data.get("status"))).inc()
            duration_ms = data.get("duration_ms")
            if isinstance(duration_ms, int | float):
                self.tool_duration.labels(workspace, agent, tool).observe(duration_ms / 1000)
        elif kind == "guardrail" and data.get("action") in STOPPING_ACTIONS:
            stage = data.get("stage")
            self.guardrail_stops.labels(
                workspace,
                agent,
                channel_label(channel),
                stage if stage in STAGES else "other",
                str(data["action"]),
            ).inc()

    def escalated(self, workspace: str, agent: str, channel: str, trigger: str) -> None:
        self.escalations.labels(workspace, agent, channel_label(channel), trigger).inc()

    def closed(self, workspace: str, agent: str, channel: str, outcome: str) -> None:
        self.outcomes.labels(workspace, agent, channel_label(channel), outcome).inc()
