"""The oracle proves the harness: an agent driven by the reference actions, through the real
runtime, executor and the simulated retail backend, leaves exactly the end state the reference
replay gives (and another one when it skips a write); the reference replay itself agrees with
tau2's own ground truth on every retail train task."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from examples.retail.sandbox import world_factory
from examples.retail.store import RETAIL_DATA, sha256_of
from pydantic import JsonValue

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import Scenario, ToolCallExpectation
from deputy.domain.spec import AgentSpec, lint_errors, lint_spec
from deputy.guardrails import resolve_guardrails
from deputy.llm.types import Message, ModelRequest, ToolCall, ToolDefinition
from deputy.runtime.context import ConversationRef, TurnInput
from deputy.runtime.journal import INBOUND_KEY, Entry, MemoryJournal
from deputy.runtime.reasoning import FALLBACK_REPLY
from deputy.runtime.state import AgentState
from deputy.runtime.turn import AgentRuntime
from deputy.sandbox.oracle import (
    FINAL_REPLY,
    GO_ON,
    GOODBYE,
    OPENING,
    OracleCustomer,
    ReferenceActionsModel,
    oracle_spec,
    performed,
)
from deputy.sandbox.replay import expected_state, states_match
from deputy.sandbox.tau2 import load_tau2_tasks, tau2_suite, tau2_task_id
from deputy.sandbox.worlds import AsgiWorldFactory
from deputy.testing.tools import InMemoryCallLedger
from deputy.tools.executor import ToolExecutor
from deputy.tools.ledger import CallRecord

T = TypeVar("T")

GROUND_TRUTH = Path("examples/retail/tau2_expected_states.json")
IRREVERSIBLE = {
    "cancel_pending_order",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def retail() -> AsgiWorldFactory:
    return world_factory()


@pytest.fixture(scope="module")
def spec(retail: AsgiWorldFactory) -> AgentSpec:
    return oracle_spec(run(retail.document()).tools(), source="retail")


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    suite = tau2_suite(load_tau2_tasks(RETAIL_DATA, split="train"), name="retail")
    return {str(tau2_task_id(s)): s for s in suite.scenarios}


@dataclass(frozen=True)
class Trial:
    state: JsonValue | None
    transcript: list[TranscriptMessage]
    calls: list[CallRecord]
    handed_off: bool


async def drive(
    spec: AgentSpec, model: ReferenceActionsModel, factory: AsgiWorldFactory, max_turns: int = 40
) -> Trial:
    """One simulated conversation: the oracle customer talks to the runtime over a fresh world,
    one `run_turn` per customer message (what the sandbox's trial does generically)."""
    world = await factory.open()
    ledger = InMemoryCallLedger()
    runtime = AgentRuntime(spec, model=model, tools=ToolExecutor(spec, world.clients(spec), ledger))
    customer, journal, state = OracleCustomer(), MemoryJournal(), AgentState()
    transcript: list[TranscriptMessage] = []
    handed_off = False
    try:
        for number in range(1, max_turns + 1):
            said = await customer.next(transcript)
            if said.stop is not None:
                break
            transcript.append(TranscriptMessage(role="customer", turn=number, text=said.text))
            history = tuple(journal.entries)
            journal.start_turn(f"turn_{number}")
            inbound = await journal.append(Entry("customer_message", INBOUND_KEY, text=said.text))
            turn = TurnInput(
                conversation=ConversationRef("ws_sandbox", "agt_oracle", "cnv_oracle"),
                spec=spec,
                state=state,
                inbound=inbound,
                turn_id=journal.turn_id,
                history=history,
            )
            result = await runtime.run_turn(turn, journal)
            state = result.state
            transcript.append(TranscriptMessage(role="agent", turn=number, text=result.reply.text))
            if result.handoff is not None:
                handed_off = True
                break
        return Trial(await world.state(), transcript, list(ledger.records.values()), handed_off)
    finally:
        await world.aclose()


def _made(calls: list[CallRecord]) -> list[tuple[str, dict[str, Any]]]:
    """The calls that reached the backend, in order."""
    return [(c.tool, c.arguments) for c in calls if c.status in ("succeeded", "failed")]


def _actions(scenario: Scenario) -> list[tuple[str, dict[str, Any]]]:
    return [(a.tool, dict(a.arguments)) for a in scenario.assertions.reference_actions]


# ---- the spec, the model and the customer -----------------------------------------------------


def test_the_oracle_spec_offers_every_backend_operation_but_admin_and_health(
    spec: AgentSpec, retail: AsgiWorldFactory
) -> None:
    operations = {t.operation for t in run(retail.document()).tools()}
    assert {"admin_reset", "admin_state", "healthz"} <= operations
    assert {t.name for t in spec.tools} == operations - {"admin_reset", "admin_state", "healthz"}
    effects = {t.name: t.effect for t in spec.tools}
    assert {name for name, effect in effects.items() if effect == "irreversible"} >= IRREVERSIBLE
    assert effects["get_order_details"] == "read"
    assert spec.runtime_mode == "reasoning" and spec.guardrails.preset == "minimal"
    assert resolve_guardrails(spec).grounding == "off"
    assert lint_errors(lint_spec(spec)) == []
    with pytest.raises(ValueError, match="no operation the oracle could call"):
        oracle_spec([t for t in run(retail.document()).tools() if t.operation == "healthz"])


ORDER = ToolCallExpectation(tool="get_order_details", arguments={"order_id": "#W1"})
CANCEL = ToolCallExpectation(
    tool="cancel_pending_order", arguments={"order_id": "#W1", "reason": "no longer needed"}
)


def _exchange(call_id: str, call: ToolCallExpectation, result: str) -> list[Message]:
    made = ToolCall(call_id, call.tool, dict(call.arguments))
    return [Message.assistant(tool_calls=(made,)), Message.tool_result(call_id, result)]


def _result(status: str, code: str | None = None) -> str:
    coded = f' code="{code}"' if code else ""
    return f'<tool_result tool="x" status="{status}"{coded} trust="executor">\n…\n</tool_result>'


def test_performed_counts_calls_in_order_but_not_ones_awaiting_confirmation() -> None:
    actions = [ORDER, CANCEL, ORDER]
    history = [
        Message.user("hi"),
        *_exchange("h1", ORDER, _result("succeeded")),
        *_exchange("h2", CANCEL, _result("refused", "confirmation_required")),
    ]
    assert performed(actions, history) == 1
    confirmed = _exchange("confirmed", CANCEL, _result("succeeded"))
    assert performed(actions, [*history, *confirmed]) == 2
    # A failing action counts (tau2 ignores it too); one with other arguments does not.
    failed = _exchange("h3", ORDER, _result("failed", "tool_error"))
    assert performed(actions, [*history, *confirmed, *failed]) == 3
    other = ToolCallExpectation(tool="cancel_pending_order", arguments={"order_id": "#W2"})
    assert performed(actions, [*history, *_exchange("h4", other, _result("succeeded"))]) == 1
    # Canonical arguments: key order and 1.0 vs 1 do not matter.
    numeric = ToolCallExpectation(tool="calculate", arguments={"a": 1, "b": "x"})
    as_float = ToolCallExpectation(tool="calculate", arguments={"b": "x", "a": 1.0})
    assert performed([numeric], _exchange("h5", as_float, _result("succeeded"))) == 1


def test_the_model_asks_for_the_next_action_then_replies() -> None:
    model = ReferenceActionsModel([ORDER, CANCEL, ORDER], skip=1)
    tools = (ToolDefinition("get_order_details", "Get an order.", {"type": "object"}),)
    first = run(model.request(ModelRequest(messages=(Message.user("hi"),), tools=tools)))
    assert [(c.name, dict(c.arguments)) for c in first.tool_calls] == [
        ("get_order_details", {"order_id": "#W1"})
    ]
    done = (Message.user("hi"), *_exchange("h1", ORDER, _result("succeeded")))
    second = run(model.request(ModelRequest(messages=done, tools=tools)))
    assert second.tool_calls[0].name == "get_order_details"  # the cancel was skipped
    finished = (*done, *_exchange("h2", ORDER, _result("succeeded")))
    last = run(model.request(ModelRequest(messages=finished, tools=tools)))
    assert (last.text, last.tool_calls) == (FINAL_REPLY, ())
    summary = run(model.request(ModelRequest(messages=finished)))
    assert summary.text == "2 of 2 reference actions were carried out."
    with pytest.raises(ValueError, match="skip=3"):
        ReferenceActionsModel([ORDER, CANCEL], skip=3)


def _line(role: str, text: str) -> TranscriptMessage:
    return TranscriptMessage(role=role, turn=1, text=text)


def test_the_oracle_customer_opens_confirms_goes_on_and_stops() -> None:
    customer = OracleCustomer(max_messages=3)
    assert run(customer.next([])).text == OPENING
    opened = [_line("customer", OPENING)]
    question = "To confirm, I will call cancel_pending_order(...). Shall I go ahead (yes/no)?"
    asked = [*opened, _line("agent", question)]
    assert run(customer.next(asked)).text == "yes"
    stepped = [*opened, _line("agent", FALLBACK_REPLY)]
    assert (run(customer.next(stepped)).text, run(customer.next(stepped)).stop) == (GO_ON, None)
    finished = run(customer.next([*opened, _line("agent", FINAL_REPLY)]))
    assert (finished.text, finished.stop) == (GOODBYE, "stop")
    bounded = [*stepped, _line("customer", GO_ON), _line("customer", GO_ON)]
    assert run(customer.next(bounded)).stop == "stop"


# ---- the oracle through the runtime -----------------------------------------------------------


@pytest.mark.parametrize("task_id", ["0", "4", "41"])
def test_the_oracle_leaves_the_reference_end_state(
    task_id: str, spec: AgentSpec, retail: AsgiWorldFactory, scenarios: dict[str, Scenario]
) -> None:
    """0: an exchange (irreversible: confirmed by the customer, run by the runtime); 4: 13
    actions (past the 8-step turn limit), one failing, two irreversible; 41: plain writes."""
    scenario = scenarios[task_id]
    actions = scenario.assertions.reference_actions
    trial = run(drive(spec, ReferenceActionsModel(actions), retail))
    expected = run(expected_state(retail, actions))
    assert states_match(trial.state, expected) == (
        True,
        "the end state equals the reference end state",
    )
    assert not trial.handed_off
    assert trial.transcript[-1].text == FINAL_REPLY
    # Every reference action reached the backend exactly once, in order.
    assert _made(trial.calls) == _actions(scenario)
    refused = [c for c in trial.calls if c.status == "refused"]
    assert {c.code for c in refused} <= {"confirmation_required"}
    assert [c.tool for c in refused] == [a.tool for a in actions if a.tool in IRREVERSIBLE]
    if len(actions) > 8:
        assert FALLBACK_REPLY in [line.text for line in trial.transcript]


def test_task_zero_confirms_the_exchange_with_the_customer(
    spec: AgentSpec, retail: AsgiWorldFactory, scenarios: dict[str, Scenario]
) -> None:
    trial = run(
        drive(spec, ReferenceActionsModel(scenarios["0"].assertions.reference_actions), retail)
    )
    texts = [(line.role, line.text) for line in trial.transcript]
    asked = next(i for i, (_, text) in enumerate(texts) if text.endswith("(yes/no)?"))
    assert texts[asked][1].startswith("To confirm, I will call exchange_delivered_order_items(")
    assert texts[asked + 1] == ("customer", "yes")
    assert texts[asked + 2] == ("agent", FINAL_REPLY)
    state: Any = trial.state
    assert state["orders"]["#W2378156"]["status"] == "exchange requested"


@pytest.mark.parametrize(
    ("task_id", "skip", "difference"),
    [
        ("0", 4, "orders.#W2378156.status: 'delivered' != 'exchange requested'"),
        ("41", 6, "users.mei_patel_7272.address.address1: '443 Maple Drive' != '445 Maple Drive'"),
    ],
)
def test_skipping_a_write_fails_the_db_check(
    task_id: str,
    skip: int,
    difference: str,
    spec: AgentSpec,
    retail: AsgiWorldFactory,
    scenarios: dict[str, Scenario],
) -> None:
    actions = scenarios[task_id].assertions.reference_actions
    assert actions[skip].tool in {"exchange_delivered_order_items", "modify_user_address"}
    trial = run(drive(spec, ReferenceActionsModel(actions, skip=skip), retail))
    same, detail = states_match(trial.state, run(expected_state(retail, actions)))
    assert not same
    assert detail.startswith("the end state differs from the reference") and difference in detail
    assert trial.transcript[-1].text == FINAL_REPLY  # the agent finished; the world tells


# ---- the reference replay against tau2's ground truth ------------------------------------------


def test_the_reference_replay_matches_tau2_on_every_train_task(
    retail: AsgiWorldFactory, scenarios: dict[str, Scenario]
) -> None:
    truth = json.loads(GROUND_TRUTH.read_text())["tasks"]
    assert set(truth) == set(scenarios)

    async def replay_all() -> dict[str, str]:
        hashes: dict[str, str] = {}
        for task_id, scenario in scenarios.items():
            state = await expected_state(retail, scenario.assertions.reference_actions)
            hashes[task_id] = sha256_of(state)
        return hashes

    hashes = run(replay_all())
    wrong = sorted(t for t in scenarios if hashes[t] != truth[t]["final_sha256"])
    assert wrong == []
    assert len(set(hashes.values())) > 60  # the tasks really leave different states
