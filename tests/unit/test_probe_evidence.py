"""The pure parts of probes: which scenarios a probe can check, ledger rows and entries read as
the sandbox's evidence, the verdict (the reward basis decides what counts, the latency limit is
one more check) and the request models' defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from deputy.domain import probes as p
from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import Scenario
from deputy.sandbox.ports import TrialEvidence
from deputy.services.probe_evidence import (
    guardrail_actions,
    latency_check,
    ledger_calls,
    step_turn,
    verdict,
)
from deputy.services.probes import scenario_problems
from deputy.store import tables as t

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def scenario(script: tuple[str, ...] = ("hi",), **assertions: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "probe",
            "title": "probe",
            "customer": p.SYNTHETIC_CUSTOMER,
            "script": list(script),
            "assertions": assertions,
        }
    )


def call_row(tool: str, status: str, step_key: str, code: str | None = None, **args: Any) -> Any:
    return t.ToolCallRow(
        id=f"tcall_{tool}_{step_key}",
        workspace_id="ws_1",
        agent_id="agt_1",
        conversation_id="cnv_1",
        step_key=step_key,
        tool=tool,
        arguments=args,
        arguments_sha256="0" * 64,
        status=status,
        code=code,
        request={},
        response={},
        output={"stored": True} if status == "succeeded" else None,
        started_at=NOW,
    )


def turn(number: int, latency_ms: int | None) -> p.ProbeTurn:
    status: p.TurnStatus = "answered" if latency_ms is not None else "timed_out"
    return p.ProbeTurn(number=number, message="hi", status=status, latency_ms=latency_ms)


def evidence(*agent_lines: str, calls: tuple[Any, ...] = (), outcome: str = "resolved") -> Any:
    lines = [TranscriptMessage(role="customer", turn=1, text="hi")]
    lines += [TranscriptMessage(role="agent", turn=1, text=line) for line in agent_lines]
    return TrialEvidence(
        transcript=tuple(lines),
        tool_calls=ledger_calls(calls),
        outcome=outcome,
        procedures=(),
    )


def test_only_scenarios_production_can_be_checked_against_are_probes() -> None:
    assert scenario_problems(scenario(must_communicate=["9am"])) == []
    problems = scenario_problems(scenario(script=()))
    assert len(problems) == 1 and "scripted customer" in problems[0]
    world = scenario(reference_actions=[{"tool": "refund", "arguments": {"id": 1}}])
    assert "reference_actions" in scenario_problems(world)[0]
    assert "DB reward" in scenario_problems(scenario(reward_basis=["DB"]))[0]
    assert "empty" in scenario_problems(scenario(script=("hi", "  ")))[0]
    many = scenario(script=tuple(f"m{i}" for i in range(p.MAX_SCRIPT_MESSAGES + 1)))
    assert any("at most" in problem for problem in scenario_problems(many))
    long = scenario(script=("x" * (p.MAX_MESSAGE_CHARS + 1),))
    assert "longer than" in scenario_problems(long)[0]


def test_ledger_rows_become_the_sandbox_records_with_their_turns() -> None:
    rows = (
        call_row("note", "succeeded", "turn-2/tool/1", fact="likes blue"),
        call_row("refund", "refused", "turn-3/tool/1", code="confirmation_required", amount=5),
        call_row("lookup", "failed", "replay", code="tool_error"),
    )
    records = ledger_calls(rows)
    assert [(r.tool, r.ok, r.code, r.turn) for r in records] == [
        ("note", True, "ok", 2),
        ("refund", False, "confirmation_required", 3),
        ("lookup", False, "tool_error", 0),
    ]
    assert records[0].arguments == {"fact": "likes blue"}
    assert (step_turn("turn-12/x"), step_turn("turn-/x"), step_turn("")) == (12, 0, 0)


def test_guardrail_entries_give_stage_and_action() -> None:
    entries = [
        t.ConversationEntry(kind="guardrail", data={"stage": "input", "action": "block"}),
        t.ConversationEntry(kind="guardrail", data={"stage": "output", "action": "allow"}),
        t.ConversationEntry(kind="guardrail", data={"stage": "elsewhere", "action": "block"}),
        t.ConversationEntry(kind="agent_message", data={"stage": "input", "action": "block"}),
    ]
    assert guardrail_actions(entries) == (("input", "block"), ("output", "allow"))


def test_the_verdict_counts_the_basis_and_says_why() -> None:
    wanted = scenario(must_communicate=["9am to 5pm"], expected_outcome="resolved")
    good = verdict(wanted, evidence("We are open 9AM to 5PM."), [turn(1, 40)], None)
    assert good.passed and good.reason == ""
    assert [(c.kind, c.passed) for c in good.checks] == [("communicate", True), ("outcome", True)]

    bad = verdict(wanted, evidence("Ask later.", outcome="escalated"), [turn(1, 40)], None)
    assert not bad.passed
    assert bad.reason == "never said '9am to 5pm'; expected resolved, got escalated"

    only_facts = scenario(
        must_communicate=["9am to 5pm"], expected_outcome="resolved", reward_basis=["COMMUNICATE"]
    )
    outside = verdict(only_facts, evidence("9am to 5pm", outcome="escalated"), [turn(1, 5)], None)
    assert outside.passed  # the failed outcome is reported, outside the basis
    assert [(c.kind, c.passed) for c in outside.checks] == [
        ("communicate", True),
        ("outcome", False),
    ]


def test_forbidden_calls_count_only_when_they_succeeded() -> None:
    rules = scenario(forbidden_tool_calls=[{"tool": "refund"}])
    refused = call_row("refund", "refused", "turn-1/t", code="confirmation_required")
    assert verdict(rules, evidence("no", calls=(refused,)), [turn(1, 5)], None).passed
    done = call_row("refund", "succeeded", "turn-1/t")
    failed = verdict(rules, evidence("done", calls=(done,)), [turn(1, 5)], None)
    assert failed.reason == "forbidden refund() — succeeded (turn 1)"


def test_a_slow_reply_fails_the_latency_limit() -> None:
    slow = latency_check(500, [turn(1, 120), turn(2, 900)])
    assert (slow.passed, slow.detail) == (False, "slowest reply 900 ms (turn 2), limit 500 ms")
    assert latency_check(900, [turn(1, 900)]).passed
    assert not latency_check(900, [turn(1, None)]).passed
    limited = verdict(scenario(), evidence("hello"), [turn(1, 120), turn(2, 900)], 500)
    assert not limited.passed and limited.reason == slow.detail
    assert verdict(scenario(), evidence("hello"), [turn(1, 120)], None).passed  # no assertion


def test_a_probe_request_fills_what_only_a_simulation_needs() -> None:
    body = p.ProbeCreate.model_validate(
        {"agent_id": "agt_1", "name": "hours", "scenario": {"script": ["When?"]}}
    )
    assert (body.scenario.id, body.scenario.title) == ("probe", "hours")
    assert body.scenario.customer.persona == p.SYNTHETIC_CUSTOMER["persona"]
    assert (body.channel, body.interval_seconds, body.enabled) == ("api", 300, True)
    given = p.ProbeCreate.model_validate(
        {
            "agent_id": "agt_1",
            "name": "hours",
            "scenario": {"id": "mine", "title": "Mine", "script": ["x"],
                         "customer": {"persona": "Ann", "goal": "Know the hours"}},
        }
    )  # fmt: skip
    assert (given.scenario.id, given.scenario.customer.persona) == ("mine", "Ann")
    for wrong in ({"name": " padded "}, {"interval_seconds": 0}, {"turn_timeout_seconds": 0}):
        with pytest.raises(ValidationError):
            p.ProbeCreate.model_validate(
                {"agent_id": "agt_1", "name": "n", "scenario": {"script": ["x"]}, **wrong}
            )
    change = p.ProbeUpdate.model_validate({"judge_model": None})
    assert change.model_fields_set == {"judge_model"}


def test_the_readme_probe_scenario_is_one() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n# hours.yaml", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    body = p.ProbeCreate.model_validate(
        {"agent_id": "agt_1", "name": "hours", "scenario": yaml.safe_load(block)}
    )
    assert scenario_problems(body.scenario) == []
    assert body.scenario.assertions.forbidden_tool_calls[0].tool == "issue_refund"
