"""Scoring a trial against its scenario: tau2's components (DB, ACTION, COMMUNICATE,
NL_ASSERTION) on real retail tasks, our extensions (FORBIDDEN, OUTCOME, PROCEDURE, GUARDRAIL),
the reward basis and the details a reviewer reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue

from deputy.domain.sandbox_results import CheckKind, CheckResult, ToolCallRecord, TranscriptMessage
from deputy.domain.scenarios import Scenario
from deputy.sandbox.evaluate import evaluate, judge_assertions
from deputy.sandbox.ports import TrialEvidence

DOMAINS = Path("/work/shared/data/tau2-bench/data/tau2/domains")


def tau2_tasks(domain: str) -> dict[str, dict[str, Any]]:
    tasks = json.loads((DOMAINS / domain / "tasks.json").read_text())
    return {task["id"]: task for task in tasks}


def from_tau2(task: dict[str, Any]) -> Scenario:
    """The scenario a tau2 task amounts to (only what evaluation reads)."""
    criteria = task["evaluation_criteria"]
    actions = criteria.get("actions") or []
    return Scenario.model_validate(
        {
            "id": "tau2_" + "".join(c if c.isalnum() else "_" for c in task["id"].lower()),
            "title": f"tau2 task {task['id']}",
            "customer": {"persona": "a customer", "goal": "get help"},
            "assertions": {
                "reference_actions": [
                    {"tool": a["name"], "arguments": a["arguments"]} for a in actions
                ],
                "expected_tool_calls": [
                    {
                        "tool": a["name"],
                        "arguments": {
                            k: v
                            for k, v in a["arguments"].items()
                            if a.get("compare_args") is None or k in a["compare_args"]
                        },
                    }
                    for a in actions
                ],
                "must_communicate": criteria.get("communicate_info") or [],
                "judge": criteria.get("nl_assertions") or [],
                "reward_basis": criteria.get("reward_basis") or [],
            },
        }
    )


def scenario(**assertions: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "case",
            "title": "a case",
            "customer": {"persona": "a customer", "goal": "get help"},
            "assertions": assertions,
        }
    )


def agent(text: str, turn: int = 1) -> TranscriptMessage:
    return TranscriptMessage(role="agent", turn=turn, text=text)


def call(tool: str, code: str = "ok", turn: int = 1, **arguments: JsonValue) -> ToolCallRecord:
    return ToolCallRecord(tool=tool, arguments=arguments, ok=code == "ok", code=code, turn=turn)


def judged(kind: CheckKind, passed: bool, reasoning: str = "") -> CheckResult:
    return CheckResult(kind=kind, passed=passed, detail="", reasoning=reasoning or None)


def evidence(**fields: Any) -> TrialEvidence:
    fields.setdefault("transcript", ())
    fields.setdefault("tool_calls", ())
    fields.setdefault("outcome", "resolved")
    fields.setdefault("procedures", ())
    return TrialEvidence(**fields)


def check(verdict_checks: tuple[CheckResult, ...], kind: CheckKind) -> list[CheckResult]:
    return [c for c in verdict_checks if c.kind == kind]


# -- tau2 semantics on real retail tasks ---------------------------------------------------


def test_retail_task_scores_db_and_nl_only_and_reports_communicate_outside_the_basis() -> None:
    task = tau2_tasks("retail")["19"]
    assert task["evaluation_criteria"]["communicate_info"] == ["54.04", "41.64"]
    case = from_tau2(task)
    run = evidence(
        transcript=(agent("The refund of $54.04 is on its way.", turn=3),),
        db_match=True,
        judged=tuple(judged("nl_assertion", True) for _ in case.assertions.judge),
    )

    verdict = evaluate(case, run)

    assert verdict.components == {"DB": 1.0, "NL_ASSERTION": 1.0}
    assert verdict.reward == 1.0 and verdict.passed
    said = check(verdict.checks, "communicate")
    assert [c.passed for c in said] == [True, False]
    assert said[0].detail == "said '54.04' (turn 3)"
    assert said[1].detail == "never said '41.64'"


def test_a_different_end_state_fails_the_task_whatever_else_went_right() -> None:
    case = from_tau2(tau2_tasks("retail")["19"])
    run = evidence(
        transcript=(agent("Refunds: $54.04 and $41.64."),),
        db_match=False,
        db_detail="orders['#W1'].status: 'cancelled' != 'pending'",
        judged=tuple(judged("nl_assertion", True) for _ in case.assertions.judge),
    )

    verdict = evaluate(case, run)

    assert verdict.reward == 0.0 and not verdict.passed
    assert verdict.components["DB"] == 0.0
    (db,) = check(verdict.checks, "db")
    assert "differs from the reference" in db.detail and "#W1" in db.detail


def test_communicate_ignores_case_and_thousands_separators_like_tau2() -> None:
    tasks = tau2_tasks("retail")
    task = next(
        t
        for t in tasks.values()
        if "8276.23" in (t["evaluation_criteria"].get("communicate_info") or [])
    )
    case = from_tau2(task).model_copy(
        update={
            "assertions": from_tau2(task).assertions.model_copy(
                update={"reward_basis": ("COMMUNICATE",)}
            )
        }
    )

    assert evaluate(case, evidence(transcript=(agent("In total: $8,276.23"),))).passed
    assert not evaluate(case, evidence(transcript=(agent("In total: $8,276.2"),))).passed
    spoken_by_customer = TranscriptMessage(role="customer", turn=1, text="8276.23")
    assert not evaluate(case, evidence(transcript=(spoken_by_customer,))).passed


def test_unobservable_end_state_scores_zero_with_the_reason() -> None:
    case = from_tau2(tau2_tasks("retail")["0"])
    run = evidence(db_match=None, db_detail="the simulation has no state export")

    verdict = evaluate(case, run)

    assert verdict.components["DB"] == 0.0
    (db,) = check(verdict.checks, "db")
    assert not db.passed and "the simulation has no state export" in db.detail


def test_a_db_basis_without_reference_actions_still_needs_the_end_state() -> None:
    """Retail tasks 24 and 57 have no actions: the agent must leave the data as it found it."""
    case = from_tau2(tau2_tasks("retail")["24"])
    assert case.assertions.reference_actions == () and "DB" in case.assertions.reward_basis

    assert evaluate(case, evidence(db_match=True)).components["DB"] == 1.0
    assert evaluate(case, evidence(db_match=False)).components["DB"] == 0.0
    assert evaluate(case, evidence(db_match=None)).components["DB"] == 0.0


def test_reference_action_without_compare_args_matches_on_the_tool_alone() -> None:
    """Mock task `impossible_task_1`: a transfer whose summary does not matter."""
    case = from_tau2(tau2_tasks("mock")["impossible_task_1"])
    transfer = call("transfer_to_human_agents", summary="cannot delete all tasks")

    verdict = evaluate(case, evidence(tool_calls=(transfer,), db_match=True))

    assert verdict.components == {"DB": 1.0, "ACTION": 1.0} and verdict.passed
    missing = evaluate(case, evidence(db_match=True))
    assert missing.components["ACTION"] == 0.0
    assert check(missing.checks, "action")[0].detail == (
        "expected transfer_to_human_agents() — not called"
    )


def test_actions_of_the_retail_exchange_task_are_each_checked() -> None:
    case = from_tau2(tau2_tasks("retail")["0"])
    made = tuple(
        ToolCallRecord(tool=a.tool, arguments=a.arguments, ok=True, code="ok", turn=i)
        for i, a in enumerate(case.assertions.reference_actions)
    )
    verdict = evaluate(case, evidence(tool_calls=made, db_match=True))
    actions = check(verdict.checks, "action")
    assert len(actions) == 5 and all(c.passed for c in actions)

    without_exchange = evidence(tool_calls=made[:-1], db_match=True)
    failed = [c for c in check(evaluate(case, without_exchange).checks, "action") if not c.passed]
    assert [c.detail for c in failed] == [
        'expected exchange_delivered_order_items(order_id="#W2378156", '
        'item_ids=["1151293680", "4983901480"], new_item_ids=["7706410293", "7747408585"], '
        'payment_method_id="credit_card_9513926") — not called'
    ]


# -- ACTION and FORBIDDEN ----------------------------------------------------------------------


def test_an_expected_call_refused_before_sending_does_not_count() -> None:
    case = scenario(
        expected_tool_calls=[{"tool": "cancel_order", "arguments": {"order_id": "#W1"}}]
    )
    refused = call("cancel_order", code="confirmation_required", order_id="#W1")

    verdict = evaluate(case, evidence(tool_calls=(refused,)))

    assert verdict.components == {"ACTION": 0.0}
    (action,) = verdict.checks
    assert action.detail == (
        'expected cancel_order(order_id="#W1") — only refused before sending '
        "(confirmation_required)"
    )
    sent_but_failed = call("cancel_order", code="tool_error", order_id="#W1")
    assert evaluate(case, evidence(tool_calls=(refused, sent_but_failed))).passed


def test_expected_arguments_are_a_subset_compared_as_json() -> None:
    case = scenario(
        expected_tool_calls=[
            {"tool": "refund", "arguments": {"amount": 10, "items": ["a", "b"], "notify": True}}
        ]
    )
    exact = call("refund", amount=10.0, items=["a", "b"], notify=True, note="extra")
    assert evaluate(case, evidence(tool_calls=(exact,))).passed

    wrong = (
        call("refund", amount=10, items=["b", "a"], notify=True),
        call("refund", amount=10, items=["a", "b"], notify=1),
        call("refund", items=["a", "b"], notify=True),
    )
    verdict = evaluate(case, evidence(tool_calls=wrong))
    assert not verdict.passed
    assert verdict.checks[0].detail.endswith(
        'called with other arguments: items=["b", "a"]; notify=1; amount missing'
    )


def test_a_forbidden_call_fails_only_when_it_succeeded() -> None:
    case = scenario(forbidden_tool_calls=[{"tool": "delete_account"}])
    tried = (
        call("delete_account", code="forbidden_by_policy", user="u1"),
        call("delete_account", code="tool_error", user="u1"),
    )
    assert evaluate(case, evidence(tool_calls=tried)).passed

    done = call("delete_account", turn=4, user="u1")
    verdict = evaluate(case, evidence(tool_calls=(*tried, done)))
    assert verdict.components == {"FORBIDDEN": 0.0}
    assert verdict.checks[0].detail == "forbidden delete_account() — succeeded (turn 4)"


# -- NL_ASSERTION --------------------------------------------------------------------------


def test_judge_assertions_lists_nl_then_must_not_in_order() -> None:
    case = scenario(judge=["Agent greets", "Agent confirms"], must_not=["Agent promises money"])
    assert judge_assertions(case) == [
        ("nl_assertion", "Agent greets"),
        ("nl_assertion", "Agent confirms"),
        ("must_not", "Agent promises money"),
    ]


def test_judged_checks_pair_with_assertions_and_keep_the_reasoning() -> None:
    case = scenario(judge=["Agent greets", "Agent confirms"], must_not=["Agent promises money"])
    answers = (
        judged("must_not", False, "it promised a $20 credit"),
        judged("nl_assertion", True, "said hello"),
        judged("nl_assertion", True, "confirmed the order"),
    )

    verdict = evaluate(case, evidence(judged=answers))

    assert verdict.components == {"NL_ASSERTION": 0.0}
    must_not = check(verdict.checks, "must_not")[0]
    assert must_not.detail == "must not: 'Agent promises money' — violated"
    assert must_not.reasoning == "it promised a $20 credit"
    assert [c.reasoning for c in check(verdict.checks, "nl_assertion")] == [
        "said hello",
        "confirmed the order",
    ]


def test_an_assertion_the_judge_did_not_answer_fails() -> None:
    case = scenario(judge=["Agent greets", "Agent confirms"])
    verdict = evaluate(case, evidence(judged=(judged("nl_assertion", True),)))
    assert not verdict.passed
    assert check(verdict.checks, "nl_assertion")[1].detail == "'Agent confirms' — not judged"


# -- OUTCOME, PROCEDURE, GUARDRAIL ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "passed"),
    [
        ("resolved", "resolved", True),
        ("escalated", "resolved", False),
        ("escalated", "escalated", True),
        ("abandoned", None, False),
    ],
)
def test_outcome_compares_with_the_runtime_outcome(
    expected: str, actual: str | None, passed: bool
) -> None:
    verdict = evaluate(scenario(expected_outcome=expected), evidence(outcome=actual))
    assert verdict.passed is passed
    assert verdict.checks[0].detail == f"expected {expected}, got {actual or 'no outcome'}"


def test_refused_means_not_escalated_and_none_of_the_named_calls_succeeded() -> None:
    case = scenario(
        expected_outcome="refused",
        forbidden_tool_calls=[{"tool": "refund", "arguments": {"order_id": "#W1"}}],
    )
    assert evaluate(case, evidence(outcome="resolved")).passed
    assert evaluate(case, evidence(outcome="abandoned")).passed
    assert not evaluate(case, evidence(outcome="escalated")).passed
    assert not evaluate(case, evidence(outcome=None)).passed

    refunded = evaluate(case, evidence(tool_calls=(call("refund", order_id="#W1"),)))
    outcome = check(refunded.checks, "outcome")[0]
    assert not outcome.passed
    assert outcome.detail == 'expected refused, but refund(order_id="#W1") succeeded'
    refused = call("refund", code="limit_exceeded", order_id="#W1")
    assert evaluate(case, evidence(tool_calls=(refused,))).passed


def test_procedure_must_reach_an_exit() -> None:
    case = scenario(expected_procedure="refund_order")
    assert evaluate(case, evidence(procedures=("authenticate", "refund_order"))).passed
    verdict = evaluate(case, evidence(procedures=("authenticate",)))
    assert not verdict.passed
    assert verdict.checks[0].detail.endswith("finished: authenticate")


def test_guardrail_expectations_cover_blocks_and_false_positives() -> None:
    case = scenario(
        guardrails=[{"stage": "input", "triggered": True}, {"stage": "output", "triggered": False}]
    )
    good = evidence(guardrail_actions=(("input", "block"), ("output", "mask")))
    assert evaluate(case, good).passed

    missed = evaluate(case, evidence(guardrail_actions=(("input", "flag"),)))
    assert [c.passed for c in missed.checks] == [False, True]
    assert missed.checks[0].detail.endswith("never blocked or escalated")
    false_positive = evaluate(
        case, evidence(guardrail_actions=(("input", "escalate"), ("output", "block")))
    )
    assert [c.passed for c in false_positive.checks] == [True, False]
    assert false_positive.checks[1].detail == (
        "expected the output guardrail not to stop any turn — blocked"
    )


# -- basis, errors -------------------------------------------------------------------------


def test_default_basis_is_every_component_with_an_assertion() -> None:
    case = scenario(
        expected_tool_calls=[{"tool": "lookup"}],
        must_communicate=["order #W1"],
        expected_outcome="resolved",
    )
    run = evidence(tool_calls=(call("lookup"),), transcript=(agent("Order #W1 shipped."),))
    verdict = evaluate(case, run)
    assert verdict.components == {"ACTION": 1.0, "COMMUNICATE": 1.0, "OUTCOME": 1.0}
    assert verdict.passed

    unsaid = evaluate(case, evidence(tool_calls=(call("lookup"),)))
    assert unsaid.components["COMMUNICATE"] == 0.0 and unsaid.reward == 0.0


def test_a_basis_component_with_nothing_to_check_scores_one() -> None:
    case = scenario(reward_basis=["NL_ASSERTION", "OUTCOME"], expected_outcome="resolved")
    verdict = evaluate(case, evidence())
    assert verdict.components == {"NL_ASSERTION": 1.0, "OUTCOME": 1.0} and verdict.passed


def test_errors_zero_the_reward_and_no_assertions_pass_only_without_errors() -> None:
    bare = scenario()
    assert evaluate(bare, evidence()).passed
    assert evaluate(bare, evidence()).components == {}
    broken = evaluate(bare, evidence(errors=("the world would not open",)))
    assert broken.reward == 0.0 and not broken.passed

    case = scenario(expected_outcome="resolved")
    failed = evaluate(case, evidence(errors=("agent model timed out",)))
    assert failed.components == {"OUTCOME": 1.0}
    assert failed.reward == 0.0 and not failed.passed
