"""Guided mode on the retail spec with fakes (a scripted brain for the model, a real
ToolExecutor over a fake retail source): authentication then an exchange under confirmation,
refusals, declines, slots from the first message, re-asks, crash and re-run, translation, the
knowledge path, failed calls, handoffs and the per-turn bounds."""

from __future__ import annotations

import asyncio

import pytest

from deputy.domain.spec import AgentSpec
from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.runtime.guided import run_guided
from deputy.runtime.guided_knowledge import FOUND
from deputy.runtime.guided_run import GAVE_UP
from deputy.runtime.ports import Passage
from deputy.runtime.state import AgentState
from deputy.testing import FunctionModel
from deputy.testing.runtime import SimulatedCrash, StaticRetriever
from deputy.tools.confirmation import Confirmation
from tests.unit.test_runtime_guided_support import (
    BOTTLE,
    DELIVERED,
    EMAIL,
    GIFT_CARD,
    GLASS_BOTTLE,
    PENDING,
    USER,
    Brain,
    Conversation,
)

EXCHANGE = "exchange_delivered_order_items"


def exchange_brain(**changes: object) -> Brain:
    brain = Brain(route="exchange_order_items", checks={"same product": True})
    for name, value in changes.items():
        setattr(brain, name, value)
    return brain


def up_to_confirmation(conversation: Conversation) -> None:
    conversation.say(f"Hi, I want to exchange an item. My email is {EMAIL}")
    conversation.say(f"It's order {DELIVERED}")
    conversation.say(f"item {BOTTLE}")
    conversation.say(f"{GLASS_BOTTLE} please")
    conversation.say(f"use {GIFT_CARD}")


def authenticated() -> AgentState:
    return AgentState(context={"user_id": USER})


def test_authentication_then_an_exchange_that_runs_once_and_only_after_the_yes() -> None:
    brain = exchange_brain()
    conversation = Conversation(brain.model())

    first = conversation.say(f"Hi, I want to exchange an item. My email is {EMAIL}")
    # The exchange needs `user_id` from the context: authenticate_user runs first, its email
    # comes from this message, and the exchange starts as soon as the customer is found.
    assert "I have found your account" in first.text
    assert first.text.endswith("Which order would you like to exchange items from?")
    assert first.details == {"procedure": "exchange_order_items", "step": "ask_order"}
    assert conversation.state.context == {"user_id": USER}
    [auth] = conversation.state.completed
    assert (auth.procedure_id, auth.exit_id, auth.outcome) == (
        "authenticate_user",
        "authenticated",
        "resolved",
    )
    assert len(auth.tool_call_ids) == 1
    assert brain.questions("check") == []  # has_email, found: decided by the rules

    assert "Which items" in conversation.say(f"It's order {DELIVERED}").text
    assert "Which option" in conversation.say(f"item {BOTTLE}").text
    assert "payment methods" in conversation.say(f"{GLASS_BOTTLE} please").text
    confirm = conversation.say(f"use {GIFT_CARD}")
    assert confirm.text == (
        f"To confirm: in order {DELIVERED}, exchange {BOTTLE} for {GLASS_BOTTLE}, settling the "
        f"price difference with {GIFT_CARD}. Have you listed every item (yes/no)?"
    )
    assert conversation.state.guided.awaiting == "confirmation"
    assert conversation.backend.executed(EXCHANGE) == []

    done = conversation.say("yes")
    assert done.text.startswith("Done. The exchange is requested")
    assert not done.failed
    assert conversation.backend.executed(EXCHANGE) == [
        {
            "order_id": DELIVERED,
            "item_ids": [BOTTLE],
            "new_item_ids": [GLASS_BOTTLE],
            "payment_method_id": GIFT_CARD,
        }
    ]
    assert conversation.backend.db["orders"][DELIVERED]["status"] == "exchange requested"
    exchange = conversation.state.completed[-1]
    assert (exchange.exit_id, exchange.outcome, exchange.turn) == ("exchanged", "resolved", 6)
    assert len(exchange.tool_call_ids) == 3  # the order, the user, the exchange
    [confirmation] = conversation.state.confirmations
    yes_message = conversation.entries("customer_message")[-1].id
    arguments = conversation.backend.executed(EXCHANGE)[0]
    assert confirmation.to_confirmation() == Confirmation.for_call(
        EXCHANGE, dict(arguments), yes_message
    )
    assert conversation.state.guided.procedure_id is None
    # The same-product check saw only its data: the item slots and the saved order.
    [check] = brain.questions("check")
    assert GLASS_BOTTLE in check and '"order"' in check and EMAIL not in check
    assert conversation.steps()[-3:] == [
        "exchange_order_items/confirm_exchange",
        "exchange_order_items/exchange",
        "exchange_order_items/exchanged",
    ]


def test_a_return_of_an_order_that_is_not_delivered_is_refused() -> None:
    brain = Brain(route="return_order_items")
    conversation = Conversation(brain.model(), state=authenticated())
    reply = conversation.say(f"I want to return order {PENDING}")
    assert reply.text == (
        f"I'm sorry, only delivered orders can be returned, and order {PENDING} is pending."
    )
    assert reply.details == {"procedure": "return_order_items", "step": "not_delivered"}
    [exit_] = conversation.state.completed
    assert (exit_.exit_id, exit_.outcome) == ("refused", "resolved")
    assert conversation.backend.executed("return_delivered_order_items") == []
    [decided] = [e for e in conversation.entries("procedure") if e.data["event"] == "check"]
    assert (decided.data["holds"], decided.data["by"]) == (False, "rules")


def test_a_no_at_the_confirmation_keeps_the_order() -> None:
    conversation = Conversation(exchange_brain().model())
    up_to_confirmation(conversation)
    reply = conversation.say("no, leave it")
    assert reply.text == f"All right, I have not started an exchange for order {DELIVERED}."
    assert conversation.state.completed[-1].exit_id == "kept"
    assert conversation.state.confirmations == []
    assert conversation.backend.executed(EXCHANGE) == []


def test_an_unclear_answer_to_a_confirmation_asks_again() -> None:
    conversation = Conversation(exchange_brain(confirmation="unclear").model())
    up_to_confirmation(conversation)
    reply = conversation.say("hmm, what do you think?")
    assert reply.text.startswith("Sorry, I need a clear yes or no. To confirm:")
    assert conversation.state.guided.awaiting == "confirmation"
    assert conversation.backend.executed(EXCHANGE) == []


def test_slots_in_the_first_message_skip_their_questions() -> None:
    brain = Brain(route="cancel_pending_order")
    conversation = Conversation(brain.model(), state=authenticated())
    reply = conversation.say(f"Please cancel {PENDING}, I ordered it by mistake")
    assert reply.text.startswith(f'To confirm: cancel order {PENDING} because "ordered by mistake"')
    assert brain.questions("slots") == []  # a pattern and an enum: read without the model
    conversation.say("yes")
    assert conversation.backend.executed("cancel_pending_order") == [
        {"order_id": PENDING, "reason": "ordered by mistake"}
    ]
    assert conversation.state.completed[-1].exit_id == "cancelled"


def test_the_model_extracts_what_the_rules_cannot_and_invented_values_are_dropped() -> None:
    brain = Brain(route="return_order_items", slots={"item_ids": ["the red one"]})
    conversation = Conversation(brain.model(), state=authenticated())
    conversation.say(f"I want to return something from {DELIVERED}")
    [question] = brain.questions("slots")
    assert "item_ids" in question and "order_id" not in question  # the order id was read
    # "the red one" is not in the message (and is no id): the question is still asked.
    assert conversation.state.guided.step_id == "ask_items"


def test_the_agents_own_name_is_not_the_customers_and_a_one_word_answer_fills_a_name() -> None:
    """Found by the sandbox: "Hello, Robin. I'm Yusuf Rossi" made the small model read Robin
    (the agent) as the first name, and "Yusuf" alone was then not accepted as the answer."""
    brain = Brain(route="authenticate_user", slots={"first_name": "Robin", "last_name": "Rossi"})
    conversation = Conversation(brain.model())
    first = conversation.say("Hello, Robin. I'm Yusuf Rossi in zip code 19122.")
    assert first.text.endswith("What is your first name?")
    assert conversation.state.guided.slots == {"last_name": "Rossi", "zip": "19122"}
    conversation.say("Yusuf")  # (not a customer of the fake backend: the lookup fails)
    [lookup] = [r for r in conversation.ledger.records.values() if r.tool.endswith("name_zip")]
    assert lookup.arguments == {"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"}


def test_an_answer_that_does_not_match_the_pattern_is_asked_again() -> None:
    brain = Brain(route="return_order_items", slots={"order_id": "W12"})
    conversation = Conversation(brain.model(), state=authenticated())
    assert conversation.say("I want to return an item").text == (
        "Which order would you like to return items from?"
    )
    again = conversation.say("it is W12")
    assert again.text == (
        "Sorry, I need the order id. Which order would you like to return items from?"
    )
    assert conversation.state.guided.awaiting == "answer"
    assert "order_id" not in conversation.state.guided.slots
    assert "Which items" in conversation.say(f"sorry, {DELIVERED}").text


def test_a_turn_run_again_after_a_crash_gives_the_same_reply_and_exchanges_once() -> None:
    reference = Conversation(exchange_brain().model())
    up_to_confirmation(reference)
    expected = reference.say("yes")
    appends = len(reference.journal.turn_entries()) - 2  # not the inbound message, not the reply
    assert appends > 5
    for crash_after in range(1, appends + 1):
        conversation = Conversation(exchange_brain().model())
        up_to_confirmation(conversation)
        ctx, state = conversation.start("yes")
        conversation.journal.crash_after(crash_after)
        with pytest.raises(SimulatedCrash):
            asyncio.run(run_guided(ctx))
        rerun = conversation.context("yes", state, ctx.turn.turn_id)
        draft = conversation.finish(rerun, asyncio.run(run_guided(rerun)))
        assert draft == expected, crash_after
        assert len(conversation.backend.executed(EXCHANGE)) == 1, crash_after
        calls = [r for r in conversation.ledger.records.values() if r.tool == EXCHANGE]
        assert [r.status for r in calls] == ["succeeded"], crash_after
        assert conversation.state.completed[-1].exit_id == "exchanged"


def test_the_reply_is_translated_into_the_customers_language() -> None:
    brain = Brain(route="return_order_items", translation=lambda text: f"[fr] {text}")
    conversation = Conversation(
        brain.model(), state=AgentState(language="fr", context={"user_id": USER})
    )
    reply = conversation.say(f"Je veux retourner la commande {PENDING}")
    assert (
        reply.text
        == f"[fr] I'm sorry, only delivered orders can be returned, and order {PENDING} is pending."
    )
    [translation] = brain.questions("translation")
    assert translation.startswith("I'm sorry")
    model_steps = [e.data["purpose"] for e in conversation.entries("model_step")]
    assert "translate" in model_steps


def test_a_failed_translation_keeps_the_original_reply() -> None:
    brain = Brain(route="return_order_items")

    def answer(request: ModelRequest) -> ModelResponse:
        if request.schema_name == "translation":
            raise ModelOutputInvalid("no translation")
        return brain.answer(request)

    conversation = Conversation(
        FunctionModel(answer), state=AgentState(language="de", context={"user_id": USER})
    )
    reply = conversation.say(f"Ich möchte {PENDING} zurückgeben")
    assert reply.text.startswith("I'm sorry, only delivered orders can be returned")


def test_no_procedure_answers_from_knowledge_with_citations() -> None:
    passages = [
        Passage("Returns are accepted within 30 days of delivery.", {"document_id": "doc_1"}),
        Passage("Gift cards never expire.", {"document_id": "doc_2"}),
    ]
    retriever = StaticRetriever(passages)
    conversation = Conversation(Brain(route="none").model(), retriever=retriever)
    reply = conversation.say("How many days do I have for returns?")
    assert reply.text == FOUND + "Returns are accepted within 30 days of delivery."
    assert reply.citations == ({"document_id": "doc_1"},)
    assert conversation.state.guided.procedure_id is None
    assert retriever.queries == ["How many days do I have for returns?"]

    nothing = conversation.say("Tell me a joke")
    assert nothing.text.startswith("I can help you with: Authenticate the customer; Cancel")
    assert nothing.citations == ()


def test_a_spec_without_procedures_never_asks_the_model() -> None:
    spec = AgentSpec(name="FAQ", goal="Answer questions.")
    model = FunctionModel(lambda request: pytest.fail("the model was asked"))
    retriever = StaticRetriever([Passage("We open at 9.", {"document_id": "hours"})])
    conversation = Conversation(model, spec, retriever=retriever)
    assert conversation.say("When do you open?").text == FOUND + "We open at 9."
    assert (
        conversation.say("Something else").text
        == "I'm sorry, I could not find anything about that."
    )


def test_a_failed_call_fails_the_turn_with_the_executors_words_only() -> None:
    conversation = Conversation(exchange_brain().model())
    up_to_confirmation(conversation)
    conversation.backend.db["orders"][DELIVERED]["status"] = "exchange requested"
    reply = conversation.say("yes")
    assert reply.failed
    assert reply.text.startswith("I'm sorry, I could not complete this request: ")
    assert "answered with a failure" in reply.text
    assert "is not delivered" not in reply.text  # the tool's own output never reaches the reply
    assert conversation.state.guided.procedure_id is None
    assert conversation.state.completed[-1].procedure_id == "authenticate_user"


def test_a_handoff_step_hands_over_with_the_escalated_exit() -> None:
    brain = Brain(route="transfer_to_human", slots={"summary": "help with a warranty claim"})
    conversation = Conversation(brain.model())
    assert conversation.say("This is about something else entirely").text.startswith(
        "Before I transfer you"
    )
    reply = conversation.say("I need help with a warranty claim")
    assert reply.text == "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
    assert reply.handoff is not None
    assert (reply.handoff.trigger, reply.handoff.queue) == ("procedure", "retail_support")
    assert conversation.backend.executed("transfer_to_human_agents") == [
        {"summary": "help with a warranty claim"}
    ]
    exit_ = conversation.state.completed[-1]
    assert (exit_.exit_id, exit_.outcome) == ("transferred", "escalated")


LOOP = AgentSpec.model_validate(
    {
        "name": "Loop",
        "goal": "Loop.",
        "procedures": [
            {
                "id": "spin",
                "title": "Spin",
                "when": "Always.",
                "steps": [
                    {"id": "again", "kind": "say", "text": "Round {n}.", "next": "again"},
                ],
            }
        ],
    }
)


def test_a_loop_stops_at_the_turns_bounds_and_leaves_a_clean_state() -> None:
    conversation = Conversation(Brain(route="spin").model(), LOOP)
    reply = conversation.say("go")
    assert reply.failed and reply.text == GAVE_UP
    assert conversation.state.guided.procedure_id is None
    assert conversation.steps() == ["spin/again"] * 4
    assert conversation.entries("procedure")[-1].data["event"] == "failed"


def test_a_model_that_cannot_route_falls_back_to_knowledge_and_fails_the_turn() -> None:
    model = FunctionModel(lambda request: "not json at all")
    conversation = Conversation(model)
    reply = conversation.say("I want to cancel my order")
    assert reply.failed
    assert reply.text.startswith("I can help you with:")


def test_a_reason_outside_the_enum_is_asked_again_with_the_allowed_values() -> None:
    brain = Brain(route="cancel_pending_order")
    conversation = Conversation(brain.model(), state=authenticated())
    assert conversation.say(f"Cancel {PENDING}").text.startswith("Why would you like to cancel")
    again = conversation.say("I found it cheaper elsewhere")
    assert again.text.startswith(
        "Sorry, I need one of: 'no longer needed', 'ordered by mistake'. Why would you"
    )
    assert conversation.say("I don't need it any longer").text.startswith(
        f'To confirm: cancel order {PENDING} because "no longer needed"'
    )
