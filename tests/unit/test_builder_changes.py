"""The builder conversation: change requests edit the draft, show a diff, and name the scenarios
to run again; with a scripted model and with rules alone."""

from __future__ import annotations

import asyncio
from typing import Any

from deputy.builder.changes import apply_change
from deputy.builder.scenarios import scenario_suite
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.testing.models import ScriptedModel, structured


def _spec() -> AgentSpec:
    data: dict[str, Any] = {
        "name": "Shop support",
        "goal": "Help customers with refunds and order status.",
        "tools": [
            {
                "name": "get_order",
                "effect": "read",
                "binding": {"kind": "http", "url": "https://shop.example/orders"},
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
            {
                "name": "refund_order",
                "effect": "irreversible",
                "binding": {"kind": "http", "url": "https://shop.example/refunds"},
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
                    "required": ["order_id", "amount"],
                },
            },
        ],
        "procedures": [
            {
                "id": "refund",
                "title": "Refund an order",
                "when": "The customer wants a refund for an order.",
                "slots": [{"id": "order_id"}, {"id": "amount", "type": "number"}],
                "steps": [
                    {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Order id?"},
                    {"id": "ask_amount", "kind": "ask", "slot": "amount", "text": "How much?"},
                    {"id": "confirm", "kind": "confirm", "text": "Refund?", "on_decline": "stop"},
                    {
                        "id": "refund",
                        "kind": "call_tool",
                        "tool": "refund_order",
                        "arguments": {"order_id": "{order_id}", "amount": "{amount}"},
                    },
                    {"id": "done", "kind": "end", "exit": "refunded", "text": "Refunded."},
                    {"id": "stop", "kind": "end", "exit": "declined", "text": "Okay."},
                ],
                "exits": [
                    {"id": "refunded", "outcome": "resolved"},
                    {"id": "declined", "outcome": "resolved"},
                ],
            },
            {
                "id": "order_status",
                "title": "Order status",
                "when": "The customer asks where an order is.",
                "slots": [{"id": "order_id"}],
                "steps": [
                    {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Order id?"},
                    {
                        "id": "look_up",
                        "kind": "call_tool",
                        "tool": "get_order",
                        "arguments": {"order_id": "{order_id}"},
                    },
                    {"id": "done", "kind": "end", "exit": "answered", "text": "Here it is."},
                ],
                "exits": [{"id": "answered", "outcome": "resolved"}],
            },
        ],
    }
    return AgentSpec.model_validate(data)


def _suite(spec: AgentSpec) -> ScenarioSuite:
    return scenario_suite(spec, name="shop")


def test_scripted_model_adds_a_limit_and_an_escalation_rule() -> None:
    spec = _spec()
    suite = _suite(spec)
    model = ScriptedModel(
        [
            structured(
                {
                    "operations": [
                        {
                            "op": "add_limit",
                            "tool": "refund_order",
                            "argument": "amount",
                            "max": 100,
                        },
                        {
                            "op": "add_escalation_rule",
                            "text": "The customer wants a refund over $100.",
                            "queue": "managers",
                        },
                    ]
                }
            )
        ]
    )
    result = asyncio.run(
        apply_change(spec, suite, "Refunds over $100 need a manager.", model=model)
    )
    model.assert_all_used()
    limits = [limit for policy in result.spec.policies for limit in policy.limits]
    assert [(lim.tool, lim.argument, lim.max) for lim in limits] == [
        ("refund_order", "amount", 100)
    ]
    limit_policy = next(p for p in result.spec.policies if p.limits)
    assert limit_policy.applies_to == ("refund",)
    assert [r.queue for r in result.spec.escalation.rules] == ["managers"]
    paths = {change.path.split(".")[0].split("[")[0] for change in result.diff.changes}
    assert {"policies", "escalation"} <= paths
    assert len(result.applied) == 2
    # the escalation rule touches every procedure; the refund scenarios are among them
    refund_ids = {s.id for s in suite.scenarios if s.procedure == "refund"}
    assert refund_ids <= set(result.affected_scenarios)
    assert result.spec.procedures == spec.procedures


def test_an_operation_that_does_not_fit_the_spec_changes_nothing() -> None:
    spec = _spec()
    model = ScriptedModel(
        [
            structured(
                {
                    "operations": [
                        {"op": "add_limit", "tool": "wire_money", "argument": "x", "max": 1}
                    ]
                }
            )
        ]
    )
    result = asyncio.run(apply_change(spec, _suite(spec), "Cap wire transfers at $1.", model=model))
    assert result.spec == spec
    assert result.diff.empty
    assert result.applied == ()
    assert any("wire_money" in q.text for q in result.questions)


def test_a_limit_on_an_argument_the_tool_lacks_is_refused() -> None:
    spec = _spec()
    model = ScriptedModel(
        [
            structured(
                {
                    "operations": [
                        {"op": "add_limit", "tool": "get_order", "argument": "amount", "max": 5}
                    ]
                }
            )
        ]
    )
    result = asyncio.run(apply_change(spec, _suite(spec), "Limit lookups.", model=model))
    assert result.diff.empty
    assert any("no argument 'amount'" in q.text for q in result.questions)


def test_also_handle_adds_a_procedure_with_fresh_scenarios() -> None:
    spec = _spec()
    suite = _suite(spec)
    result = asyncio.run(apply_change(spec, suite, "Also handle warranty claims.", model=None))
    added = [p for p in result.spec.procedures if p.id not in {"refund", "order_status"}]
    assert len(added) == 1
    assert "warranty" in added[0].id
    assert added[0].steps[-1].kind == "handoff"
    assert added[0].provenance is not None and added[0].provenance.kind == "manual"
    assert any(q.kind == "gap" and "warranty" in q.text.lower() for q in result.questions)
    new_scenarios = {s.id for s in result.scenarios.scenarios if s.procedure == added[0].id}
    assert new_scenarios and new_scenarios <= set(result.affected_scenarios)
    # scenarios of untouched procedures are kept as they were
    untouched = [s for s in suite.scenarios if s.procedure == "order_status"]
    assert all(s in result.scenarios.scenarios for s in untouched)
    assert not any(change.path.startswith("procedures[refund]") for change in result.diff.changes)


def test_stop_handling_removes_a_procedure_and_its_scenarios() -> None:
    spec = _spec()
    suite = _suite(spec)
    result = asyncio.run(apply_change(spec, suite, "Stop handling order status.", model=None))
    assert [p.id for p in result.spec.procedures] == ["refund"]
    assert not any(s.procedure == "order_status" for s in result.scenarios.scenarios)
    assert result.applied and "order_status" in result.applied[0]


def test_rules_read_a_limit_sentence_without_a_model() -> None:
    spec = _spec()
    result = asyncio.run(
        apply_change(spec, _suite(spec), "Refunds over $100 need a manager.", model=None)
    )
    assert not result.diff.empty, result.questions
    limits = [limit for policy in result.spec.policies for limit in policy.limits]
    assert [(lim.tool, lim.argument, lim.max) for lim in limits] == [
        ("refund_order", "amount", 100)
    ]
    assert len(result.spec.escalation.rules) == 1
    assert "100" in result.spec.escalation.rules[0].when


def test_an_amount_no_tool_takes_is_added_as_a_rule_with_a_question() -> None:
    spec = _spec()
    without_amount = tuple(
        tool.model_copy(update={"parameters": {"type": "object", "properties": {}}})
        for tool in spec.tools
    )
    spec = spec.model_copy(update={"tools": without_amount})
    result = asyncio.run(
        apply_change(spec, _suite(spec), "Refunds over $100 need a manager.", model=None)
    )
    assert not any(policy.limits for policy in result.spec.policies)
    assert result.applied
    assert any(q.kind == "gap" and "cannot enforce" in q.text for q in result.questions)


def test_an_enforced_amount_raises_no_question() -> None:
    spec = _spec()
    result = asyncio.run(
        apply_change(spec, _suite(spec), "Refunds over $100 need a manager.", model=None)
    )
    assert any(policy.limits for policy in result.spec.policies)
    assert not any("cannot enforce" in q.text for q in result.questions)


def test_a_request_nobody_can_read_leaves_the_spec_and_asks() -> None:
    spec = _spec()
    result = asyncio.run(apply_change(spec, _suite(spec), "Hmm.", model=None))
    assert result.spec == spec
    assert result.diff.empty
    assert result.questions
