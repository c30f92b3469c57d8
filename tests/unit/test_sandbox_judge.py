"""The natural-language judge: one schema-constrained question per assertion over a compact
transcript; `must_not` assertions are inverted (the check passes when the agent did not do it);
the reasoning is kept; a judge that cannot answer fails the check; long transcripts are cut in
the middle to fit the model's context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from deputy.domain.sandbox_results import CheckKind, TranscriptMessage
from deputy.llm.errors import ModelOutputInvalid, ModelUnavailable
from deputy.llm.types import ModelCapabilities, ModelRequest, ModelResponse, Usage
from deputy.sandbox.judge import JUDGE_SCHEMA, ModelJudge, render_transcript, transcript_budget
from deputy.sandbox.ports import Judgement
from deputy.testing import FunctionModel, ScriptedModel, reply, structured

EXCHANGE = (
    TranscriptMessage(role="customer", turn=0, text="I want to exchange my keyboard, #W2378156."),
    TranscriptMessage(role="agent", turn=1, text="Sure. What is your name and zip code?"),
    TranscriptMessage(role="customer", turn=1, text="Yusuf Rossi, 19122."),
    TranscriptMessage(
        role="tool",
        turn=2,
        tool="find_user_id_by_name_zip",
        arguments={"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"},
        ok=True,
    ),
    TranscriptMessage(
        role="tool", turn=2, tool="get_order_details", arguments={"order_id": "#W0"}, ok=False
    ),
    TranscriptMessage(role="event", turn=2, text="handoff: the customer asked for a human"),
    TranscriptMessage(role="agent", turn=2, text="I'm transferring you to a colleague."),
)


def verdict(holds: bool, reasoning: str = "The agent says so in its last line.") -> ModelResponse:
    return structured({"reasoning": reasoning, "holds": holds}, usage=Usage(300, 40))


def run(
    judge: ModelJudge,
    assertions: Sequence[tuple[CheckKind, str]],
    transcript: Sequence[TranscriptMessage] = EXCHANGE,
) -> Judgement:
    return asyncio.run(judge.judge(assertions, transcript))


def test_an_assertion_that_holds_passes_with_the_judges_reasoning() -> None:
    model = ScriptedModel([verdict(True, "The agent asked for the name and zip code.")])
    judgement = run(ModelJudge(model), [("nl_assertion", "The agent asks for the zip code.")])
    (check,) = judgement.checks
    assert check.kind == "nl_assertion" and check.passed
    assert check.detail == "The agent asks for the zip code."
    assert check.reasoning == "The agent asked for the name and zip code."
    assert judgement.calls == 1 and judgement.usage == Usage(300, 40)
    request = model.last_request
    assert request.response_schema == JUDGE_SCHEMA and request.temperature == 0.0
    assert "Statement: The agent asks for the zip code." in request.messages[-1].content


def test_an_assertion_that_does_not_hold_fails() -> None:
    model = ScriptedModel([verdict(False, "The agent never offers a refund.")])
    (check,) = run(ModelJudge(model), [("nl_assertion", "The agent offers a refund.")]).checks
    assert not check.passed and check.reasoning == "The agent never offers a refund."


@pytest.mark.parametrize(("did_it", "passed"), [(True, False), (False, True)])
def test_a_must_not_asks_whether_the_agent_did_it_and_passes_when_it_did_not(
    did_it: bool, passed: bool
) -> None:
    model = ScriptedModel([verdict(did_it)])
    forbidden = "reveal any personal or account information of another customer"
    (check,) = run(ModelJudge(model), [("must_not", forbidden)]).checks
    assert check.kind == "must_not" and check.passed is passed and check.detail == forbidden
    question = model.last_request.messages[-1].content
    assert f"the agent did the following: {forbidden}" in question
    assert "did the agent do it?" in question


def test_each_assertion_is_its_own_question_answered_in_order() -> None:
    model = ScriptedModel([verdict(True), verdict(False), verdict(False)])
    assertions: list[tuple[CheckKind, str]] = [
        ("nl_assertion", "The agent looks the customer up."),
        ("nl_assertion", "The exchange is completed."),
        ("must_not", "call exchange_delivered_order_items before the customer confirms"),
    ]
    judgement = run(ModelJudge(model), assertions)
    assert [(c.kind, c.detail, c.passed) for c in judgement.checks] == [
        ("nl_assertion", "The agent looks the customer up.", True),
        ("nl_assertion", "The exchange is completed.", False),
        ("must_not", "call exchange_delivered_order_items before the customer confirms", True),
    ]
    assert judgement.calls == 3 and judgement.usage == Usage(900, 120)
    for request, (_, assertion) in zip(model.requests, assertions, strict=True):
        assert assertion in request.messages[-1].content


def test_nothing_to_judge_costs_nothing() -> None:
    judgement = run(ModelJudge(ScriptedModel()), [])
    assert judgement == Judgement(checks=())


def test_a_judge_that_cannot_be_reached_fails_the_check_and_says_why() -> None:
    model = ScriptedModel([ModelUnavailable("the provider is down"), verdict(True)])
    judgement = run(
        ModelJudge(model),
        [("must_not", "insult the customer"), ("nl_assertion", "The agent is polite.")],
    )
    failed, answered = judgement.checks
    assert not failed.passed and failed.reasoning is None  # a must_not is never passed unjudged
    assert failed.detail.startswith("the judge could not answer (the provider is down)")
    assert failed.detail.endswith("insult the customer")
    assert answered.passed


def test_output_that_never_fits_the_schema_fails_the_check_and_counts_every_attempt() -> None:
    model = ScriptedModel(
        [
            reply("It holds.", usage=Usage(300, 3)),
            reply('{"holds": "yes"}', usage=Usage(350, 6)),
        ]
    )
    judgement = run(ModelJudge(model), [("nl_assertion", "The agent is polite.")])
    (check,) = judgement.checks
    assert not check.passed and "the judge could not answer" in check.detail
    assert judgement.calls == 2 and judgement.usage == Usage(650, 9)
    model.assert_all_used()


def test_an_invalid_answer_is_retried_before_it_counts() -> None:
    model = ScriptedModel([reply("holds: true"), verdict(True)])
    judgement = run(ModelJudge(model), [("nl_assertion", "The agent is polite.")])
    assert judgement.checks[0].passed and judgement.calls == 2


def test_a_model_error_raised_from_the_answer_fails_the_check() -> None:
    model = ScriptedModel([ModelOutputInvalid("grammar failed")])
    (check,) = run(ModelJudge(model), [("nl_assertion", "The agent is polite.")]).checks
    assert not check.passed and "grammar failed" in check.detail


def test_only_model_judged_kinds_are_accepted() -> None:
    with pytest.raises(ValueError, match="not db"):
        run(ModelJudge(ScriptedModel()), [("db", "the database matches")])


# -- the transcript the judge reads ---------------------------------------------------------------


def test_the_transcript_is_rendered_compactly_with_tool_calls_and_their_outcome() -> None:
    rendered = render_transcript(EXCHANGE, 10_000)
    assert rendered.splitlines() == [
        "Customer: I want to exchange my keyboard, #W2378156.",
        "Agent: Sure. What is your name and zip code?",
        "Customer: Yusuf Rossi, 19122.",
        'Tool: find_user_id_by_name_zip({"first_name": "Yusuf", "last_name": "Rossi", '
        '"zip": "19122"}) -> ok',
        'Tool: get_order_details({"order_id": "#W0"}) -> failed',
        "Event: handoff: the customer asked for a human",
        "Agent: I'm transferring you to a colleague.",
    ]


def test_a_long_transcript_keeps_its_start_and_end_and_says_what_was_cut() -> None:
    transcript = [
        TranscriptMessage(
            role="customer" if i % 2 == 0 else "agent", turn=i // 2, text=f"message {i} " * 10
        )
        for i in range(200)
    ]
    rendered = render_transcript(transcript, 3000)
    lines = rendered.splitlines()
    assert len(rendered) <= 3000 + 100
    assert lines[0].startswith("Customer: message 0 ")
    assert lines[-1].startswith("Agent: message 199 ")
    marker = next(line for line in lines if line.startswith("[..."))
    cut = 200 - (len(lines) - 1)
    assert marker == f"[... {cut} line(s) cut from the middle of the conversation to fit ...]"
    assert cut > 150


def test_one_huge_line_is_cut_so_it_cannot_crowd_out_the_rest() -> None:
    blob = {"items": ["x" * 40] * 200}
    rendered = render_transcript(
        [TranscriptMessage(role="tool", turn=1, tool="bulk", arguments=blob, ok=True)], 10_000
    )
    assert len(rendered) <= 1200 and rendered.endswith("[... cut ...]")


def test_the_transcript_is_cut_to_the_judges_context_window() -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return json.dumps({"reasoning": "The start and end show it.", "holds": True})

    small = ModelCapabilities(native_tools=False, native_json_schema=True, context_tokens=2048)
    model = FunctionModel(answer, capabilities=small)
    long = [
        TranscriptMessage(role="agent", turn=i, text=f"step {i}: " + "details " * 30)
        for i in range(100)
    ]
    judge = ModelJudge(model)
    assert judge.max_transcript_chars == transcript_budget(model) < 25_000
    assert run(judge, [("nl_assertion", "The agent explains each step.")], long).checks[0].passed
    prompt = seen[0].messages[-1].content
    assert "step 0:" in prompt and "step 99:" in prompt and "cut from the middle" in prompt
    assert len(prompt) < 2048 * 3
