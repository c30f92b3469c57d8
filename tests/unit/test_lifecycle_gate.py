"""The sandbox gate, the permission view of a first version and the cost impact, from data:
real scorecards and A/B comparisons computed from trial results."""

from __future__ import annotations

from typing import Any

from deputy.domain.sandbox_results import TrialResult, UsageTotals
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.lifecycle.gate import (
    AUTO_DEPLOY_REASON,
    cost_impact,
    first_version_text,
    first_version_widening,
    sandbox_gate,
)
from deputy.sandbox.compare import compare
from deputy.sandbox.scorecard import scorecard

IDS = ("status", "refund", "exchange", "address", "cancel", "track", "invoice")
SUITE = ScenarioSuite(
    name="retail",
    scenarios=tuple(
        Scenario.model_validate(
            {"id": sid, "title": sid, "customer": {"persona": "a customer", "goal": "help"}}
        )
        for sid in IDS
    ),
)


def results(marks: str, *, cost: float | None = None, errors: bool = False) -> list[TrialResult]:
    """One trial per scenario of IDS: ✓ passed, ✗ failed (`errors`: the trial could not run)."""
    return [
        TrialResult(
            scenario_id=sid,
            trial=0,
            seed=0,
            reward=1.0 if mark == "✓" else 0.0,
            passed=mark == "✓",
            termination="error" if errors else "customer_stop",
            error="model unavailable" if errors else None,
            agent_usage=UsageTotals(calls=1, cost_usd=cost),
        )
        for sid, mark in zip(IDS, marks, strict=True)
    ]


def test_no_candidate_run_is_missing() -> None:
    gate = sandbox_gate(None, None, base_version=None)
    assert gate.status == "missing" and "no finished sandbox run" in gate.reason


def test_a_first_version_passes_on_a_finished_run() -> None:
    card = scorecard(SUITE, results("✓✓✗✓✓✓✓"))
    gate = sandbox_gate(card, None, base_version=None)
    assert gate.status == "passed"
    assert (
        gate.reason
        == "First version: its sandbox run finished with pass^1 0.857 over 7 conversations."
    )


def test_a_run_whose_conversations_all_errored_fails() -> None:
    card = scorecard(SUITE, results("✗✗✗✗✗✗✗", errors=True))
    assert card.errors == 7
    for base in (None, 3):
        gate = sandbox_gate(card, None, base_version=base)
        assert gate.status == "failed" and "ran without error" in gate.reason


def test_against_a_live_version_the_ab_is_required() -> None:
    card = scorecard(SUITE, results("✓✓✓✓✓✓✓"))
    gate = sandbox_gate(card, None, base_version=3)
    assert gate.status == "missing" and "live version 3" in gate.reason


def test_one_regressed_scenario_fails_though_six_improved() -> None:
    before, after = results("✗✗✗✗✗✗✓"), results("✓✓✓✓✓✓✗")
    comparison = compare(before, after)
    assert comparison.verdict != "worse" and comparison.regressions == ("invoice",)
    gate = sandbox_gate(scorecard(SUITE, after), comparison, base_version=2)
    assert gate.status == "failed"
    assert gate.reason == "Against version 2 the candidate regressed 1 scenario (invoice)."


def test_a_worse_candidate_fails_and_says_so() -> None:
    before, after = results("✓✓✓✓✓✓✓"), results("✗✗✗✗✗✗✓")
    comparison = compare(before, after)
    assert comparison.verdict == "worse"
    gate = sandbox_gate(scorecard(SUITE, after), comparison, base_version=2)
    assert gate.status == "failed" and gate.reason.endswith("and is worse overall.")


def test_no_regression_passes() -> None:
    before, after = results("✓✗✓✗✓✓✓"), results("✓✓✓✗✓✓✓")
    comparison = compare(before, after)
    assert comparison.verdict == "no_significant_difference" and not comparison.regressions
    gate = sandbox_gate(scorecard(SUITE, after), comparison, base_version=2)
    assert gate.status == "passed"
    assert "7 shared scenarios" in gate.reason and "0.714 -> 0.857" in gate.reason


def test_cost_impact_is_the_mean_cost_per_conversation_of_each_side() -> None:
    before = scorecard(SUITE, results("✓✓✓✓✓✓✓", cost=0.002))
    after = scorecard(SUITE, results("✓✓✓✓✓✓✓", cost=0.003))
    impact = cost_impact(before, after)
    assert impact.baseline_usd is not None and impact.candidate_usd is not None
    assert (round(impact.baseline_usd, 6), round(impact.candidate_usd, 6)) == (0.002, 0.003)
    assert cost_impact(None, after).baseline_usd is None
    assert cost_impact(None, None).candidate_usd is None


def spec(**extra: Any) -> AgentSpec:
    data: dict[str, Any] = {
        "name": "Retail",
        "goal": "Help customers with their orders.",
        "procedures": [
            {
                "id": "order_status",
                "title": "Tell the status of an order",
                "when": "The customer asks where an order is",
                "steps": [
                    {"id": "look", "kind": "call_tool", "tool": "get_order"},
                    {"id": "done", "kind": "end", "exit": "told", "text": "Here it is."},
                ],
                "exits": [{"id": "told", "outcome": "resolved"}],
            }
        ],
        "policies": [{"id": "one_user", "text": "Help only one user per conversation."}],
        "tools": [
            {
                "name": "get_order",
                "effect": "read",
                "binding": {"kind": "openapi", "source": "shop", "operation": "getOrder"},
            }
        ],
    }
    for key, value in extra.items():
        data[key] = data.get(key, []) + value if isinstance(value, list) else value
    return AgentSpec.model_validate(data)


REFUND = {
    "name": "refund",
    "effect": "irreversible",
    "binding": {"kind": "http", "method": "POST", "url": "http://127.0.0.1:9/refund"},
    "limits": [{"argument": "amount", "max": 100, "min": 1}],
    "max_calls_per_conversation": 1,
}


def test_a_read_only_first_version_does_not_widen() -> None:
    model = spec()
    assert first_version_widening(model) == []
    text = first_version_text(model)
    assert "Widens permissions" not in text
    for expected in (
        "goal: Help customers with their orders.",
        "procedures (1):\n  - order_status: Tell the status of an order (2 steps)",
        "policies (1):\n  - one_user: ",
        "(applies to every procedure)",
        "  - get_order (read, openapi shop.getOrder): no limits",
        "guardrails: preset standard",
        "autonomy: proposal_only",
    ):
        assert expected in text, expected


def test_acting_tools_routes_and_auto_deploy_widen_a_first_version() -> None:
    model = spec(
        tools=[REFUND, {**REFUND, "name": "note", "effect": "write", "limits": []}],
        routes=[{"id": "to_billing", "agent": "billing", "when": "Billing questions"}],
        autonomy={"mode": "auto_with_rollback", "canary_percent": 5},
        guardrails={"preset": "minimal", "mask_pii": False},
    )
    reasons = first_version_widening(model)
    assert reasons == [
        "adds the irreversible tool `refund`",
        "adds the write tool `note`",
        'passes conversations to the agent "billing" (route `to_billing`)',
        AUTO_DEPLOY_REASON,
    ]
    text = first_version_text(model)
    widening = text.index("! Widens permissions")
    assert widening < text.index("goal:")  # what widens comes first
    assert "  ! adds the irreversible tool `refund`" in text
    assert (
        "  - refund (irreversible, http POST http://127.0.0.1:9/refund): amount >= 1 and "
        "amount <= 100; at most 1 calls per conversation"
    ) in text
    assert "guardrails: preset minimal (mask_pii off)" in text
    assert "autonomy: auto_with_rollback (canary 5%)" in text
