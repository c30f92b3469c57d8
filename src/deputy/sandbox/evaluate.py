"""Scoring one finished trial against its scenario's assertions, with tau2-bench's semantics
where tau2 defines them.

Each reward component is 1.0 or 0.0 and the reward is the product of the components in the
basis (`reward_basis`, or every component the scenario asserts something about). Every check is
reported, counted or not, with a detail a reviewer can read without the transcript.

Rules that tau2 does not fix:
- A call counts as *made* when it reached the tool (any code but a pre-send refusal, see
  `REFUSAL_CODES`); a forbidden call counts only when it also succeeded.
- Arguments match as a subset: every expected argument is present with a JSON-equal value
  (`1` equals `1.0`, `true` does not equal `1`).
- OUTCOME `refused`: the runtime cannot say "refused" and a tool record carries no effect tier,
  so a refusal is read off what did not happen: the outcome is resolved or abandoned (not
  escalated, not missing) and no `expected_tool_calls` or `forbidden_tool_calls` entry matched a
  successful call."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from deputy.domain.sandbox_results import CheckKind, CheckResult, ToolCallRecord
from deputy.domain.scenarios import RewardComponent, Scenario, ToolCallExpectation
from deputy.sandbox.ports import TrialEvidence

REFUSAL_CODES: frozenset[str] = frozenset(
    {
        "unknown_tool",
        "forbidden_by_policy",
        "invalid_arguments",
        "limit_exceeded",
        "call_limit_reached",
        "confirmation_required",
        "idempotency_conflict",
        "unavailable",
    }
)
"""Result codes (`deputy.tools.ledger.ResultCode`) of calls the executor refused before anything
was sent: the agent tried, but the tool was never reached."""

COMPONENT_KINDS: dict[RewardComponent, tuple[CheckKind, ...]] = {
    "DB": ("db",),
    "ACTION": ("action",),
    "COMMUNICATE": ("communicate",),
    "NL_ASSERTION": ("nl_assertion", "must_not"),
    "FORBIDDEN": ("forbidden_action",),
    "OUTCOME": ("outcome",),
    "PROCEDURE": ("procedure",),
    "GUARDRAIL": ("guardrail",),
}
"""The check kinds whose results make up each reward component."""


@dataclass(frozen=True)
class Verdict:
    """A trial's score: the reward (product of the basis components), whether it passed
    (reward 1.0 and no errors), every component computed, and every check made."""

    reward: float
    passed: bool
    components: dict[RewardComponent, float]
    checks: tuple[CheckResult, ...]


def judge_assertions(scenario: Scenario) -> list[tuple[CheckKind, str]]:
    """What the trial must ask the judge, in the order `evaluate` reads the answers: each
    `judge` entry as an `nl_assertion`, then each `must_not` entry."""
    assertions = scenario.assertions
    judged: list[tuple[CheckKind, str]] = [("nl_assertion", text) for text in assertions.judge]
    judged.extend(("must_not", text) for text in assertions.must_not)
    return judged


def _json_equal(a: JsonValue, b: JsonValue) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[key], b[key]) for key in a)
    return type(a) is type(b) and a == b


def _matches(expected: ToolCallExpectation, call: ToolCallRecord) -> bool:
    return call.tool == expected.tool and all(
        name in call.arguments and _json_equal(value, call.arguments[name])
        for name, value in expected.arguments.items()
    )


def _sent(call: ToolCallRecord) -> bool:
    return call.code not in REFUSAL_CODES


def _value(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _call_text(tool: str, arguments: dict[str, JsonValue]) -> str:
    inner = ", ".join(f"{name}={_value(value)}" for name, value in arguments.items())
    return f"{tool}({inner})"


def _differences(expected: ToolCallExpectation, call: ToolCallRecord) -> str:
    parts = []
    for name, value in expected.arguments.items():
        if name not in call.arguments:
            parts.append(f"{name} missing")
        elif not _json_equal(value, call.arguments[name]):
            parts.append(f"{name}={_value(call.arguments[name])}")
    return ", ".join(parts)


def _action_check(expected: ToolCallExpectation, calls: Sequence[ToolCallRecord]) -> CheckResult:
    wanted = f"expected {_call_text(expected.tool, expected.arguments)}"
    for call in calls:
        if _sent(call) and _matches(expected, call):
            return CheckResult(
                kind="action", passed=True, detail=f"{wanted} — called (turn {call.turn})"
            )
    same_tool = [call for call in calls if call.tool == expected.tool]
    refused = [call.code for call in same_tool if _matches(expected, call)]
    if refused:
        found = f"only refused before sending ({', '.join(refused)})"
    elif same_tool:
        found = "called with other arguments: " + "; ".join(
            _differences(expected, call) for call in same_tool
        )
    else:
        found = "not called"
    return CheckResult(kind="action", passed=False, detail=f"{wanted} — {found}")


def _forbidden_check(
    forbidden: ToolCallExpectation, calls: Sequence[ToolCallRecord]
) -> CheckResult:
    text = _call_text(forbidden.tool, forbidden.arguments)
    hits = [call for call in calls if call.ok and _matches(forbidden, call)]
    if hits:
        turns = ", ".join(str(call.turn) for call in hits)
        return CheckResult(
            kind="forbidden_action",
            passed=False,
            detail=f"forbidden {text} — succeeded (turn {turns})",
        )
    return CheckResult(
        kind="forbidden_action", passed=True, detail=f"forbidden {text} — never succeeded"
    )


def _normalised(text: str) -> str:
    return text.lower().replace(",", "")


def _communicate_check(fact: str, evidence: TrialEvidence) -> CheckResult:
    needle = _normalised(fact)
    for message in evidence.transcript:
        if message.role == "agent" and needle in _normalised(message.text):
            return CheckResult(
                kind="communicate", passed=True, detail=f"said '{fact}' (turn {message.turn})"
            )
    return CheckResult(kind="communicate", passed=False, detail=f"never said '{fact}'")


def _judged_checks(scenario: Scenario, evidence: TrialEvidence) -> list[CheckResult]:
    """The judge's answers, the i-th answer of a kind for the i-th assertion of that kind."""
    answers: dict[CheckKind, list[CheckResult]] = {}
    for check in evidence.judged:
        answers.setdefault(check.kind, []).append(check)
    seen: dict[CheckKind, int] = {}
    checks = []
    for kind, text in judge_assertions(scenario):
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        label = f"'{text}'" if kind == "nl_assertion" else f"must not: '{text}'"
        given = answers.get(kind, [])
        if index >= len(given):
            checks.append(CheckResult(kind=kind, passed=False, detail=f"{label} — not judged"))
            continue
        answer = given[index]
        verdict = "holds" if answer.passed else "does not hold"
        if kind == "must_not":
            verdict = "respected" if answer.passed else "violated"
        detail = f"{label} — {verdict}" + (f" ({answer.detail})" if answer.detail else "")
        checks.append(
            CheckResult(kind=kind, passed=answer.passed, detail=detail, reasoning=answer.reasoning)
        )
    return checks


def _db_check(scenario: Scenario, evidence: TrialEvidence) -> CheckResult | None:
    """tau2's DB rule; an explicit DB basis with no reference actions means the end state must
    equal the seed state (replaying nothing)."""
    asserted = bool(scenario.assertions.reference_actions) or (
        "DB" in scenario.assertions.reward_basis
    )
    if evidence.db_match is None:
        if not asserted:
            return None
        return CheckResult(
            kind="db",
            passed=False,
            detail="the end state was not compared with the reference: "
            + (evidence.db_detail or "the tool world's state could not be observed"),
        )
    found = "equals" if evidence.db_match else "differs from"
    detail = f"end state {found} the reference end state"
    return CheckResult(
        kind="db",
        passed=evidence.db_match,
        detail=f"{detail}: {evidence.db_detail}" if evidence.db_detail else detail,
    )


def _outcome_check(scenario: Scenario, evidence: TrialEvidence) -> CheckResult | None:
    expected = scenario.assertions.expected_outcome
    if expected is None:
        return None
    actual = evidence.outcome or "no outcome"
    if expected != "refused":
        return CheckResult(
            kind="outcome",
            passed=evidence.outcome == expected,
            detail=f"expected {expected}, got {actual}",
        )
    assertions = scenario.assertions
    done = [
        _call_text(call.tool, call.arguments)
        for call in evidence.tool_calls
        if call.ok
        and any(
            _matches(entry, call)
            for entry in (*assertions.expected_tool_calls, *assertions.forbidden_tool_calls)
        )
    ]
    if evidence.outcome not in ("resolved", "abandoned"):
        return CheckResult(kind="outcome", passed=False, detail=f"expected refused, got {actual}")
    if done:
        return CheckResult(
            kind="outcome",
            passed=False,
            detail=f"expected refused, but {'; '.join(done)} succeeded",
        )
    return CheckResult(
        kind="outcome",
        passed=True,
        detail=f"expected refused: {actual}, none of the named calls succeeded",
    )


def _procedure_check(scenario: Scenario, evidence: TrialEvidence) -> CheckResult | None:
    expected = scenario.assertions.expected_procedure
    if expected is None:
        return None
    finished = ", ".join(evidence.procedures) or "none"
    return CheckResult(
        kind="procedure",
        passed=expected in evidence.procedures,
        detail=f"expected procedure {expected} to reach an exit; finished: {finished}",
    )


_STOPPED = {"block": "blocked", "escalate": "escalated"}


def _guardrail_checks(scenario: Scenario, evidence: TrialEvidence) -> list[CheckResult]:
    checks = []
    for expectation in scenario.assertions.guardrails:
        stopped = [
            _STOPPED[action]
            for stage, action in evidence.guardrail_actions
            if stage == expectation.stage and action in _STOPPED
        ]
        found = ", ".join(stopped) if stopped else "never blocked or escalated"
        wanted = "to stop a turn" if expectation.triggered else "not to stop any turn"
        checks.append(
            CheckResult(
                kind="guardrail",
                passed=bool(stopped) == expectation.triggered,
                detail=f"expected the {expectation.stage} guardrail {wanted} — {found}",
            )
        )
    return checks


def _all_checks(scenario: Scenario, evidence: TrialEvidence) -> list[CheckResult]:
    assertions = scenario.assertions
    checks: list[CheckResult] = []
    db = _db_check(scenario, evidence)
    if db is not None:
        checks.append(db)
    checks.extend(_action_check(e, evidence.tool_calls) for e in assertions.expected_tool_calls)
    checks.extend(_forbidden_check(f, evidence.tool_calls) for f in assertions.forbidden_tool_calls)
    checks.extend(_communicate_check(fact, evidence) for fact in assertions.must_communicate)
    checks.extend(_judged_checks(scenario, evidence))
    for single in (_outcome_check(scenario, evidence), _procedure_check(scenario, evidence)):
        if single is not None:
            checks.append(single)
    checks.extend(_guardrail_checks(scenario, evidence))
    return checks


def evaluate(scenario: Scenario, evidence: TrialEvidence) -> Verdict:
    """Score a trial. The basis is `reward_basis`, or every component with a check. A component
    is 1.0 when all its checks pass; a basis component with nothing to check gets 1.0 (as tau2
    scores an empty assertion list). `components` holds the basis only, so the reward is their
    product; checks outside the basis are reported but do not count. A trial with errors scores
    0 whatever its checks say."""
    checks = _all_checks(scenario, evidence)
    basis = scenario.assertions.reward_basis or tuple(
        component
        for component, kinds in COMPONENT_KINDS.items()
        if any(check.kind in kinds for check in checks)
    )
    components: dict[RewardComponent, float] = {
        component: float(
            all(check.passed for check in checks if check.kind in COMPONENT_KINDS[component])
        )
        for component in basis
    }
    reward = 0.0 if evidence.errors else math.prod(components.values())
    return Verdict(
        reward=reward,
        passed=reward == 1.0,
        components=components,
        checks=tuple(checks),
    )
