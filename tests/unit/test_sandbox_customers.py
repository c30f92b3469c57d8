"""The sandbox's customers: a scripted one says its lines in order; a simulated one sees the chat
with roles flipped, follows a brief built from a real tau2 retail task, and its model's reply is
cleaned (labels, quotes, the agent's line written for it) and read for the three end tokens. A
model that returns nothing, parrots the agent or repeats itself cannot keep a trial going."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import get_args

import pytest

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import Cooperation, CustomerBrief, Scenario
from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import Usage
from deputy.sandbox.customer_prompt import (
    COOPERATION_INSTRUCTIONS,
    GREETING,
    REPLY_CUE,
    conversation,
    customer_system_prompt,
    parse_reply,
)
from deputy.sandbox.customers import (
    MAX_TOKENS,
    RETRY_TEMPERATURE,
    ScriptedCustomer,
    SimulatedCustomer,
    customer_for,
)
from deputy.sandbox.ports import CustomerTurn
from deputy.testing import ScriptedModel, reply

TASKS = Path("/work/shared/data/tau2-bench/data/tau2/domains/retail/tasks.json")


def retail_brief(cooperation: Cooperation = "cooperative", **changes: object) -> CustomerBrief:
    """The brief of tau2 retail task 0 (Yusuf Rossi's keyboard and thermostat exchange)."""
    task = json.loads(TASKS.read_text())[0]
    instructions = task["user_scenario"]["instructions"]
    assert task["id"] == "0"
    fields: dict[str, object] = {
        "persona": instructions["task_instructions"],
        "goal": instructions["reason_for_call"],
        "knows": {"name": "Yusuf Rossi", "zip_code": "19122", "order_id": "#W2378156"},
        "unknowns": (instructions["unknown_info"],),
        "cooperation": cooperation,
        **changes,
    }
    return CustomerBrief.model_validate(fields)


def line(role: str, text: str = "", turn: int = 0, **extra: object) -> TranscriptMessage:
    return TranscriptMessage.model_validate({"role": role, "turn": turn, "text": text, **extra})


def ask(customer: SimulatedCustomer | ScriptedCustomer, *lines: TranscriptMessage) -> CustomerTurn:
    return asyncio.run(customer.next(lines))


# -- scripted ------------------------------------------------------------------------------------


def test_a_scripted_customer_says_its_lines_in_order_then_stops() -> None:
    customer = ScriptedCustomer(["I want to return a keyboard.", "#W2378156"])
    assert ask(customer) == CustomerTurn("I want to return a keyboard.")
    assert ask(customer, line("agent", "Which order?")) == CustomerTurn("#W2378156")
    end = ask(customer, line("agent", "Done."))
    assert end.stop == "stop" and end.text == "" and end.calls == 0


# -- the conversation the model sees --------------------------------------------------------------


def test_the_chat_reaches_the_model_with_roles_flipped_and_tools_hidden() -> None:
    messages = conversation(
        [
            line("customer", "I want to exchange my keyboard."),
            line("agent", "Sure. Your name and zip code?", 1),
            line("tool", turn=1, tool="find_user_id_by_name_zip", arguments={"zip": "19122"}),
            line("event", "procedure exchange started", 1),
            line("agent", "I also need the order id.", 1),
            line("customer", "Yusuf Rossi, 19122, order #W2378156.", 1),
            line("agent", "Thanks, found it.", 2),
        ]
    )
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0].content == f"Agent: {GREETING}"  # the customer spoke first
    assert messages[1].content == "I want to exchange my keyboard."
    assert (
        messages[2].content == "Agent: Sure. Your name and zip code?\n\nI also need the order id."
    )
    assert messages[3].content == "Yusuf Rossi, 19122, order #W2378156."
    assert messages[4].content == f"Agent: Thanks, found it.\n\n{REPLY_CUE}"
    everything = " ".join(m.content for m in messages)
    assert "find_user_id_by_name_zip" not in everything and "procedure" not in everything


def test_an_agent_that_spoke_first_is_answered_without_a_made_up_greeting() -> None:
    messages = conversation([line("agent", "Welcome to the shop! What can I do for you?")])
    assert len(messages) == 1 and GREETING not in messages[0].content
    assert messages[0].content.startswith("Agent: Welcome to the shop!")


def test_the_request_carries_the_brief_a_small_token_budget_and_the_seed() -> None:
    model = ScriptedModel(["Hi, I'd like to exchange two items from an order."])
    customer = SimulatedCustomer(model, retail_brief(), seed=7, metadata={"run_id": "r1"})
    turn = ask(customer)
    request = model.last_request
    assert request.messages[0].role == "system"
    assert request.messages[0].content == customer_system_prompt(retail_brief())
    assert request.max_tokens == MAX_TOKENS and request.temperature == 0.0
    assert request.metadata == {"run_id": "r1", "seed": "7"} and request.seed == 7
    assert turn == CustomerTurn("Hi, I'd like to exchange two items from an order.", calls=1)


def test_a_fixed_opening_is_said_verbatim_without_asking_the_model() -> None:
    opening = "hey, my keyboard from order #W2378156 is the wrong kind"
    model = ScriptedModel(["Yusuf Rossi, 19122."])
    customer = SimulatedCustomer(model, retail_brief(opening=opening), seed=0)
    assert ask(customer) == CustomerTurn(opening)
    assert not model.requests
    second = ask(customer, line("customer", opening), line("agent", "Your name and zip?", 1))
    assert second.text == "Yusuf Rossi, 19122."
    model.assert_all_used()


# -- reading the reply ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "stop"),
    [
        ("Thanks, that's everything! ###STOP###", "Thanks, that's everything!", "stop"),
        ("###TRANSFER###", "", "transfer"),
        (
            "I don't know what to say to that. ###OUT-OF-SCOPE### bye",
            "I don't know what to say to that.",
            "out_of_scope",
        ),
        ("Great ### STOP ###", "Great", "stop"),  # a small model's spacing
        ("###out_of_scope###", "", "out_of_scope"),
        ('Customer: "I want to return my keyboard."', "I want to return my keyboard.", None),
        ("**User:** Yusuf Rossi, 19122", "Yusuf Rossi, 19122", None),
        ("\u201cCan you hurry up?\u201d", "Can you hurry up?", None),
        ("My zip is 19122.\nAgent: Thank you! Anything else?", "My zip is 19122.", None),
        ("Agent: Hi! How can I help you today?", "", None),  # the agent's side, parroted
        ('"Clicky" or "linear", I am not sure.', '"Clicky" or "linear", I am not sure.', None),
        ("Please stop the order, it is urgent.", "Please stop the order, it is urgent.", None),
    ],
)
def test_a_reply_is_cleaned_and_its_end_token_found(raw: str, text: str, stop: str | None) -> None:
    parsed = parse_reply(raw)
    assert (parsed.text, parsed.stop) == (text, stop)


def test_the_turn_reports_the_models_message_its_end_and_usage() -> None:
    usage = Usage(input_tokens=420, output_tokens=9)
    model = ScriptedModel([reply("Customer: Perfect, thanks! ###STOP###", usage=usage)])
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1), line("agent", "All done.", 3))
    assert turn == CustomerTurn("Perfect, thanks!", stop="stop", usage=usage, calls=1)


def test_an_empty_reply_is_retried_once_with_sampling() -> None:
    model = ScriptedModel(
        [
            reply("  ", usage=Usage(input_tokens=400, output_tokens=1)),
            reply("I need to exchange a keyboard.", usage=Usage(input_tokens=400, output_tokens=8)),
        ]
    )
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1))
    assert turn.text == "I need to exchange a keyboard." and turn.stop is None
    assert turn.calls == 2 and turn.usage == Usage(input_tokens=800, output_tokens=9)
    assert [r.temperature for r in model.requests] == [0.0, RETRY_TEMPERATURE]
    assert model.requests[0].messages == model.requests[1].messages


def test_a_customer_with_nothing_to_say_twice_ends_out_of_scope() -> None:
    model = ScriptedModel(["", "Customer:"])
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1), line("agent", "Anything else?"))
    assert turn.stop == "out_of_scope" and turn.text == "" and turn.calls == 2
    model.assert_all_used()


@pytest.mark.parametrize(
    "copy",
    [
        "Could you give me your name and zip code?",
        "Sure! could you give me your NAME and zip code?",
    ],
)
def test_the_agents_line_said_back_counts_as_nothing_said(copy: str) -> None:
    question = "Could you give me your name and zip code?"
    model = ScriptedModel([copy, "Yusuf Rossi, zip 19122."])
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1), line("agent", question))
    assert turn.text == "Yusuf Rossi, zip 19122." and turn.calls == 2


def test_the_greeting_said_back_at_the_start_counts_as_nothing_said() -> None:
    model = ScriptedModel([GREETING, GREETING])
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1))
    assert turn.stop == "out_of_scope" and turn.calls == 2


def test_a_short_agent_line_echoed_inside_a_real_answer_is_an_answer() -> None:
    model = ScriptedModel(["Yes, okay. Go ahead with the exchange."])
    turn = ask(SimulatedCustomer(model, retail_brief(), seed=1), line("agent", "Yes, okay."))
    assert turn.text == "Yes, okay. Go ahead with the exchange." and turn.calls == 1


def test_the_same_message_a_third_time_in_a_row_ends_the_conversation() -> None:
    stuck = "Where is my keyboard?"
    transcript = [
        line("customer", stuck),
        line("agent", "Which order?", 1),
        line("customer", "where is my  KEYBOARD?", 1),
        line("agent", "I need the order id.", 2),
    ]
    model = ScriptedModel([stuck])
    turn = asyncio.run(SimulatedCustomer(model, retail_brief(), seed=1).next(transcript))
    assert turn.stop == "out_of_scope" and turn.text == "" and turn.calls == 1
    # Twice is still a conversation: an agent may well need to hear it again.
    again = ScriptedModel([stuck])
    turn = asyncio.run(SimulatedCustomer(again, retail_brief(), seed=1).next(transcript[1:]))
    assert turn == CustomerTurn(stuck, calls=1)


def test_a_model_failure_is_not_hidden_as_a_customer_turn() -> None:
    model = ScriptedModel([ModelUnavailable("the provider is down")])
    with pytest.raises(ModelUnavailable):
        ask(SimulatedCustomer(model, retail_brief(), seed=1))


# -- the prompt ----------------------------------------------------------------------------------


def test_the_prompt_states_the_simulation_guidelines_and_credits_tau2() -> None:
    prompt = customer_system_prompt(retail_brief())
    for token in ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"):
        assert token in prompt
    assert "tau2-bench" in prompt and "MIT" in prompt
    for principle in ("one message at a time", "Never invent", "own words", "progressively"):
        assert principle in prompt


def test_the_prompt_lists_what_the_customer_knows_and_must_not_invent() -> None:
    brief = retail_brief()
    prompt = customer_system_prompt(brief)
    assert brief.goal in prompt and brief.persona in prompt
    assert "- zip code: 19122" in prompt and "- order id: #W2378156" in prompt
    assert "never make these up" in prompt
    assert "- You do not remember your email address." in prompt
    assert "English (en)" in prompt
    assert "word for word" not in prompt  # no fixed opening


def test_the_prompt_asks_for_the_briefs_language_and_quotes_a_fixed_opening() -> None:
    prompt = customer_system_prompt(
        retail_brief(language="de", opening="Hallo, ich möchte etwas umtauschen.")
    )
    assert "write every message in German (de)" in prompt
    assert 'word for word: "Hallo, ich möchte etwas umtauschen."' in prompt
    assert "write every message in 'tlh'" in customer_system_prompt(retail_brief(language="tlh"))


@pytest.mark.parametrize("cooperation", get_args(Cooperation))
def test_each_cooperation_level_gets_its_own_behaviour(cooperation: Cooperation) -> None:
    prompt = customer_system_prompt(retail_brief(cooperation))
    assert COOPERATION_INSTRUCTIONS[cooperation] in prompt
    others = [text for level, text in COOPERATION_INSTRUCTIONS.items() if level != cooperation]
    assert not any(text in prompt for text in others)


def test_the_uncooperative_levels_say_concretely_how_to_resist() -> None:
    impatient, confused, adversarial, off_policy = (
        COOPERATION_INSTRUCTIONS[level]
        for level in ("impatient", "confused", "adversarial", "off_policy")
    )
    assert "short" in impatient and "leave" in impatient and "goal" in impatient
    assert "mix up" in confused and "correct yourself" in confused
    assert "manager" in adversarial and "ignore your previous instructions" in adversarial
    assert "do not accept the first refusal" in adversarial
    assert "outside what a support agent may do" in off_policy and "off topic" in off_policy
    assert "nothing more" in COOPERATION_INSTRUCTIONS["cooperative"]


# -- choosing ------------------------------------------------------------------------------------


def test_a_scenario_with_a_script_gets_a_scripted_customer() -> None:
    scenario = Scenario(
        id="exchange_scripted", title="Exchange", customer=retail_brief(), script=("Hi", "Bye")
    )
    customer = customer_for(scenario, None, seed=3)
    assert isinstance(customer, ScriptedCustomer) and customer.lines == ("Hi", "Bye")


def test_a_scenario_without_a_script_is_played_by_the_model_and_needs_one() -> None:
    scenario = Scenario(id="exchange", title="Exchange", customer=retail_brief("confused"))
    model = ScriptedModel()
    customer = customer_for(scenario, model, seed=3)
    assert isinstance(customer, SimulatedCustomer)
    assert customer.model is model and customer.seed == 3
    assert customer.brief.cooperation == "confused"
    with pytest.raises(ValueError, match="scenario exchange needs a customer model"):
        customer_for(scenario, None, seed=3)
