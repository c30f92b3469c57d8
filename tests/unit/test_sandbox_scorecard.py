"""Scorecards of a run and A/B comparisons of two runs, from trial results."""

from __future__ import annotations

from typing import Any

import pytest

from deputy.domain.sandbox_results import CheckResult, TrialResult, UsageTotals
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.sandbox.compare import compare, render_comparison
from deputy.sandbox.scorecard import render_scorecard, scorecard
from deputy.sandbox.stats import pass_hat_k


def scenario(sid: str, title: str = "") -> Scenario:
    return Scenario.model_validate(
        {
            "id": sid,
            "title": title or sid.replace("_", " "),
            "customer": {"persona": "a customer", "goal": "get help"},
        }
    )


def suite(*ids: str) -> ScenarioSuite:
    return ScenarioSuite(name="retail", scenarios=tuple(scenario(sid) for sid in ids))


def result(sid: str, trial: int, passed: bool, **fields: Any) -> TrialResult:
    fields.setdefault("termination", "customer_stop")
    fields.setdefault("outcome", "resolved" if passed else "abandoned")
    return TrialResult(
        scenario_id=sid,
        trial=trial,
        seed=trial,
        reward=1.0 if passed else 0.0,
        passed=passed,
        **fields,
    )


def failed(kind: Any) -> CheckResult:
    return CheckResult(kind=kind, passed=False, detail="")


def run(pattern: dict[str, str]) -> list[TrialResult]:
    """Results from a pattern like {'a': '✓✗✓'}: one trial per mark."""
    return [
        result(sid, trial, mark == "✓")
        for sid, marks in pattern.items()
        for trial, mark in enumerate(marks)
    ]


# -- scorecard -----------------------------------------------------------------------------


def test_per_scenario_scores_follow_the_suite_and_trial_order() -> None:
    results = [
        result("cancel_order", 1, False, outcome="escalated", checks=(failed("db"),)),
        result("unknown_scenario", 0, True),
        result("return_items", 0, True, seconds=10.0),
        result("cancel_order", 0, True, seconds=4.0),
        result(
            "cancel_order",
            2,
            False,
            checks=(failed("action"), failed("action"), failed("db")),
            seconds=8.0,
        ),
    ]
    card = scorecard(suite("return_items", "exchange_items", "cancel_order"), results)

    assert [s.scenario_id for s in card.per_scenario] == ["return_items", "cancel_order"]
    cancel = card.per_scenario[1]
    assert (cancel.trials, cancel.successes) == (3, 1)
    assert cancel.title == "cancel order"
    assert cancel.outcomes == ("resolved", "escalated", "abandoned")
    assert cancel.failed_checks == {"action": 1, "db": 2}
    assert cancel.pass_hat == pytest.approx({1: 1 / 3, 2: 0.0, 3: 0.0})
    assert cancel.mean_reward == pytest.approx(1 / 3)
    assert cancel.mean_seconds == pytest.approx(4.0)
    assert cancel.mean_cost_usd is None
    assert card.conversations == 4 and card.scenarios == 2


def test_run_pass_hat_is_the_scenario_mean_up_to_the_fewest_trials() -> None:
    pattern = {"a": "✓✓✓✓", "b": "✓✗✓✗", "c": "✗✗✗", "d": "✓✓✗✓"}
    card = scorecard(suite(*pattern), run(pattern))

    assert card.trials_per_scenario == 3
    assert sorted(card.pass_hat) == [1, 2, 3]
    expected_2 = (1.0 + pass_hat_k(4, 2, 2) + 0.0 + pass_hat_k(4, 3, 2)) / 4
    assert card.pass_hat[2].value == pytest.approx(expected_2)
    for estimate in card.pass_hat.values():
        assert 0.0 <= estimate.low <= estimate.value <= estimate.high <= 1.0
        assert "bootstrap over scenarios" in estimate.method
    assert card.pass_hat[1].value > card.pass_hat[2].value > card.pass_hat[3].value
    assert card.mean_reward == pytest.approx(9 / 15)


def test_errors_outcomes_and_repeated_trials() -> None:
    results = [
        result("a", 0, False, termination="error", outcome=None, error="world failed"),
        result("a", 1, True),
        result("b", 0, False, outcome="escalated"),
        result("b", 0, True),  # the same trial again, from a resumed run: the last one counts
    ]
    card = scorecard(suite("a", "b"), results)
    assert card.errors == 1
    assert card.outcomes == {"none": 1, "resolved": 2}
    assert card.per_scenario[1].successes == 1 and card.conversations == 3


def test_cost_sums_each_role_and_leaves_unpriced_runs_without_a_price() -> None:
    priced = UsageTotals(calls=3, input_tokens=900, output_tokens=120, cost_usd=0.02)
    local = UsageTotals(calls=5, input_tokens=2000, output_tokens=300, cost_usd=None)
    judge = UsageTotals(calls=1, input_tokens=400, output_tokens=50, cost_usd=0.005)
    results = [
        result("a", 0, True, agent_usage=priced, customer_usage=local, judge_usage=judge),
        result("a", 1, True, agent_usage=priced, customer_usage=local),
    ]
    card = scorecard(suite("a"), results)

    assert card.cost.agent == UsageTotals(
        calls=6, input_tokens=1800, output_tokens=240, cost_usd=0.04
    )
    assert card.cost.customer.calls == 10 and card.cost.customer.cost_usd is None
    assert card.cost.total_usd == pytest.approx(0.045)
    assert card.cost.mean_per_conversation_usd == pytest.approx(0.0225)
    assert card.per_scenario[0].mean_cost_usd == pytest.approx(0.0225)

    unpriced = scorecard(suite("a"), [result("a", 0, True, agent_usage=local)])
    assert unpriced.cost.total_usd is None and unpriced.cost.mean_per_conversation_usd is None
    assert unpriced.cost.agent.input_tokens == 2000


def test_latency_of_conversations_and_turns() -> None:
    results = [
        result("a", t, True, seconds=float(s), turn_seconds=turns)
        for t, (s, turns) in enumerate(
            [(10, (1.0, 2.0)), (20, (3.0,)), (30, (4.0, 5.0, 6.0)), (40, ())]
        )
    ]
    latency = scorecard(suite("a"), results).latency
    assert latency.conversation_mean_seconds == 25.0
    assert latency.conversation_p95_seconds == pytest.approx(38.5)
    assert latency.turn_p50_seconds == 3.5
    assert latency.turn_p95_seconds == pytest.approx(5.75)


def test_a_run_without_results_is_an_empty_card() -> None:
    card = scorecard(suite("a"), [])
    assert card.scenarios == 0 and card.trials_per_scenario == 0 and card.pass_hat == {}
    assert "0 scenarios" in render_scorecard(card)


def test_rendered_scorecard_shows_rates_intervals_rows_cost_and_latency() -> None:
    results = [
        result(
            "cancel_order",
            0,
            True,
            seconds=12.0,
            agent_usage=UsageTotals(calls=3, input_tokens=900, output_tokens=60, cost_usd=0.01),
            customer_usage=UsageTotals(calls=2, input_tokens=400, output_tokens=40),
        ),
        result("cancel_order", 1, False, checks=(failed("communicate"),), seconds=14.0),
        result("return_items", 0, True, seconds=9.0, turn_seconds=(1.5,)),
        result("return_items", 1, True, seconds=11.0, turn_seconds=(2.5,)),
    ]
    card = scorecard(suite("cancel_order", "return_items"), results)
    text = render_scorecard(card)
    lines = text.splitlines()

    p1, p2 = card.pass_hat[1], card.pass_hat[2]
    assert f"pass^1  {p1.value:.3f}  [{p1.low:.3f}, {p1.high:.3f}]" in lines
    assert f"pass^2  {p2.value:.3f}  [{p2.low:.3f}, {p2.high:.3f}]" in lines
    cancel = next(line for line in lines if line.startswith("cancel_order"))
    assert "✓✗" in cancel and "$0.0100" in cancel and "communicate: 1" in cancel
    assert "✓✓" in next(line for line in lines if line.startswith("return_items"))
    assert "cost: total $0.0100" in text
    assert "(agent: 3 calls, 900 in / 60 out tokens, customer: 2 calls, 400 in / 40 out" in text
    assert "judge:" not in text  # no judge calls
    assert "latency: conversation mean 11.5s" in text and "turn p50 2.00s" in text


# -- compare -------------------------------------------------------------------------------


def test_compare_calls_out_regressions_by_size_and_lists_unshared_scenarios() -> None:
    baseline = run({"a": "✓✓", "b": "✓✓", "c": "✓✗", "d": "✗✗", "old": "✓✓"})
    candidate = run({"a": "✓✓", "b": "✗✗", "c": "✗✗", "d": "✓✓", "new": "✗✗"})

    c = compare(baseline, candidate)

    assert c.scenarios == 4
    assert c.regressions == ("b", "c") and c.improvements == ("d",)
    statuses = {d.scenario_id: (d.status, d.delta) for d in c.per_scenario}
    assert statuses == {
        "a": ("same", 0.0),
        "b": ("regressed", -1.0),
        "c": ("regressed", -0.5),
        "d": ("improved", 1.0),
    }
    assert c.only_in_baseline == ("old",) and c.only_in_candidate == ("new",)
    assert c.baseline_pass_1 == pytest.approx(0.625)
    assert c.candidate_pass_1 == pytest.approx(0.5)
    assert c.delta_pass_1.value == pytest.approx(-0.125)
    assert c.delta_pass_1.low <= -0.125 <= c.delta_pass_1.high
    assert c.p_value == pytest.approx(1.0) and c.verdict == "no_significant_difference"


def test_equal_rates_over_different_trial_counts_are_the_same() -> None:
    c = compare(run({"a": "✓✗"}), run({"a": "✓✓✗✗"}))
    assert c.per_scenario[0].status == "same" and c.p_value == 1.0


def test_consistent_gains_are_better_and_consistent_losses_worse() -> None:
    ids = [f"s{i}" for i in range(8)]
    weak = run(dict.fromkeys(ids, "✗✗"))
    strong = run(dict.fromkeys(ids, "✓✗"))

    better = compare(weak, strong, seed=7)
    assert better.verdict == "better" and better.p_value == 0.0078125
    assert better.delta_pass_1.value == pytest.approx(0.5)
    assert better.delta_pass_1.low == pytest.approx(0.5) and "seed 7" in better.delta_pass_1.method

    worse = compare(strong, weak)
    assert worse.verdict == "worse" and worse.regressions == tuple(ids)

    few = compare(run(dict.fromkeys(ids[:5], "✗")), run(dict.fromkeys(ids[:5], "✓")))
    assert few.p_value == 0.0625 and few.verdict == "no_significant_difference"


def test_compare_of_runs_with_nothing_shared() -> None:
    c = compare(run({"a": "✓"}), run({"b": "✓"}))
    assert c.scenarios == 0 and c.verdict == "no_significant_difference"
    assert c.delta_pass_1.value == 0.0 and c.only_in_baseline == ("a",)


def test_rendered_comparison_leads_with_the_verdict_and_regressions() -> None:
    baseline = run({"refund": "✓✓", "exchange": "✗✗", "cancel": "✓✓", "old": "✓"})
    candidate = run({"refund": "✗✓", "exchange": "✓✓", "cancel": "✓✓"})
    text = render_comparison(compare(baseline, candidate))
    lines = text.splitlines()

    assert lines[0].startswith("verdict: no significant difference (sign test p = 1.0000")
    assert "1 improved, 1 regressed, 1 unchanged of 3 shared scenarios" in lines[0]
    assert "pass^1: baseline 0.667 -> candidate 0.833" in lines[1]
    assert lines.index("regressions:") < lines.index("improvements:")
    assert "  refund: 1.00 -> 0.50 (-0.50)" in lines
    assert "  exchange: 0.00 -> 1.00 (+1.00)" in lines
    assert "only in baseline: old" in lines
