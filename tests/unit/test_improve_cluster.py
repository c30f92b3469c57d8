"""Failure clusters by cause and intent, and causes whose failure rate rose since the previous
period."""

from __future__ import annotations

import pytest

from deputy.domain.improvement import ConversationEvaluation, FailureCause
from deputy.improve.cluster import cluster_failures, period_regressions

EXCHANGES = (
    "exchange the garden hose for the 100ft one",
    "exchange my mechanical keyboard for clicky switches",
    "exchange hiking boots for a bigger size",
    "exchanging an office chair",
    "exchange the water bottle for a bigger one",
    "exchanges of a backpack",
)
ADDRESSES = (
    "change the shipping address on my order",
    "update the delivery address of my order",
)


def _evaluation(
    conversation_id: str,
    intent: str,
    cause: FailureCause | None = "missing_procedure",
    *,
    failed: bool = True,
) -> ConversationEvaluation:
    return ConversationEvaluation(
        conversation_id=conversation_id,
        agent_version=3,
        outcome="escalated" if failed else "resolved",
        resolved=not failed,
        policy_adherence=True,
        tone_ok=True,
        failed=failed,
        cause=cause if failed else None,
        intent=intent,
    )


def _period() -> list[ConversationEvaluation]:
    evaluations = [_evaluation(f"ex{i}", intent) for i, intent in enumerate(EXCHANGES)]
    evaluations += [_evaluation(f"ad{i}", intent) for i, intent in enumerate(ADDRESSES)]
    evaluations += [_evaluation(f"ok{i}", "return a dumbbell set", failed=False) for i in range(2)]
    return evaluations


def test_exchanges_and_address_changes_make_two_clusters_largest_first() -> None:
    evaluations = _period()
    clusters = cluster_failures(list(reversed(evaluations)))  # input order does not matter
    assert [c.id for c in clusters] == ["c1", "c2"]
    exchanges, addresses = clusters
    assert set(exchanges.conversation_ids) == {f"ex{i}" for i in range(6)}
    assert set(addresses.conversation_ids) == {"ad0", "ad1"}
    assert exchanges.share == pytest.approx(0.6)
    assert addresses.share == pytest.approx(0.2)
    assert exchanges.cause == addresses.cause == "missing_procedure"
    # what the members share, not one customer's wording
    assert exchanges.label == "exchange requests"
    assert addresses.label == "address requests"
    assert clusters == cluster_failures(evaluations)  # deterministic


def test_the_same_intent_with_another_cause_is_another_cluster() -> None:
    evaluations = [
        *_period(),
        _evaluation("tool0", "exchange a keyboard", cause="tool_error"),
        _evaluation("tool1", "exchange the bottle", cause="tool_error"),
    ]
    clusters = cluster_failures(evaluations)
    assert [(c.cause, len(c.conversation_ids)) for c in clusters] == [
        ("missing_procedure", 6),
        ("missing_procedure", 2),
        ("tool_error", 2),
    ]
    assert [c.id for c in clusters] == ["c1", "c2", "c3"]


def test_ties_in_size_go_by_cause_order() -> None:
    evaluations = [
        _evaluation("t1", "cancel my pending order", cause="tone"),
        _evaluation("m1", "exchange a backpack", cause="missing_procedure"),
    ]
    assert [c.cause for c in cluster_failures(evaluations)] == ["missing_procedure", "tone"]


def test_a_cluster_of_one_wording_keeps_it_as_label() -> None:
    evaluations = [_evaluation(f"e{i}", "exchange a delivered item") for i in range(3)]
    (cluster,) = cluster_failures(evaluations)
    assert cluster.label == "exchange a delivered item"


def test_unrelated_intents_stay_apart_and_nothing_failed_means_no_cluster() -> None:
    evaluations = [
        _evaluation("a", "track a lost parcel"),
        _evaluation("b", "gift card balance"),
    ]
    assert len(cluster_failures(evaluations)) == 2
    assert cluster_failures([_evaluation("ok", "return a lamp", failed=False)]) == []
    assert cluster_failures([]) == []


def test_a_cause_that_rose_by_at_least_min_rise_is_a_regression() -> None:
    previous = [
        _evaluation("p0", "exchange a hose"),
        *[_evaluation(f"p{i}", "return a lamp", failed=False) for i in range(1, 10)],
        _evaluation("p10", "change address", cause="tool_error"),
        _evaluation("p11", "change address", cause="tool_error"),
    ]
    current = _period()  # 8 of 10 missing_procedure, no tool errors
    regressions = period_regressions(current, previous)
    assert [r.cause for r in regressions] == ["missing_procedure"]
    rise = regressions[0]
    assert rise.previous_rate == pytest.approx(1 / 12)
    assert rise.current_rate == pytest.approx(0.8)
    assert (rise.previous_failures, rise.current_failures) == (1, 8)
    assert period_regressions(current, current) == []
    assert period_regressions(current, previous, min_rise=0.8) == []
    assert period_regressions(current, []) == []
