"""Intents from a customer's first message, and the terms intents are compared by."""

from __future__ import annotations

import pytest

from deputy.improve.text import SUPPORT_WORDS, short_intent, terms


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        (
            "Hi, I'd like to exchange the garden hose from order #W6893533 for the 100ft one.",
            "exchange the garden hose for the 100ft one",
        ),
        (
            "I moved last week, can you update the delivery address for order #W5918442?",
            "update the delivery address",
        ),
        (
            "Please change the shipping address on my pending order #W8770097.",
            "change the shipping address",
        ),
        (
            "Good morning! I want to exchange the office chair I got for the black one",
            "exchange the office chair I got",
        ),
        ("My order #W2631563 never arrived. Where is it?", "My order never arrived"),
        ("hello", "hello"),
    ],
)
def test_short_intent(message: str, intent: str) -> None:
    assert short_intent(message) == intent


def test_terms_meet_across_inflections_and_drop_support_words() -> None:
    assert terms("exchanges exchanging exchanged") == terms("exchange")
    assert terms("addresses") == terms("address")
    assert terms("help with my order items", drop=SUPPORT_WORDS) == frozenset()
    assert terms("Hi there, thanks!") == frozenset()
