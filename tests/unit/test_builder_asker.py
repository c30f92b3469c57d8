"""The builder's questions: answers are validated, and a failing or absent model gives None so
the rule's answer stands."""

from __future__ import annotations

import asyncio

from deputy.builder.asker import Asker
from deputy.llm.errors import ModelUnavailable
from deputy.testing.models import ScriptedModel, structured


def test_without_a_model_every_question_is_unanswered() -> None:
    asker = Asker(None)
    assert asyncio.run(asker.choose("Which?", "text", ("a", "b"))) is None
    assert asyncio.run(asker.yes_no("Is it?", "text")) is None
    assert asker.stats.calls == 0
    assert not asker.capable


def test_a_valid_choice_is_returned_and_counted() -> None:
    model = ScriptedModel([structured({"answer": "policy"})])
    asker = Asker(model)
    answer = asyncio.run(asker.choose("What is it?", "Never refund.", ("procedure", "policy")))
    assert answer == "policy"
    assert asker.stats.calls == 1
    assert "Never refund." in model.last_request.messages[-1].content


def test_an_answer_outside_the_options_is_retried_then_dropped() -> None:
    model = ScriptedModel([structured({"answer": "maybe"}), structured({"answer": "perhaps"})])
    asker = Asker(model)
    assert asyncio.run(asker.yes_no("Is it?", "text")) is None
    assert asker.stats.failures == 1
    model.assert_all_used()


def test_an_outage_falls_back_to_the_rules() -> None:
    model = ScriptedModel([ModelUnavailable("the provider is down")])
    asker = Asker(model)
    assert asyncio.run(asker.phrase("Name it.", "text")) is None
    assert asker.stats.failures == 1
