"""The conversation judge: one schema-constrained question per conversation with a model, its
verdict combined with the signals, and the signals alone without a model or when it fails."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.improve.evaluate import EVALUATION_SCHEMA, ConversationJudge, evaluate_all
from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, ScriptedModel, structured
from tests.unit.test_improve_conversations import (
    address_failure,
    agent,
    conversation,
    customer,
    exchange_failure,
    handoff,
    resolved_return,
    returns_only_spec,
)


def _answer(**changes: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "intent": "exchange a delivered item",
        "reasoning": "The customer asked to exchange the hose; the agent only offered a return.",
        "resolved": False,
        "policy_adherence": True,
        "tone_ok": True,
        "cause": "missing_procedure",
    }
    return answer | changes


def test_the_judge_asks_one_question_with_the_spec_and_the_transcript() -> None:
    model = ScriptedModel([structured(_answer())])
    spec = returns_only_spec()
    evaluation = asyncio.run(ConversationJudge(model).evaluate(exchange_failure(0), spec))
    model.assert_all_used()
    request = model.last_request
    assert request.response_schema is not None
    assert request.response_schema["properties"]["cause"]["enum"] == list(
        EVALUATION_SCHEMA["properties"]["cause"]["enum"]
    )
    prompt = request.messages[-1].content
    assert "return_order_items: The customer wants to return items" in prompt
    assert "authenticate_first:" in prompt
    assert "Tone: polite, precise and brief" in prompt
    assert "Customer: Hi, I'd like to exchange the garden hose" in prompt
    assert "Outcome recorded by the runtime: escalated." in prompt
    assert "exchange_order_items" not in prompt
    assert evaluation.failed
    assert evaluation.cause == "missing_procedure"
    assert evaluation.intent == "exchange a delivered item"
    assert evaluation.judged_by == "test:scripted"
    assert evaluation.signals.negative_feedback
    assert evaluation.conversation_id == "cnv_exchange_0"
    assert evaluation.agent_version == 3


def test_a_resolved_verdict_with_a_needless_handoff_still_fails() -> None:
    model = ScriptedModel([structured(_answer(resolved=True, cause="none"))])
    evaluation = asyncio.run(
        ConversationJudge(model).evaluate(exchange_failure(1), returns_only_spec())
    )
    assert evaluation.resolved
    assert evaluation.failed
    assert "handed to a human without need" in evaluation.reasoning
    # the judge saw no failure, so the signals name the cause
    assert evaluation.cause == "missing_procedure"


def test_a_handoff_the_customer_asked_for_is_no_failure() -> None:
    made = conversation(
        "c",
        customer("I'd like to speak with a person about my order, please."),
        handoff("customer_request"),
        outcome="escalated",
        status="human",
    )
    model = ScriptedModel(
        [structured(_answer(resolved=True, cause="none", intent="talk to a human"))]
    )
    evaluation = asyncio.run(ConversationJudge(model).evaluate(made, returns_only_spec()))
    assert not evaluation.failed
    assert evaluation.cause is None


def test_policy_or_tone_failures_fail_the_conversation() -> None:
    def answer(request: ModelRequest) -> ModelResponse:
        del request
        return structured(_answer(resolved=True, tone_ok=False, cause="tone"))

    evaluation = asyncio.run(
        ConversationJudge(FunctionModel(answer)).evaluate(resolved_return(0), returns_only_spec())
    )
    assert evaluation.failed
    assert evaluation.cause == "tone"
    assert not evaluation.tone_ok


def test_a_long_intent_is_cut_to_eight_words() -> None:
    long = "exchange the blue garden hose from my last order for a longer one"
    model = ScriptedModel([structured(_answer(intent=long))])
    evaluation = asyncio.run(
        ConversationJudge(model).evaluate(exchange_failure(0), returns_only_spec())
    )
    assert evaluation.intent == "exchange the blue garden hose from my last"


def test_a_model_error_falls_back_to_the_signals_and_says_so() -> None:
    model = ScriptedModel([ModelUnavailable("connection refused")])
    evaluation = asyncio.run(
        ConversationJudge(model).evaluate(exchange_failure(2), returns_only_spec())
    )
    assert evaluation.judged_by is None
    assert "judge model test:scripted failed (connection refused)" in evaluation.reasoning
    assert evaluation.failed
    assert evaluation.cause == "missing_procedure"


def test_an_answer_that_never_fits_the_schema_falls_back_too() -> None:
    model = ScriptedModel(["not json", json.dumps({"intent": "x"})])
    evaluation = asyncio.run(
        ConversationJudge(model).evaluate(resolved_return(0), returns_only_spec())
    )
    model.assert_all_used()  # two attempts, then the signals
    assert evaluation.judged_by is None
    assert "failed" in evaluation.reasoning
    assert not evaluation.failed
    assert evaluation.resolved


def test_without_a_model_the_signals_decide() -> None:
    judge = ConversationJudge(None)
    spec = returns_only_spec()
    exchange = asyncio.run(judge.evaluate(exchange_failure(0), spec))
    assert exchange.failed and not exchange.resolved
    assert exchange.cause == "missing_procedure"
    assert exchange.intent == "exchange the garden hose for the 100ft one"
    assert "handed to a human without need" in exchange.reasoning
    assert exchange.judged_by is None

    address = asyncio.run(judge.evaluate(address_failure(0), spec))
    assert address.failed and address.cause == "tool_error"
    assert address.intent == "change the shipping address"

    fine = asyncio.run(judge.evaluate(resolved_return(0), spec))
    assert not fine.failed and fine.resolved and fine.cause is None


def test_signal_causes_for_guardrails_and_wrong_steps() -> None:
    spec = returns_only_spec()
    blocked = conversation(
        "blocked",
        customer("Please cancel order #W2974929, I ordered the wrong skateboard."),
        TranscriptMessage(
            role="event",
            turn=1,
            text="guardrail input: block",
            data={"kind": "guardrail", "stage": "input", "action": "block"},
        ),
        agent("I can't continue with that request."),
        handoff("repeated_failure", turn=2),
        outcome="escalated",
        status="human",
    )
    wrong = conversation(
        "wrong",
        customer("I want to return the dumbbell set from order #W9077205."),
        TranscriptMessage(
            role="event",
            turn=1,
            data={"kind": "procedure", "procedure": "return_order_items", "event": "started"},
        ),
        agent("Which payment method should receive the refund?"),
        customer("My PayPal. Why do you keep asking, I told you already.", turn=2),
        customer("I already told you: PayPal!", turn=3),
        outcome="abandoned",
    )
    judge = ConversationJudge(None)
    assert asyncio.run(judge.evaluate(blocked, spec)).cause == "guardrail_false_positive"
    assert asyncio.run(judge.evaluate(wrong, spec)).cause == "wrong_step"


def test_evaluate_all_reports_progress_in_order() -> None:
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    conversations = [exchange_failure(0), resolved_return(1), address_failure(0)]
    evaluations = asyncio.run(evaluate_all(conversations, returns_only_spec(), None, progress))
    assert [e.conversation_id for e in evaluations] == [c.id for c in conversations]
    assert [e.failed for e in evaluations] == [True, False, True]
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_an_intent_the_judge_could_not_name_falls_back_to_the_customers_words() -> None:
    """A small judge answers "N/A" for intents it cannot name; each such answer would
    otherwise be a cluster of its own."""
    model = ScriptedModel([structured(_answer(intent="N/A"))])
    evaluation = asyncio.run(
        ConversationJudge(model).evaluate(exchange_failure(0), returns_only_spec())
    )
    assert evaluation.intent and evaluation.intent.lower() != "n/a"
    assert "exchange" in evaluation.intent.lower()
