"""The scenario suite the builder writes: per procedure a happy path and the edge cases its
structure implies (a failing check, a declined confirmation, a handoff, a limit exceeded),
customers who are not excessively cooperative, mined edge cases and replays of real
conversations; stable ids, and which scenarios a change affects."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from deputy.builder.mine import IntentCluster
from deputy.builder.mine_edges import EdgeCase
from deputy.builder.scenarios import affected_scenarios, scenario_suite
from deputy.builder.scenarios_brief import customer_knows
from deputy.builder.sources import MaterialRef, Transcript, Turn
from deputy.domain.scenarios import Scenario, ScenarioSuite, ToolCallExpectation
from deputy.domain.spec import AgentSpec, Procedure
from deputy.testing.specs import agent_specs

BINDING = {"kind": "http", "url": "https://shop.example/api"}


def refund_spec(**changes: Any) -> AgentSpec:
    refund: dict[str, Any] = {
        "id": "refund_order",
        "title": "Refund an order",
        "when": "The customer wants their money back for a delivered order.",
        "slots": [
            {"id": "order_id", "pattern": r"^#W\d{7}$", "description": "the order number"},
            {"id": "email", "type": "email"},
            {"id": "amount", "type": "number"},
            {"id": "reason", "type": "enum", "values": ["damaged", "late"]},
        ],
        "steps": [
            {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Your order id?"},
            {"id": "ask_email", "kind": "ask", "slot": "email", "text": "Your email?"},
            {"id": "ask_amount", "kind": "ask", "slot": "amount", "text": "How much?"},
            {
                "id": "lookup",
                "kind": "call_tool",
                "tool": "get_order",
                "arguments": {"order_id": "{order_id}"},
                "save_as": "order",
            },
            {
                "id": "recent",
                "kind": "check",
                "condition": "Was the order delivered less than 30 days ago?",
                "then": "big",
                "otherwise": "too_old",
            },
            {
                "id": "big",
                "kind": "check",
                "condition": "Is the amount over $500?",
                "then": "to_human",
                "otherwise": "confirm",
            },
            {"id": "to_human", "kind": "handoff", "queue": "refunds"},
            {
                "id": "confirm",
                "kind": "confirm",
                "text": "Shall I refund {amount} for {order_id}?",
                "on_decline": "kept",
            },
            {
                "id": "refund",
                "kind": "call_tool",
                "tool": "refund_order",
                "arguments": {"order_id": "{order_id}", "amount": "{amount}", "method": "card"},
            },
            {
                "id": "done",
                "kind": "end",
                "exit": "refunded",
                "text": "Your refund of {amount} for {order_id} arrives in 5 to 7 business days.",
            },
            {"id": "kept", "kind": "end", "exit": "declined", "text": "Nothing was changed."},
            {
                "id": "too_old",
                "kind": "end",
                "exit": "not_eligible",
                "text": "Orders older than 30 days cannot be refunded.",
            },
        ],
        "exits": [
            {"id": "refunded", "outcome": "resolved"},
            {"id": "declined", "outcome": "resolved"},
            {"id": "not_eligible", "outcome": "resolved"},
        ],
    }
    status: dict[str, Any] = {
        "id": "order_status",
        "title": "Order status",
        "when": "The customer asks where their order is.",
        "slots": [{"id": "order_id", "pattern": r"^#W\d{7}$"}],
        "steps": [
            {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Your order id?"},
            {"id": "lookup", "kind": "call_tool", "tool": "get_order", "save_as": "order"},
            {"id": "tell", "kind": "end", "exit": "told", "text": "It is {order.status}."},
        ],
        "exits": [{"id": "told", "outcome": "resolved"}],
    }
    data: dict[str, Any] = {
        "name": "Shop support",
        "goal": "Help customers of an online shop with refunds and order status.",
        "procedures": [refund, status],
        "tools": [
            {"name": "get_order", "effect": "read", "binding": BINDING},
            {"name": "refund_order", "effect": "irreversible", "binding": BINDING},
        ],
        "policies": [
            {
                "id": "refund_cap",
                "text": "Refunds over $200 need a manager's approval.",
                "limits": [{"tool": "refund_order", "argument": "amount", "max": 200}],
            }
        ],
    }
    data.update(changes)
    return AgentSpec.model_validate(data)


def by_id(suite: ScenarioSuite) -> dict[str, Scenario]:
    return {scenario.id: scenario for scenario in suite.scenarios}


def test_the_happy_path_knows_slot_values_and_expects_the_irreversible_call() -> None:
    happy = by_id(scenario_suite(refund_spec()))["refund_order_happy_path"]
    assert happy.kind == "happy_path" and happy.procedure == "refund_order"
    knows = happy.customer.knows
    assert re.fullmatch(r"#W\d{7}", knows["order_id"])
    assert re.fullmatch(r"[a-z.]+@example\.com", knows["email"])
    assert knows["reason"] == "damaged" and float(knows["amount"]) > 0
    assert happy.customer.goal.startswith("You want your money back for a delivered order.")
    assertions = happy.assertions
    assert assertions.expected_tool_calls == (
        ToolCallExpectation(tool="refund_order", arguments={"method": "card"}),
    )  # the read lookup is not expected; only the argument the spec fixes is
    assert assertions.expected_outcome == "resolved"
    assert assertions.expected_procedure == "refund_order"
    (fact,) = assertions.must_communicate
    assert knows["order_id"] in fact and "5 to 7 business days" in fact


def test_slot_values_come_from_pattern_type_description_or_question() -> None:
    procedure = Procedure.model_validate(
        {
            "id": "book",
            "title": "Book",
            "when": "The customer wants a booking.",
            "slots": [
                {"id": "request_type", "description": "Request Type (one of: Check, Book)"},
                {"id": "go_ahead"},
                {"id": "flavour"},
                {"id": "phone", "type": "phone"},
                {"id": "party", "type": "integer"},
            ],
            "steps": [
                {"id": "a", "kind": "ask", "slot": "go_ahead", "text": "Should I book it?"},
                {"id": "b", "kind": "ask", "slot": "flavour", "text": "Which flavour?"},
                {"id": "done", "kind": "end", "exit": "ok"},
            ],
            "exits": [{"id": "ok", "outcome": "resolved"}],
        }
    )
    knows = customer_knows(procedure)
    assert knows["request_type"] == "Check" and knows["go_ahead"] == "yes"
    assert "flavour" not in knows  # nothing says what one looks like: not made up here
    assert re.fullmatch(r"\+1 555 01\d\d \d{3}", knows["phone"])
    assert 1 <= int(knows["party"]) <= 5
    assert customer_knows(procedure) == knows


def test_each_check_confirm_handoff_and_limit_gives_an_edge_case() -> None:
    scenarios = by_id(scenario_suite(refund_spec()))
    refund_call = ToolCallExpectation(tool="refund_order", arguments={"method": "card"})
    too_old = scenarios["refund_order_recent_fails"]
    assert "less than 30 days" in too_old.customer.goal and "is no" in too_old.customer.goal
    assert too_old.assertions.forbidden_tool_calls == (refund_call,)
    assert too_old.assertions.expected_outcome == "refused"
    not_big = scenarios["refund_order_big_fails"]  # not over $500: the refund goes ahead
    assert not_big.assertions.forbidden_tool_calls == ()
    assert not_big.assertions.expected_outcome == "resolved"
    declined = scenarios["refund_order_confirm_declined"]
    assert declined.assertions.forbidden_tool_calls == (refund_call,)
    assert "say no" in declined.customer.goal
    handoff = scenarios["refund_order_to_human_handoff"]
    assert handoff.assertions.expected_outcome == "escalated"
    assert handoff.assertions.forbidden_tool_calls == (refund_call,)
    assert '"Is the amount over $500?" is yes' in handoff.customer.goal
    limit = scenarios["refund_order_limit_refund_order_amount_above"]
    assert limit.assertions.forbidden_tool_calls == (
        ToolCallExpectation(tool="refund_order", arguments={"amount": 300}),
    )
    assert limit.assertions.expected_outcome == "escalated"  # the policy names a manager
    assert "300" in limit.customer.goal
    status_ids = [s.id for s in scenario_suite(refund_spec()).for_procedures({"order_status"})]
    assert "order_status_happy_path" in status_ids
    assert not any("limit" in i or "fails" in i for i in status_ids)


def test_the_suite_has_customers_who_are_not_excessively_cooperative() -> None:
    suite = scenario_suite(refund_spec())
    cooperation = {s.customer.cooperation: s for s in suite.scenarios}
    assert {"impatient", "confused", "adversarial", "off_policy"} <= set(cooperation)
    adversarial = cooperation["adversarial"]
    assert adversarial.kind == "adversarial" and adversarial.procedure == "refund_order"
    assert any(
        "refund_order" in rule and "confirm" in rule for rule in adversarial.assertions.must_not
    )
    assert any("another customer" in rule for rule in adversarial.assertions.must_not)
    off = cooperation["off_policy"]
    assert off.procedure is None and off.assertions.expected_outcome == "refused"
    assert off.assertions.forbidden_tool_calls == (ToolCallExpectation(tool="refund_order"),)
    escalating = refund_spec(
        escalation={"rules": [{"id": "other", "when": "The request is out of scope."}]}
    )
    off_escalated = by_id(scenario_suite(escalating))["persona_off_policy"]
    assert off_escalated.assertions.expected_outcome == "escalated"


def test_mined_edge_cases_and_replays_link_to_their_transcripts() -> None:
    ref = MaterialRef("mat_chats", "chats.json", "application/json")
    chat = Transcript(
        ref,
        "c7",
        (
            Turn(1, "customer", "I want a refund for #W1234567, it came broken"),
            Turn(2, "agent", "Unfortunately we cannot refund orders older than 30 days."),
            Turn(3, "customer", "That is unfair, get me a manager"),
            Turn(4, "agent", "I am transferring you to a supervisor."),
        ),
    )
    intent = IntentCluster(
        title="Refund an order",  # learned procedures carry their intent's title
        transcripts=("c7",),
        openings=(chat.anchor(1),),
        procedure=None,
    )
    refusal = EdgeCase("refusal", chat.turns[1].text, chat.anchor(2), None)
    escalation = EdgeCase("escalation", chat.turns[3].text, chat.anchor(4), None)
    suite = scenario_suite(
        refund_spec(), edge_cases=(refusal, escalation), intents=(intent,), transcripts=(chat,)
    )
    scenarios = by_id(suite)
    seen = scenarios["refund_order_seen_refusal_1"]
    assert seen.procedure == "refund_order" and seen.assertions.expected_outcome == "refused"
    assert seen.source is not None and seen.source.kind == "transcript"
    assert seen.source.source == "mat_chats" and seen.source.span == "conversation c7, turn 2"
    assert seen.customer.opening == chat.turns[0].text
    assert scenarios["refund_order_seen_escalation_1"].assertions.expected_outcome == "escalated"
    replay = scenarios["regression_refund_an_order"]
    assert replay.kind == "regression" and replay.procedure == "refund_order"
    assert replay.script == (chat.turns[0].text, chat.turns[2].text)
    assert replay.source is not None and replay.source.span == "conversation c7, turns 1-4"


def test_ids_are_stable_unique_and_snake_case() -> None:
    first, second = scenario_suite(refund_spec()), scenario_suite(refund_spec())
    assert first == second
    ids = [s.id for s in first.scenarios]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,63}", i) for i in ids)
    ScenarioSuite.model_validate_json(first.model_dump_json())  # valid on a round trip


def test_affected_scenarios_are_those_of_the_changed_procedure_and_changed_content() -> None:
    before = scenario_suite(refund_spec())
    spec = refund_spec()
    status = spec.procedures[1].model_copy(update={"when": "The customer asks about delivery."})
    after = scenario_suite(spec.model_copy(update={"procedures": (spec.procedures[0], status)}))
    affected = affected_scenarios(before, after, {"order_status"})
    assert "order_status_happy_path" in affected
    assert "persona_confused" in affected  # it exercises order_status
    assert not any(i.startswith("refund_order") for i in affected)
    assert affected_scenarios(before, before, set()) == ()
    escalating = scenario_suite(
        refund_spec(escalation={"rules": [{"id": "other", "when": "Anything out of scope."}]})
    )  # no procedure changed, but what the off-policy customer must get did
    assert affected_scenarios(before, escalating, set()) == ("persona_off_policy",)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_specs())
def test_any_valid_spec_gets_a_valid_suite(spec: AgentSpec) -> None:
    suite = scenario_suite(spec)
    ids = [s.id for s in suite.scenarios]
    assert len(ids) == len(set(ids))
    happy = {s.procedure for s in suite.scenarios if s.kind == "happy_path"}
    assert happy == {p.id for p in spec.procedures}
    cooperation = {s.customer.cooperation for s in suite.scenarios}
    assert {"adversarial", "off_policy"} <= cooperation
    assert suite == scenario_suite(spec)
