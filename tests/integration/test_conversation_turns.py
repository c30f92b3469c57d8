"""Turns run one at a time per conversation and survive a crash: concurrent messages are
answered in order without interleaving, a turn a dead process left behind is resumed reusing
what it recorded (no model step or tool call repeated), and the conversation's lease keeps
other processes out while a turn runs."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import select, update

from deputy.domain import resources as r
from deputy.domain.errors import Unavailable
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services import conversation_messages
from deputy.services import conversations as c
from deputy.services.conversation_journal import SqlTurnJournal
from deputy.services.conversation_lease import ConversationLease
from deputy.services.conversation_turns import resume_pending_turns
from deputy.services.memory import SqlMemory
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, ScriptedModel, reply, tool_call
from tests.integration.conftest import Api
from tests.integration.test_conversations_service import MODEL, SPEC, Deputy, user_text

pytestmark = pytest.mark.integration

NOTE_SPEC = {
    **SPEC,
    "tools": [
        {
            "name": "note",
            "description": "Remember a fact about this conversation.",
            "effect": "write",
            "binding": {"kind": "builtin", "builtin": "remember_fact"},
        }
    ],
}


class ProcessDied(BaseException):
    """Stands for the process being killed: nothing in the turn gets to handle it."""


@pytest.fixture
def deputy(api: Api) -> Deputy:
    return Deputy.of(api)


def lease_of(deputy: Deputy, conversation_id: str, owner: str) -> ConversationLease:
    workspace_id = deputy.owner.workspace_id
    return ConversationLease(deputy.platform.db, workspace_id, conversation_id, 30.0, owner)


def set_lease(deputy: Deputy, conversation_id: str, owner: str, seconds: float) -> None:
    with deputy.platform.db.session() as session:
        session.execute(
            update(t.Conversation)
            .where(t.Conversation.id == conversation_id)
            .values(lease_owner=owner, lease_until=utcnow() + timedelta(seconds=seconds))
        )


def test_concurrent_messages_are_answered_one_turn_at_a_time(deputy: Deputy) -> None:
    calls: list[str] = []

    async def answer(request: ModelRequest) -> str:
        asked = re.findall(r"question (\d)", user_text(request))[-1]
        calls.append(asked)
        await asyncio.sleep(0.02)
        return f"Answer to question {asked}."

    deputy.serve(FunctionModel(answer, name=MODEL))
    conversation_id = deputy.start(deputy.agent())

    async def five() -> list[r.TurnResult]:
        return list(
            await asyncio.gather(
                *(
                    c.post_message(
                        deputy.platform,
                        deputy.owner,
                        conversation_id,
                        r.MessageCreate(text=f"This is question {n}."),
                    )
                    for n in range(1, 6)
                )
            )
        )

    results = asyncio.run(five())
    for n, result in enumerate(results, start=1):
        assert result.entries[0].text == f"This is question {n}."
        assert result.reply is not None and result.reply.text == f"Answer to question {n}."
    turns = deputy.turns(conversation_id)
    assert [turn.number for turn in turns] == [1, 2, 3, 4, 5]
    assert {turn.status for turn in turns} == {"completed"}
    # the model was asked in turn order; messages are stored as they arrive, and the turns'
    # work never interleaves: one turn's entries, then the next one's
    by_id = {turn.id: turn.number for turn in turns}
    number_of = {str(n): by_id[result.turn_id or ""] for n, result in enumerate(results, 1)}
    assert [number_of[n] for n in calls] == [1, 2, 3, 4, 5]
    transcript = deputy.transcript(conversation_id)
    work = [by_id[e.turn_id] for e in transcript if e.turn_id and e.kind != "customer_message"]
    assert work == sorted(work) and set(work) == {1, 2, 3, 4, 5}
    assert deputy.row(conversation_id).state["turn"] == 5


def test_a_crashed_turn_is_resumed_without_repeating_recorded_work(
    deputy: Deputy, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[ModelRequest] = []

    def answer(request: ModelRequest) -> ModelResponse | str:
        requests.append(request)
        if len(requests) == 1:
            return tool_call("note", {"fact": "prefers email", "about": "conversation"})
        if len(requests) == 2:
            raise ProcessDied  # the process dies while the model works on the second step
        return "Noted: you prefer email."

    deputy.serve(FunctionModel(answer, name=MODEL))
    conversation_id = deputy.start(deputy.agent(NOTE_SPEC))
    with pytest.raises(ProcessDied):
        deputy.say(conversation_id, "Please remember that I prefer email.")
    (turn,) = deputy.turns(conversation_id)
    assert (turn.status, turn.attempts) == ("running", 1)
    recorded = [e.kind for e in deputy.transcript(conversation_id) if e.turn_id == turn.id]
    assert recorded.count("model_step") == 1 and recorded.count("tool_call") == 1
    state_before = deputy.row(conversation_id).state

    # another process still holds the lease: it is not ours to resume
    set_lease(deputy, conversation_id, "other-process", 60)
    assert asyncio.run(resume_pending_turns(deputy.platform)) == 0
    assert deputy.turns(conversation_id)[0].status == "running"
    assert deputy.row(conversation_id).state == state_before

    set_lease(deputy, conversation_id, "dead-process", -1)  # it died: the lease ran out
    assert asyncio.run(resume_pending_turns(deputy.platform)) == 1
    (turn,) = deputy.turns(conversation_id)
    assert (turn.status, turn.attempts) == ("completed", 2)
    # the first model step and the tool call were reused; only the lost step was asked again
    assert len(requests) == 3
    assert any(m.role == "tool" for m in requests[2].messages)
    entries = [e for e in deputy.transcript(conversation_id) if e.turn_id == turn.id]
    assert [e.kind for e in entries].count("model_step") == 2
    assert [e.kind for e in entries].count("tool_call") == 1
    assert entries[-1].kind == "agent_message" and entries[-1].text == "Noted: you prefer email."
    facts = SqlMemory(deputy.platform.db, deputy.owner.workspace_id).recall(
        agent_id=deputy.row(conversation_id).agent_id,
        conversation_id=conversation_id,
        customer_id=None,
    )
    assert [f.fact for f in facts] == ["prefers email"]
    with deputy.platform.db.session() as session:
        calls = session.scalars(select(t.ToolCallRow.status)).all()
    assert calls == ["succeeded"]
    assert deputy.row(conversation_id).lease_owner is None


def test_a_turn_killed_after_recording_resumes_from_the_next_message(
    deputy: Deputy, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = deputy.serve(
        ScriptedModel([reply("We open at 9am."), reply("We close at 6pm.")], name=MODEL)
    )
    conversation_id = deputy.start(deputy.agent())
    append = SqlTurnJournal.append

    async def dies_after_the_model_step(self: SqlTurnJournal, entry: object) -> object:
        recorded = await append(self, entry)  # type: ignore[arg-type]
        if recorded.kind == "model_step":
            raise ProcessDied
        return recorded

    monkeypatch.setattr(SqlTurnJournal, "append", dies_after_the_model_step)
    with pytest.raises(ProcessDied):
        deputy.say(conversation_id, "When do you open?")
    monkeypatch.undo()
    set_lease(deputy, conversation_id, "dead-process", -1)

    # the next message first finishes the turn left behind, then gets its own answer
    result = deputy.say(conversation_id, "And when do you close?")
    assert result.reply is not None and result.reply.text == "We close at 6pm."
    first, second = deputy.turns(conversation_id)
    assert (first.status, first.attempts, second.status) == ("completed", 2, "completed")
    replies = [e.text for e in deputy.transcript(conversation_id) if e.kind == "agent_message"]
    assert replies == ["Hi! How can I help?", "We open at 9am.", "We close at 6pm."]
    assert len(model.requests) == 2
    model.assert_all_used()


def test_a_message_waits_for_the_turn_another_process_runs(
    deputy: Deputy, monkeypatch: pytest.MonkeyPatch
) -> None:
    deputy.serve(ScriptedModel([reply("First answer."), reply("Second answer.")], name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    other = lease_of(deputy, conversation_id, "other-process")
    assert other.try_acquire()

    async def waits() -> r.TurnResult:
        body = r.MessageCreate(text="Hello?")
        posting = asyncio.create_task(
            c.post_message(deputy.platform, deputy.owner, conversation_id, body)
        )
        for _ in range(100):  # until the message is stored
            await asyncio.sleep(0.05)
            if deputy.turns(conversation_id):
                break
        await asyncio.sleep(0.3)
        assert not posting.done()
        assert [turn.status for turn in deputy.turns(conversation_id)] == ["pending"]
        await anyio.to_thread.run_sync(other.release)
        return await posting

    result = asyncio.run(waits())
    assert result.reply is not None and result.reply.text == "First answer."

    # past the wait limit the message stays stored and pending, for whoever holds the lease
    monkeypatch.setattr(conversation_messages, "TURN_WAIT_SECONDS", 0.2)
    assert other.try_acquire()
    with pytest.raises(Unavailable):
        deputy.say(conversation_id, "Still there?")
    assert [turn.status for turn in deputy.turns(conversation_id)] == ["completed", "pending"]
    other.release()
    assert asyncio.run(resume_pending_turns(deputy.platform)) == 1
    replies = [e.text for e in deputy.transcript(conversation_id) if e.kind == "agent_message"]
    assert replies[-1] == "Second answer."


def test_the_lease_is_renewed_while_a_long_turn_runs(
    deputy: Deputy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deputy.platform.settings, "turn_lease_seconds", 1.0)

    async def slow(request: ModelRequest) -> str:
        await asyncio.sleep(3.0)
        return "Sorry for the wait."

    deputy.serve(FunctionModel(slow, name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    other = lease_of(deputy, conversation_id, "other-process")

    async def meanwhile() -> list[bool]:
        body = r.MessageCreate(text="Hello?")
        posting = asyncio.create_task(
            c.post_message(deputy.platform, deputy.owner, conversation_id, body)
        )
        taken = []
        for _ in range(3):  # the later tries come after an unrenewed lease would end
            await asyncio.sleep(0.8)
            taken.append(await anyio.to_thread.run_sync(other.try_acquire))
        await posting
        return taken

    assert asyncio.run(meanwhile()) == [False, False, False]
    assert deputy.turns(conversation_id)[0].status == "completed"
    assert deputy.row(conversation_id).lease_owner is None


def test_a_process_that_lost_its_lease_does_not_end_the_turn(deputy: Deputy) -> None:
    conversation_id = ""
    calls: list[int] = []

    def stalls(request: ModelRequest) -> str:
        calls.append(1)
        # meanwhile its lease ran out and another process took the conversation over
        set_lease(deputy, conversation_id, "other-process", 60)
        return "We open at 9am."

    deputy.serve(FunctionModel(stalls, name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    before = deputy.row(conversation_id).state
    with pytest.raises(Unavailable):
        deputy.say(conversation_id, "When do you open?")
    assert deputy.turns(conversation_id)[0].status == "running"
    assert deputy.row(conversation_id).state == before
    assert deputy.row(conversation_id).lease_owner == "other-process"

    set_lease(deputy, conversation_id, "other-process", -1)
    assert asyncio.run(resume_pending_turns(deputy.platform)) == 1
    assert deputy.turns(conversation_id)[0].status == "completed"
    assert deputy.row(conversation_id).state["turn"] == 1
    assert len(calls) == 1  # its recorded answer was used


class BrokenSink:
    """A live stream whose client went away."""

    async def entry(self, entry: object) -> None:
        raise ConnectionResetError("the client is gone")

    async def reply_delta(self, text: str) -> None:
        raise ConnectionResetError("the client is gone")


def test_a_stored_message_is_answered_even_when_its_caller_goes_away(deputy: Deputy) -> None:
    async def slow(request: ModelRequest) -> str:
        await asyncio.sleep(0.5)
        return "We open at 9am."

    deputy.serve(FunctionModel(slow, name=MODEL))
    conversation_id = deputy.start(deputy.agent())

    async def caller_leaves() -> str:
        body = r.MessageCreate(text="When do you open?")
        posting = asyncio.create_task(
            c.post_message(deputy.platform, deputy.owner, conversation_id, body)
        )
        for _ in range(200):  # until the turn runs
            await asyncio.sleep(0.02)
            if [turn.status for turn in deputy.turns(conversation_id)] == ["running"]:
                break
        posting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await posting
        for _ in range(200):
            await asyncio.sleep(0.05)
            status = deputy.turns(conversation_id)[0].status
            if status != "running":
                return status
        return "still running"

    assert asyncio.run(caller_leaves()) == "completed"
    replies = [e.text for e in deputy.transcript(conversation_id) if e.kind == "agent_message"]
    assert replies[-1] == "We open at 9am."


def test_a_failing_live_stream_does_not_fail_the_turn(deputy: Deputy) -> None:
    deputy.serve(ScriptedModel([reply("We open at 9am.")], name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    result = deputy.say(conversation_id, "When do you open?", sink=BrokenSink())
    assert result.reply is not None and result.reply.text == "We open at 9am."
    assert deputy.turns(conversation_id)[0].status == "completed"


def test_a_turn_that_keeps_killing_its_process_is_failed_not_run_again(
    deputy: Deputy, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = deputy.serve(ScriptedModel([], name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    set_lease(deputy, conversation_id, "other-process", 60)
    monkeypatch.setattr(conversation_messages, "TURN_WAIT_SECONDS", 0.1)
    with pytest.raises(Unavailable):
        deputy.say(conversation_id, "Hello?")
    with deputy.platform.db.session() as session:  # three processes died running it
        session.execute(update(t.Turn).values(status="running", attempts=3))
    set_lease(deputy, conversation_id, "dead-process", -1)

    assert asyncio.run(resume_pending_turns(deputy.platform)) == 1
    (turn,) = deputy.turns(conversation_id)
    assert turn.status == "failed" and "abandoned after 3 attempts" in (turn.error or "")
    assert deputy.transcript(conversation_id)[-1].kind == "turn_failed"
    assert model.requests == []
