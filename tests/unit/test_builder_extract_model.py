"""The extraction with a model: it settles close classifications and phrases triggers; a
capable model also lists the details a section asks for; a failing model changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deputy.builder.asker import Asker
from deputy.builder.extract_plan import keeps_title
from deputy.builder.outline import outline_document
from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.types import ModelCapabilities, ModelRequest, ModelResponse
from deputy.testing.models import FunctionModel, structured
from tests.unit.builder_extract_setup import (
    document,
    domain_tools,
    extract_from,
    procedure,
    retail_policy,
)

SHIPPING = b"""# Shipping

Orders leave the warehouse within two days.

You must never promise a delivery date.
"""
SMALL = ModelCapabilities(native_tools=False, native_json_schema=True, context_tokens=4096)


def _model(answers: dict[str, Callable[[ModelRequest], Any]], **kw: Any) -> FunctionModel:
    def answer(request: ModelRequest) -> ModelResponse:
        return structured(answers[request.schema_name or ""](request))

    return FunctionModel(answer, **kw)


def _prompt(request: ModelRequest) -> str:
    return request.messages[-1].content or ""


def test_without_a_model_a_close_call_becomes_a_question() -> None:
    source = document(SHIPPING, "shipping.md", "text/markdown")
    extraction = extract_from(outline_document(source), ())
    assert [s.title for s in extraction.knowledge] == ["Shipping"]
    (question,) = extraction.questions
    assert question.kind == "ambiguous" and "Shipping" in question.text
    assert [p.text for p in extraction.policies] == ["You must never promise a delivery date."]


def test_a_model_settles_a_close_classification() -> None:
    source = document(SHIPPING, "shipping.md", "text/markdown")
    asked: list[str] = []

    def choose(request: ModelRequest) -> dict[str, str]:
        asked.append(_prompt(request))
        return {"answer": "policy"}

    model = _model({"choice": choose}, name="local:small", capabilities=SMALL)
    extraction = extract_from(outline_document(source), (), Asker(model))
    assert extraction.knowledge == ()
    assert not extraction.questions
    assert "Answer with one of: knowledge, policy." in asked[0]
    assert [p.text for p in extraction.policies] == ["You must never promise a delivery date."]
    statuses = {c.quote: c.status for c in extraction.coverage}
    assert statuses == {
        "Orders leave the warehouse within two days.": "ignored",
        "You must never promise a delivery date.": "mapped",
    }


def test_a_small_model_phrases_triggers_and_is_not_asked_for_readings() -> None:
    def phrase(request: ModelRequest) -> dict[str, str]:
        title = _prompt(request).split("procedure '", 1)[1].split("'", 1)[0]
        return {"answer": f"The customer wants to {title.lower()} (model)."}

    model = _model({"phrase": phrase}, name="local:small", capabilities=SMALL)
    asker = Asker(model)
    extraction = extract_from(outline_document(retail_policy()), domain_tools("retail"), asker)
    cancel = procedure(extraction, "cancel_pending_order")
    assert cancel.when == "The customer wants to cancel pending order (model)."
    assert {r.schema_name for r in model.requests} == {"phrase"}
    assert asker.stats.calls == len(model.requests) == 7


def test_a_capable_model_adds_the_details_the_rules_missed() -> None:
    def reading(request: ModelRequest) -> dict[str, Any]:
        if "Procedure: Cancel pending order" not in _prompt(request):
            return {"trigger": "The customer wants something.", "details": []}
        return {
            "trigger": "The customer wants to cancel an order that has not shipped.",
            "details": [{"name": "gift receipt number", "allowed_values": []}],
        }

    model = _model({"answer": reading, "phrase": lambda _: {"answer": "unused"}})
    asker = Asker(model)
    assert asker.capable
    extraction = extract_from(outline_document(retail_policy()), domain_tools("retail"), asker)
    cancel = procedure(extraction, "cancel_pending_order")
    assert cancel.when == "The customer wants to cancel an order that has not shipped."
    asks = [s.slot for s in cancel.steps if s.kind == "ask"]
    assert asks == ["order_id", "reason", "gift_receipt_number"]
    added = next(s for s in cancel.steps if s.slot == "gift_receipt_number")
    assert added.provenance is not None and added.provenance.span == "lines 86-92"


def test_a_failing_model_leaves_the_rules_answers() -> None:
    def fail(request: ModelRequest) -> ModelResponse:
        raise ModelOutputInvalid("no valid answer")

    asker = Asker(FunctionModel(fail, name="local:small", capabilities=SMALL))
    with_model = extract_from(outline_document(retail_policy()), domain_tools("retail"), asker)
    without = extract_from(outline_document(retail_policy()), domain_tools("retail"))
    assert with_model.procedures == without.procedures
    assert with_model.policies == without.policies
    assert asker.stats.failures == asker.stats.calls > 0


@pytest.mark.parametrize(
    ("phrased", "kept"),
    [
        ("The customer wants to exchange items of a delivered order.", True),
        ("The customer wants to place a new order.", False),
        ("The customer wants help.", False),
    ],
)
def test_a_model_trigger_must_name_what_the_title_names(phrased: str, kept: bool) -> None:
    assert keeps_title(phrased, "Exchange delivered order") is kept
