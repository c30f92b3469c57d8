"""The canary decision: each rollback trigger and SLO, the sample minimum, promotion timing,
and the metrics an arm's conversations and turns give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deputy.domain.lifecycle import ArmMetrics, CanaryAction
from deputy.domain.spec import Autonomy, RollbackTriggers, SLOs
from deputy.lifecycle.canary import (
    MIN_BREACH_SAMPLE,
    ConversationSample,
    TurnSample,
    arm_metrics,
    decide,
    p95,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
AUTONOMY = Autonomy(
    mode="auto_with_rollback",
    min_canary_conversations=20,
    canary_hours=2,
    rollback_on=RollbackTriggers(max_p95_latency_ms=3000),
)
SLO = SLOs(latency_p95_ms=4000)


def arm(version: int = 1, **changes: object) -> ArmMetrics:
    """A healthy arm: 20 conversations, 80% resolved, 10% escalated, clean turns."""
    values: dict[str, object] = {
        "version": version,
        "conversations": 20,
        "resolved": 16,
        "escalated": 2,
        "resolution_rate": 0.8,
        "escalation_rate": 0.1,
        "guardrail_violation_rate": 0.0,
        "error_rate": 0.0,
        "turns": 60,
        "p95_latency_ms": 1200.0,
    }
    return ArmMetrics.model_validate(values | changes)


def judge(
    canary: ArmMetrics, *, hours: float = 1.0, live: ArmMetrics | None = None
) -> tuple[CanaryAction, list[str], str]:
    return decide(
        live or arm(),
        canary,
        AUTONOMY,
        SLO,
        started_at=START,
        now=START + timedelta(hours=hours),
    )


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"resolution_rate": 0.7}, "resolution rate 70.0% is 10.0% below"),
        ({"escalation_rate": 0.2}, "escalation rate 20.0% is 10.0% above"),
        ({"guardrail_violation_rate": 0.05}, "guardrail violation rate 5.0%"),
        ({"error_rate": 0.03}, "error rate 3.0% of turns is over 2.0%"),
        ({"p95_latency_ms": 3500.0}, "p95 latency 3500 ms is over the rollback trigger's 3000"),
    ],
)
def test_each_trigger_rolls_the_canary_back(changes: dict[str, object], needle: str) -> None:
    action, breaches, reason = judge(arm(2, **changes))
    assert action == "rollback"
    assert len(breaches) == 1 and needle in breaches[0]
    assert needle in reason


def test_within_the_allowed_margins_nothing_breaches() -> None:
    canary = arm(2, resolution_rate=0.76, escalation_rate=0.14, error_rate=0.02)
    action, breaches, reason = judge(canary)
    assert (action, breaches) == ("wait", [])
    assert reason.startswith("no breach so far")


def test_the_latency_slo_applies_without_a_latency_trigger() -> None:
    autonomy = AUTONOMY.model_copy(update={"rollback_on": RollbackTriggers()})
    slow = arm(2, p95_latency_ms=4500.0)
    action, breaches, _ = decide(
        arm(), slow, autonomy, SLO, started_at=START, now=START + timedelta(hours=1)
    )
    assert action == "rollback"
    assert breaches == ["p95 latency 4500 ms is over the latency SLO's 4000 ms"]


def test_several_breaches_are_all_reported() -> None:
    canary = arm(2, resolution_rate=0.2, escalation_rate=0.7, error_rate=0.5)
    action, breaches, _ = judge(canary)
    assert action == "rollback" and len(breaches) == 3


def test_nothing_is_judged_below_the_sample_minimum() -> None:
    terrible = arm(
        2,
        conversations=MIN_BREACH_SAMPLE - 1,
        resolution_rate=0.0,
        escalation_rate=1.0,
        error_rate=1.0,
    )
    action, breaches, reason = judge(terrible)
    assert (action, breaches) == ("wait", [])
    assert "too few to judge" in reason
    enough = terrible.model_copy(update={"conversations": MIN_BREACH_SAMPLE})
    assert judge(enough)[0] == "rollback"


def test_rates_the_live_arm_lacks_are_not_compared() -> None:
    live = arm(resolution_rate=None, escalation_rate=None)
    canary = arm(2, resolution_rate=0.0, escalation_rate=1.0)
    assert judge(canary, live=live)[0] == "wait"


def test_promotion_needs_both_the_conversations_and_the_hours() -> None:
    enough = arm(2, conversations=20)
    action, _, reason = judge(enough, hours=1.5)
    assert action == "wait" and "1.5 of 2 hours" in reason
    few = arm(2, conversations=19)
    action, _, reason = judge(few, hours=3)
    assert action == "wait" and "19 of 20 conversations" in reason
    action, breaches, reason = judge(enough, hours=2)
    assert (action, breaches) == ("promote", [])
    assert "no breach over 20 conversations" in reason


def test_a_breach_wins_over_promotion() -> None:
    assert judge(arm(2, error_rate=0.5), hours=48)[0] == "rollback"


def test_arm_metrics_count_settled_conversations_and_finished_turns() -> None:
    conversations = [
        ConversationSample("resolved", False),
        ConversationSample("resolved", False),
        ConversationSample("escalated", True),
        ConversationSample(None, True),  # handed to a human, not closed yet: escalated
        ConversationSample(None, False),  # still open: not settled
        ConversationSample("abandoned", False),
    ]
    turns = [
        TurnSample(failed=False, guardrail_stopped=False, latency_ms=100.0),
        TurnSample(failed=True, guardrail_stopped=False, latency_ms=900.0),
        TurnSample(failed=False, guardrail_stopped=True, latency_ms=300.0),
        TurnSample(failed=False, guardrail_stopped=False, latency_ms=None),
    ]
    metrics = arm_metrics(3, conversations, turns)
    assert (metrics.version, metrics.conversations, metrics.turns) == (3, 6, 4)
    assert (metrics.resolved, metrics.escalated) == (2, 2)
    assert metrics.resolution_rate == pytest.approx(2 / 5)
    assert metrics.escalation_rate == pytest.approx(2 / 5)
    assert metrics.error_rate == pytest.approx(1 / 4)
    assert metrics.guardrail_violation_rate == pytest.approx(1 / 4)
    assert metrics.p95_latency_ms == 900.0


def test_an_empty_arm_has_no_rates() -> None:
    metrics = arm_metrics(1, [], [])
    assert metrics.conversations == metrics.turns == 0
    assert metrics.resolution_rate is None and metrics.error_rate is None
    assert metrics.p95_latency_ms is None


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(v) for v in range(1, 101)]) == 95.0
    assert p95([float(v) for v in range(1, 21)]) == 19.0
