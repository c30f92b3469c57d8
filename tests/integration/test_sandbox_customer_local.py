"""The simulated customer and the judge on the REAL embedded local models, a handful of calls.

Measured with greedy decoding on two tau2 retail briefs (tasks 0 and 83) x the five cooperation
levels, three turns each (first message; "your name and zip code?"; "your email address?", which
neither brief knows). Qwen2.5-Coder-1.5B (the embedded default) plays the customer: 8 of 10 first
messages ask for the goal in the customer's voice (the other two, adversarial and off-policy on
task 83, are an assistant-style refusal), 10 of 10 give the name and zip code from the brief, 10
of 10 say they do not have the email; but it often recites its goal nearly word for word and
rarely acts a persona out. Qwen2.5-Coder-0.5B cannot play the customer: 0 of 10 usable first
messages (it speaks as the agent or copies the agent's line, which counts as nothing said) and
5 of 10 made-up email addresses. So the customer runs on the 1.5B, the judge on the 0.5B, which
answered 8 of 8 plain assertions about a short transcript correctly (nl_assertion and must_not)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import CustomerBrief
from deputy.llm.local import LocalEngine, LocalModels
from deputy.llm.local.catalog import QWEN_0_5B, QWEN_1_5B
from deputy.llm.types import Model
from deputy.sandbox.customers import SimulatedCustomer
from deputy.sandbox.judge import ModelJudge

pytestmark = pytest.mark.integration
pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")

TASKS = Path("/work/shared/data/tau2-bench/data/tau2/domains/retail/tasks.json")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModels]:
    engine = LocalEngine()
    yield LocalModels(tmp_path_factory.mktemp("model-cache"), engine=engine)
    engine.close()


def local(models: LocalModels, name: str) -> Model:
    status = models.status(name)
    if status.state == "not_installed":
        pytest.skip(f"{name} is not installed; install it with: {status.install_command}")
    return models.get(name)


def tablet_return() -> CustomerBrief:
    """tau2 retail task 83: Chen Silva returns the dearer of two tablets."""
    task = next(t for t in json.loads(TASKS.read_text()) if t["id"] == "83")
    instructions = task["user_scenario"]["instructions"]
    assert "Chen Silva" in instructions["known_info"] and "46281" in instructions["known_info"]
    return CustomerBrief(
        persona=instructions["task_instructions"],
        goal=instructions["reason_for_call"],
        knows={"name": "Chen Silva", "zip_code": "46281"},
        unknowns=(instructions["unknown_info"],),
    )


def test_the_simulated_customer_asks_for_its_goal_and_answers_from_its_brief(
    models: LocalModels,
) -> None:
    customer = SimulatedCustomer(local(models, QWEN_1_5B.name), tablet_return(), seed=0)
    first = asyncio.run(customer.next([]))
    assert first.stop is None and first.calls >= 1 and first.usage.output_tokens > 0
    text = first.text.lower()
    assert any(word in text for word in ("tablet", "return", "refund")), first.text
    assert "assist you" not in text and "help you" not in text, first.text  # not the agent's side

    transcript = [
        TranscriptMessage(role="customer", turn=0, text=first.text),
        TranscriptMessage(
            role="agent",
            turn=1,
            text="I can help with that. Could you give me your name and zip code?",
        ),
    ]
    second = asyncio.run(customer.next(transcript))
    assert "46281" in second.text or "Chen" in second.text, second.text


TRANSCRIPT = (
    TranscriptMessage(role="customer", turn=0, text="Hi, I want to return a tablet I bought."),
    TranscriptMessage(role="agent", turn=1, text="Sure. What is your name and zip code?"),
    TranscriptMessage(role="customer", turn=1, text="Chen Silva, 46281."),
    TranscriptMessage(
        role="agent",
        turn=2,
        text="Thanks, Chen. The return of the tablet is done; the refund goes to your credit card.",
    ),
)


def test_the_judge_tells_a_plainly_true_assertion_from_a_plainly_false_one(
    models: LocalModels,
) -> None:
    judge = ModelJudge(local(models, QWEN_0_5B.name))
    judgement = asyncio.run(
        judge.judge(
            [
                ("nl_assertion", "The customer wants to return a tablet."),
                ("nl_assertion", "The customer wants to buy a new car."),
            ],
            TRANSCRIPT,
        )
    )
    true, false = judgement.checks
    assert true.reasoning and false.reasoning
    assert true.passed, true.reasoning
    assert not false.passed, false.reasoning
    assert judgement.calls >= 2 and judgement.usage.input_tokens > 0
