"""Transcript mining on real conversations: STAR dialogues (ride booking, apartment search) and
ABCD's sample conversations, read by the builder's own reader. Labels in the files (the STAR
task, the ABCD subflow) are used here only to check the result, never given to the miner."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from functools import cache

from deputy.builder.asker import Asker
from deputy.builder.mine import Mining, mine_transcripts
from deputy.builder.read import read_material
from deputy.builder.sources import Anchor, MaterialRef, ToolDescription, Transcript, Turn
from deputy.domain.spec import Procedure
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, structured
from tests.processes import SHARED_DATA

STAR = SHARED_DATA / "star" / "dialogues"
ABCD_SAMPLE = SHARED_DATA / "abcd" / "data" / "abcd_sample.json"


@cache
def star_task(task: str) -> tuple[Transcript, ...]:
    """The dialogues whose wizard could do only `task`, read as one uploaded JSON list."""
    dialogues = []
    for path in sorted(STAR.glob("*.json"), key=lambda p: int(p.stem)):
        dialogue = json.loads(path.read_text(encoding="utf-8"))
        if [c["Task"] for c in dialogue["Scenario"]["WizardCapabilities"]] == [task]:
            dialogues.append(dialogue)
    ref = MaterialRef(f"mat_{task}", f"{task}.json", "application/json")
    result = read_material(ref, json.dumps(dialogues).encode())
    assert result.kind == "transcripts"
    return result.transcripts


def abcd_sample() -> tuple[Transcript, ...]:
    ref = MaterialRef("mat_abcd", "abcd_sample.json", "application/json")
    return read_material(ref, ABCD_SAMPLE.read_bytes()).transcripts


def mine(transcripts: tuple[Transcript, ...], *procedures: Procedure) -> Mining:
    return asyncio.run(mine_transcripts(transcripts, procedures, (), asker=Asker(None)))


def ride_procedure() -> Procedure:
    return Procedure.model_validate(
        {
            "id": "book_ride",
            "title": "Book a ride",
            "when": "The customer needs a ride or a taxi from one place to another.",
            "steps": [{"id": "done", "kind": "end", "exit": "booked", "text": "Booked."}],
            "exits": [{"id": "booked", "outcome": "resolved"}],
        }
    )


@cache
def rides_and_apartments() -> tuple[Mining, dict[str, str]]:
    rides, apartments = star_task("ride_book"), star_task("apartment_search")
    truth = {t.id: "ride" for t in rides} | {t.id: "apartment" for t in apartments}
    return mine(rides + apartments, ride_procedure()), truth


def test_lexical_clustering_separates_ride_booking_from_apartment_search() -> None:
    mining, truth = rides_and_apartments()
    largest = sorted(mining.intents, key=lambda i: -len(i.transcripts))[:2]
    labels = [Counter(truth[t] for t in intent.transcripts) for intent in largest]
    assert {label.most_common(1)[0][0] for label in labels} == {"ride", "apartment"}
    for label in labels:
        (_, top), *rest = label.most_common()
        assert top >= 25 and sum(count for _, count in rest) <= 2, label
    grouped = sum(len(i.transcripts) for i in mining.intents)
    assert grouped >= 0.85 * len(truth)


def test_clusters_are_matched_to_the_procedure_that_covers_them_or_learned() -> None:
    mining, truth = rides_and_apartments()
    ride = next(i for i in mining.intents if truth[i.transcripts[0]] == "ride")
    apartment = max(
        (i for i in mining.intents if truth[i.transcripts[0]] == "apartment"),
        key=lambda i: len(i.transcripts),
    )
    assert ride.procedure == "book_ride" and ride.title == "Book a ride"
    assert apartment.procedure is None
    assert "apartment" in apartment.title.lower()
    assert [f.title for f in mining.flows].count(apartment.title) == 1
    assert all(f.title != "Book a ride" for f in mining.flows)
    for intent in mining.intents:  # each opening is the conversation's first real request
        for anchor in intent.openings:
            assert anchor.kind == "transcript" and anchor.conversation in intent.transcripts
            assert anchor.quote.startswith("customer: ")


def test_coverage_accounts_for_every_conversation() -> None:
    mining, truth = rides_and_apartments()
    spans = [item.span for item in mining.coverage]
    assert sorted(spans) == sorted(f"conversation {t}" for t in truth)
    mapped = [c for c in mining.coverage if c.status == "mapped"]
    assert any("procedures[book_ride]" in c.rules for c in mapped)
    assert all(c.reason for c in mining.coverage if c.status == "ignored")


def test_unusable_conversations_are_ignored_with_a_reason() -> None:
    ref = MaterialRef("mat_x", "x.json", "application/json")
    silent = Transcript(ref, "agent-only", (Turn(1, "agent", "Hello?"), Turn(2, "agent", "Bye")))
    greeting = Transcript(
        ref,
        "greeting",
        (Turn(1, "customer", "Hi!"), Turn(2, "agent", "Hello"), Turn(3, "customer", "Thanks")),
    )
    short = Transcript(ref, "short", (Turn(1, "customer", "Refund my order"),))
    mining = mine((silent, greeting, short, *abcd_sample()))
    reasons = {c.span: c.reason for c in mining.coverage if c.status == "ignored"}
    assert reasons == {
        "conversation agent-only": "no customer turns",
        "conversation greeting": "no customer request, only greetings",
        "conversation short": "the agent never answered",
    }
    assert len(mining.intents) == 3  # few conversations: each sample one is an intent


def test_refusal_escalation_and_identity_check_keep_their_turns() -> None:
    mining = mine(abcd_sample())
    cases = {(c.anchor.conversation, c.kind): c for c in mining.edge_cases}
    refusal = cases[("3592", "refusal")]
    assert refusal.anchor.turns == (18,)
    assert "more than 90 days" in refusal.text
    escalation = cases[("3592", "escalation")]
    assert escalation.anchor.turns == tuple(range(20, 28))  # the offer .. "let my manager know"
    assert "manager" in escalation.anchor.quote
    assert cases[("3592", "identity_check")].anchor.turns == (9,)
    assert cases[("3695", "limit")].text.startswith("Ok, all promo codes expire after 7 days")
    assert ("3695", "identity_check") not in cases  # "just to verify you tried the code?"
    provenance = refusal.anchor.provenance()
    assert provenance.kind == "transcript" and provenance.source == "mat_abcd"
    assert provenance.span == "conversation 3592, turn 18"


def test_the_flow_learned_from_ride_booking_asks_queries_then_confirms() -> None:
    mining = mine(star_task("ride_book"))
    largest = max(mining.intents, key=lambda i: len(i.transcripts))
    assert len(largest.transcripts) >= 25
    (flow,) = [f for f in mining.flows if f.title == largest.title]
    assert flow.origin == "transcripts"
    actions = [item.action for item in flow.items]
    asks = [i for i, item in enumerate(flow.items) if item.hint == "question"]
    check = next(i for i, a in enumerate(flow.items) if a.key == "ride_book_requesttype_check")
    confirm = actions.index("ride_ask_confirm_booking")
    book = next(i for i, a in enumerate(flow.items) if a.key == "ride_book_requesttype_book")
    assert asks[0] < check < confirm < book
    assert actions[asks[0]] == "ask_name"
    branches = dict(flow.items[confirm].branches)
    assert branches["yes"] == "ride_book_requesttype_book"
    transcripts = {t.id: t for t in star_task("ride_book")}
    for item in flow.items:  # every item is anchored to a real turn that says it
        (turn_index,) = item.anchor.turns
        turn = transcripts[item.anchor.conversation or ""].turns[turn_index - 1]
        assert turn.index == turn_index and turn.text == item.text


def test_unnamed_tool_actions_take_the_name_of_the_tool_they_match() -> None:
    ref = MaterialRef("mat_tools", "tools.json", "application/json")
    pull_up = ToolDescription(
        name="pull_up_account",
        description="Pull up the customer's account by full name or account id.",
        effect="read",
        effect_reason="it looks something up",
        parameters={"type": "object", "properties": {"customer_name": {"type": "string"}}},
        anchor=Anchor(kind="tool_description", label="pull_up_account", quote="", material=ref),
    )
    transcripts = abcd_sample()
    mining = asyncio.run(mine_transcripts(transcripts, (), (pull_up,), asker=Asker(None)))
    refund = next(f for f in mining.flows if f.anchor.conversation == "3592")
    (pulled,) = [item for item in refund.items if item.action == "pull_up_account"]
    assert pulled.anchor.turns == (7,) and pulled.text.startswith("Account has been pulled up")
    assert pulled.hint == "action"
    validation = [item for item in refund.items if "validation" in item.text]
    assert validation and validation[0].action is None  # no tool for it: a wording group


def test_the_model_titles_confirms_and_can_reject_edge_cases() -> None:
    def answer(request: ModelRequest) -> ModelResponse:
        schema = request.response_schema or {}
        options = schema["properties"]["answer"].get("enum")
        if options is None:
            return structured({"answer": "Return an item"})
        prompt = request.messages[-1].content
        if "I can escalate" in prompt:  # the model disagrees with this one
            return structured({"answer": "none of these"})
        return structured({"answer": options[0]})

    model = FunctionModel(answer)
    asker = Asker(model)
    mining = asyncio.run(mine_transcripts(abcd_sample(), (), (), asker=asker))
    assert {i.title for i in mining.intents} == {"Return an item"}
    kinds = {(c.anchor.conversation, c.kind): c for c in mining.edge_cases}
    assert kinds[("3592", "refusal")].anchor.turns == (18,)
    assert kinds[("3592", "escalation")].anchor.turns == (24, 25, 26, 27)
    assert asker.stats.calls == len(model.requests) > 0


def test_mining_nothing_gives_nothing() -> None:
    mining = mine(())
    assert mining == Mining((), (), (), ())


def test_a_material_read_twice_mines_the_same() -> None:
    first = mine(abcd_sample())
    second = mine(abcd_sample())
    assert first == second
