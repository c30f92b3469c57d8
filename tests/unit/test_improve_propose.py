"""Change requests for a failure cluster: one schema-constrained question to a model (with the
cluster, failing transcripts and the spec outline), rule-made without one; and the sentence a
regression scenario checks."""

from __future__ import annotations

import asyncio

import pytest

from deputy.builder.changes import apply_change
from deputy.builder.scenarios import scenario_suite
from deputy.domain.improvement import FAILURE_CAUSES, FailureCause, FailureCluster
from deputy.improve.evaluate import evaluate_all
from deputy.improve.propose import change_request, regression_expectation
from deputy.llm.errors import ModelUnavailable
from deputy.testing import ScriptedModel, structured
from tests.unit.test_improve_conversations import (
    address_failure,
    exchange_failure,
    returns_only_spec,
)

REQUEST = (
    "Also handle exchanges of delivered items: authenticate the customer, collect the order id "
    "and every item to exchange, and offer another option of the same product."
)


def _cluster(
    cause: FailureCause = "missing_procedure", label: str = "exchanges of delivered items"
) -> FailureCluster:
    return FailureCluster(
        id="c1",
        cause=cause,
        label=label,
        conversation_ids=tuple(f"cnv_exchange_{i}" for i in range(6)),
        share=0.6,
    )


def test_with_a_model_one_question_shows_the_cluster_transcripts_and_outline() -> None:
    conversations = [exchange_failure(i) for i in range(6)]
    spec = returns_only_spec()
    evaluations = asyncio.run(evaluate_all(conversations, spec, None))
    model = ScriptedModel([structured({"change_request": REQUEST})])
    request = asyncio.run(change_request(_cluster(), conversations, evaluations, spec, model))
    model.assert_all_used()
    assert request == REQUEST
    prompt = model.last_request.messages[-1].content
    assert "Failure: missing_procedure" in prompt
    assert "What the customers wanted: exchanges of delivered items." in prompt
    assert "Conversations: 6 (60% of those evaluated)" in prompt
    assert prompt.count("<transcript id=") == 3  # at most three examples
    assert "I can only help with returns of delivered items" in prompt
    assert "- return_order_items: Return items of a delivered order" in prompt
    assert "handed to a human without need" in prompt  # the judge's reasoning is shown


def test_a_failing_model_falls_back_to_the_rule_made_request() -> None:
    conversations = [exchange_failure(0)]
    model = ScriptedModel([ModelUnavailable("timeout"), ModelUnavailable("timeout")])
    request = asyncio.run(change_request(_cluster(), conversations, [], returns_only_spec(), model))
    assert request == "Also handle exchanges of delivered items."


def test_a_small_local_model_is_not_asked_and_an_off_topic_answer_is_not_used() -> None:
    conversations = [exchange_failure(0)]
    spec = returns_only_spec()
    local = ScriptedModel([], name="local:qwen2.5-coder-1.5b")
    request = asyncio.run(change_request(_cluster(), conversations, [], spec, local))
    assert request == "Also handle exchanges of delivered items."
    assert local.requests == []
    assert asyncio.run(regression_expectation(_cluster(), request, local)).startswith(
        "The agent takes up"
    )

    copied = ScriptedModel(
        [structured({"change_request": "Also handle gift card balance questions."})]
    )
    request = asyncio.run(change_request(_cluster(), conversations, [], spec, copied))
    assert request == "Also handle exchanges of delivered items."


def test_without_a_model_a_missing_procedure_asks_the_builder_to_handle_it() -> None:
    spec = returns_only_spec()
    request = asyncio.run(change_request(_cluster(), [exchange_failure(0)], [], spec, None))
    assert request == "Also handle exchanges of delivered items."
    change = asyncio.run(apply_change(spec, scenario_suite(spec), request, model=None))
    assert not change.diff.empty
    assert any("exchanges_of_delivered_items" in line for line in change.applied)


def test_a_wrong_step_request_names_the_procedure_the_conversations_ran() -> None:
    cluster = FailureCluster(
        id="c2",
        cause="wrong_step",
        label="change the shipping address",
        conversation_ids=("cnv_address_0", "cnv_address_1"),
        share=0.2,
    )
    conversations = [address_failure(0), address_failure(1)]
    request = asyncio.run(change_request(cluster, conversations, [], returns_only_spec(), None))
    assert "procedure modify_order_address" in request
    assert '"change the shipping address"' in request


@pytest.mark.parametrize("cause", FAILURE_CAUSES)
def test_every_rule_made_request_is_one_the_builder_applies(cause: FailureCause) -> None:
    spec = returns_only_spec()
    cluster = _cluster(cause, "exchange the garden hose for a longer one")
    request = asyncio.run(change_request(cluster, [exchange_failure(0)], [], spec, None))
    change = asyncio.run(apply_change(spec, scenario_suite(spec), request, model=None))
    assert not change.diff.empty, (request, change.questions)


def test_the_expectation_comes_from_the_model_or_from_the_request() -> None:
    model = ScriptedModel([structured({"expectation": "The agent offers to exchange the item."})])
    said = asyncio.run(regression_expectation(_cluster(), REQUEST, model))
    assert said == "The agent offers to exchange the item."
    assert "<change>Also handle exchanges" in model.last_request.messages[-1].content

    rule = asyncio.run(regression_expectation(_cluster(), REQUEST, None))
    assert rule.startswith("The agent takes up the customer's request (exchanges of delivered")
    assert "instead of saying it cannot help" in rule
    tone = asyncio.run(regression_expectation(_cluster("tone"), "Be kind.", None))
    assert tone.endswith("as this rule says: Be kind.")
