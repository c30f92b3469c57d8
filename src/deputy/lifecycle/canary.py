"""Canary judgement, pure: one arm's conversations and turns → its metrics; the live and the
canary arms' metrics with the spec's rollback triggers and SLOs → promote, roll back or wait.

A breach needs evidence: nothing is judged before the canary has `MIN_BREACH_SAMPLE`
conversations, and a rate with no denominator (no settled conversation, no finished turn) is
not judged at all. Rates compared with the live version are only compared when the live arm
has that rate too. Errors, guardrail violations and latency are judged per turn; resolution
and escalation per settled conversation (closed with an outcome, or handed to a human)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from deputy.domain.lifecycle import ArmMetrics, CanaryAction
from deputy.domain.spec import Autonomy, SLOs

MIN_BREACH_SAMPLE = 5
"""Canary conversations before any trigger is judged (a single bad conversation is noise)."""


@dataclass(frozen=True)
class ConversationSample:
    """What a conversation of an arm says about it: its outcome (None while open) and
    whether it was handed to a human (an escalation even before it is closed)."""

    outcome: str | None
    handed_off: bool

    @property
    def settled(self) -> bool:
        return self.outcome is not None or self.handed_off

    @property
    def escalated(self) -> bool:
        return self.outcome == "escalated" or (self.outcome is None and self.handed_off)


@dataclass(frozen=True)
class TurnSample:
    """One finished turn: failed or not, stopped by a guardrail (a block or an escalation of
    its input, a tool call or its reply), and how long it ran (None when unknown)."""

    failed: bool
    guardrail_stopped: bool
    latency_ms: float | None


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def arm_metrics(
    version: int, conversations: Sequence[ConversationSample], turns: Sequence[TurnSample]
) -> ArmMetrics:
    """One arm's metrics from its conversations and their finished turns."""
    settled = [c for c in conversations if c.settled]
    resolved = sum(1 for c in settled if c.outcome == "resolved")
    escalated = sum(1 for c in settled if c.escalated)
    return ArmMetrics(
        version=version,
        conversations=len(conversations),
        resolved=resolved,
        escalated=escalated,
        resolution_rate=_rate(resolved, len(settled)),
        escalation_rate=_rate(escalated, len(settled)),
        guardrail_violation_rate=_rate(sum(t.guardrail_stopped for t in turns), len(turns)),
        error_rate=_rate(sum(t.failed for t in turns), len(turns)),
        turns=len(turns),
        p95_latency_ms=p95([t.latency_ms for t in turns if t.latency_ms is not None]),
    )


def _pct(value: float) -> str:
    return f"{value:.1%}"


def breaches(live: ArmMetrics, canary: ArmMetrics, autonomy: Autonomy, slos: SLOs) -> list[str]:
    """Each rollback trigger or SLO the canary breaches (none below the sample minimum)."""
    if canary.conversations < MIN_BREACH_SAMPLE:
        return []
    limits = autonomy.rollback_on
    found: list[str] = []
    if canary.resolution_rate is not None and live.resolution_rate is not None:
        drop = live.resolution_rate - canary.resolution_rate
        if drop > limits.max_resolution_rate_drop:
            found.append(
                f"resolution rate {_pct(canary.resolution_rate)} is {_pct(drop)} below the "
                f"live version's {_pct(live.resolution_rate)} "
                f"(allowed drop {_pct(limits.max_resolution_rate_drop)})"
            )
    if canary.escalation_rate is not None and live.escalation_rate is not None:
        rise = canary.escalation_rate - live.escalation_rate
        if rise > limits.max_escalation_rate_rise:
            found.append(
                f"escalation rate {_pct(canary.escalation_rate)} is {_pct(rise)} above the "
                f"live version's {_pct(live.escalation_rate)} "
                f"(allowed rise {_pct(limits.max_escalation_rate_rise)})"
            )
    violations = canary.guardrail_violation_rate
    if violations is not None and violations > limits.max_guardrail_violation_rate:
        found.append(
            f"guardrail violation rate {_pct(violations)} of turns is over "
            f"{_pct(limits.max_guardrail_violation_rate)}"
        )
    if canary.error_rate is not None and canary.error_rate > limits.max_error_rate:
        found.append(
            f"error rate {_pct(canary.error_rate)} of turns is over {_pct(limits.max_error_rate)}"
        )
    latency = canary.p95_latency_ms
    if latency is not None:
        ceilings = [(slos.latency_p95_ms, "the latency SLO")]
        if limits.max_p95_latency_ms is not None:
            ceilings.insert(0, (limits.max_p95_latency_ms, "the rollback trigger"))
        over = [(ceiling, name) for ceiling, name in ceilings if latency > ceiling]
        if over:
            ceiling, name = min(over)
            found.append(f"p95 latency {latency:.0f} ms is over {name}'s {ceiling} ms")
    return found


def decide(
    live: ArmMetrics,
    canary: ArmMetrics,
    autonomy: Autonomy,
    slos: SLOs,
    *,
    started_at: datetime,
    now: datetime,
) -> tuple[CanaryAction, list[str], str]:
    """(what to do, the breaches, why): any breach rolls back; a canary with no breach that
    has served `min_canary_conversations` conversations for `canary_hours` is promoted;
    otherwise wait."""
    found = breaches(live, canary, autonomy, slos)
    if found:
        return "rollback", found, "the canary breaches: " + "; ".join(found)
    needed = autonomy.min_canary_conversations
    elapsed = now - started_at
    window = timedelta(hours=autonomy.canary_hours)
    missing: list[str] = []
    if canary.conversations < needed:
        missing.append(f"{canary.conversations} of {needed} conversations")
    if elapsed < window:
        hours = elapsed.total_seconds() / 3600
        missing.append(f"{hours:.1f} of {autonomy.canary_hours} hours")
    if missing:
        sample = "" if canary.conversations >= MIN_BREACH_SAMPLE else " (too few to judge yet)"
        return "wait", [], f"no breach so far{sample}; waiting for {' and '.join(missing)}"
    return (
        "promote",
        [],
        f"no breach over {canary.conversations} conversations and "
        f"{elapsed.total_seconds() / 3600:.1f} hours",
    )
