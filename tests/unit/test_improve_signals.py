"""Customer signals from hand-made transcripts: repeated questions, feedback phrases and ratings,
tool errors, guardrail stops, failed turns and handoffs."""

from __future__ import annotations

import pytest

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.improve.signals import conversation_signals, rating_share, repeated_messages
from tests.unit.test_improve_conversations import (
    agent,
    conversation,
    customer,
    exchange_failure,
    handoff,
    resolved_return,
    tool,
)


def test_a_customer_who_has_to_ask_again_is_counted() -> None:
    made = conversation(
        "c",
        customer("Where is my order #W2631563? It should have arrived by now."),
        agent("Could you give me your email first?"),
        customer("mei.ahmed@example.com", turn=2),
        agent("Thanks. Anything else?", turn=2),
        customer("Where is my order #W2631563?? It should have arrived days ago.", turn=3),
        customer("yes", turn=4),
        customer("yes", turn=5),
        outcome=None,
    )
    signals = conversation_signals(made)
    assert signals.turns == 5
    assert signals.repeated_questions == 1  # the "yes"es are too short to count


def test_different_questions_are_not_repeats() -> None:
    assert (
        repeated_messages(
            [
                "I want to return the dumbbell set.",
                "Can you also cancel my pending order for the espresso machine?",
                "And change my default address to 445 Maple Drive?",
            ]
        )
        == 0
    )


def test_the_exchange_failure_reads_as_escalated_with_negative_feedback() -> None:
    signals = conversation_signals(exchange_failure(0))
    assert signals.escalated
    assert signals.negative_feedback
    assert not signals.positive_feedback
    assert signals.tool_errors == 0
    assert signals.turns == 3


def test_thanks_that_solved_it_is_positive() -> None:
    signals = conversation_signals(resolved_return(1))
    assert signals.positive_feedback
    assert not signals.negative_feedback
    assert not signals.escalated


@pytest.mark.parametrize(
    ("feedback", "negative", "positive"),
    [
        (("1/5",), True, False),
        (("rating: 2",), True, False),
        (("5 stars",), False, True),
        (("9 out of 10",), False, True),
        (("3",), False, False),
        (("You're not helping at all",), True, False),
        (("\N{THUMBS UP SIGN}",), False, True),
        (("Great, thanks \u2014 that fixed it",), False, True),
        (("Honestly not very helpful",), True, False),
        (("It never really helped, that was not helpful",), True, False),
    ],
)
def test_explicit_feedback(feedback: tuple[str, ...], negative: bool, positive: bool) -> None:
    made = conversation("c", customer("Cancel order #W2974929 please"), feedback=feedback)
    signals = conversation_signals(made)
    assert (signals.negative_feedback, signals.positive_feedback) == (negative, positive)


def test_ratings_are_read_on_their_scale() -> None:
    assert rating_share("2/5") == pytest.approx(0.4)
    assert rating_share("rated 4 stars") == pytest.approx(0.8)
    assert rating_share("8 of 10") == pytest.approx(0.8)
    assert rating_share("the agent was slow") is None
    assert rating_share("7/5") is None


def test_tool_errors_guardrail_stops_and_failed_turns() -> None:
    made = conversation(
        "c",
        customer("Change the address on #W8770097 to 445 Maple Drive"),
        tool("modify_pending_order_address", ok=False, order_id="#W8770097"),
        tool("modify_pending_order_address", ok=False, order_id="#W8770097"),
        tool("get_order_details", ok=True, order_id="#W8770097"),
        TranscriptMessage(
            role="event",
            turn=1,
            text="guardrail output: block",
            data={"kind": "guardrail", "stage": "output", "action": "block"},
        ),
        TranscriptMessage(
            role="event",
            turn=1,
            text="guardrail input: flag",
            data={"kind": "guardrail", "stage": "input", "action": "flag"},
        ),
        TranscriptMessage(role="agent", turn=1, text="Sorry.", data={"error": "model_error"}),
        TranscriptMessage(role="event", turn=2, data={"kind": "turn_failed", "error": "crash"}),
        outcome=None,
    )
    signals = conversation_signals(made)
    assert signals.tool_errors == 2
    assert signals.guardrail_blocks == 1
    assert signals.failed_turns == 2
    assert not signals.escalated


@pytest.mark.parametrize(
    ("outcome", "status", "lines", "escalated"),
    [
        ("escalated", "closed", (), True),
        (None, "queued", (), True),
        (None, "active", (handoff("customer_request"),), True),
        ("resolved", "closed", (), False),
    ],
)
def test_escalation(
    outcome: str | None, status: str, lines: tuple[TranscriptMessage, ...], escalated: bool
) -> None:
    made = conversation("c", customer("I want a human"), *lines, outcome=outcome, status=status)
    assert conversation_signals(made).escalated is escalated
