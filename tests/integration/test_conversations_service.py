"""Conversations through the services on the real database: a message is stored before the
agent works on it and answered with every step on the transcript, live events follow it, a
failed turn leaves the message and the state it started from, repeats are answered once, the
customer's PII is masked in storage while the agent reads their words, and channel keys and
workspaces only see their own conversations."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, InvalidRequest, NotFound, Unavailable
from deputy.domain.tenancy import Principal
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Model, ModelRequest
from deputy.runtime.ports import EventSink
from deputy.services import agents, keys
from deputy.services import conversations as c
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.testing import FunctionModel, ScriptedModel, reply
from deputy.testing.runtime import CollectingSink
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

MODEL = "openai:gpt-test"
SPEC: dict[str, Any] = {
    "name": "Shop helper",
    "goal": "Answer questions about the shop.",
    "mode": "reasoning",
    "escalation": {"default_queue": "support"},
    "channels": {"chat": {"greeting": "Hi! How can I help?"}},
}


@dataclass
class Deputy:
    """The platform of the `api` fixture driven through the conversation services."""

    platform: Platform
    owner: Principal
    api: Api
    models: dict[str, Model] = field(default_factory=dict)

    @classmethod
    def of(cls, api: Api) -> Deputy:
        return cls(api.platform, keys.authenticate(api.platform, api.owner_key), api)

    def serve(self, model: Model) -> Model:
        hub = self.platform.models
        hub.root = ModelRegistry(
            hub.base_settings,
            local=hub.local,
            usage_sink=DatabaseUsageSink(self.platform.db),
            served={MODEL: model},
        )
        return model

    def agent(self, spec: dict[str, Any] | None = None, name: str = "shop") -> str:
        agent = agents.create_agent(self.platform, self.owner, r.AgentCreate(name=name))
        agents.update_agent(self.platform, self.owner, agent.id, r.AgentUpdate(model=MODEL))
        body = r.VersionCreate(spec=spec or SPEC)
        agents.create_version(self.platform, self.owner, agent.id, body)
        return agent.id

    def start(self, agent_id: str, principal: Principal | None = None, **body: Any) -> str:
        create = r.ConversationCreate(agent_id=agent_id, **body)
        return c.create_conversation(self.platform, principal or self.owner, create).id

    def say(
        self,
        conversation_id: str,
        text: str,
        principal: Principal | None = None,
        *,
        client_message_id: str | None = None,
        sink: EventSink | None = None,
    ) -> r.TurnResult:
        body = r.MessageCreate(text=text, client_message_id=client_message_id)
        return asyncio.run(
            c.post_message(self.platform, principal or self.owner, conversation_id, body, sink=sink)
        )

    def transcript(self, conversation_id: str) -> list[r.TranscriptEntry]:
        return c.list_entries(self.platform, self.owner, conversation_id).entries

    def turns(self, conversation_id: str) -> list[t.Turn]:
        with self.platform.db.session() as session:
            query = select(t.Turn).where(t.Turn.conversation_id == conversation_id)
            return list(session.scalars(query.order_by(t.Turn.number)))

    def row(self, conversation_id: str) -> t.Conversation:
        with self.platform.db.session() as session:
            return session.get_one(t.Conversation, conversation_id)

    def member_key(self, kind: str = "member", **body: Any) -> Principal:
        created = keys.create_key(
            self.platform, self.owner, r.KeyCreate(name=f"{kind} key", kind=kind, **body)
        )
        return keys.authenticate(self.platform, created.secret)


def user_text(request: ModelRequest) -> str:
    return "\n".join(m.content for m in request.messages if m.role == "user")


@pytest.fixture
def deputy(api: Api) -> Deputy:
    return Deputy.of(api)


def test_a_message_is_answered_with_every_step_on_the_transcript(deputy: Deputy) -> None:
    model = deputy.serve(ScriptedModel([reply("We open at 9am.")], name=MODEL))
    conversation_id = deputy.start(
        deputy.agent(), customer=r.CustomerRef(external_id="u-1"), context={"user_id": "u-1"}
    )
    sink = CollectingSink()
    result = deputy.say(conversation_id, "When do you open?", sink=sink)

    assert result.reply is not None and result.reply.text == "We open at 9am."
    assert result.conversation.status == "active" and result.conversation.language == "en"
    kinds = [e.kind for e in result.entries]
    assert kinds[0] == "customer_message" and kinds[-1] == "agent_message"
    assert "model_step" in kinds
    assert {e.turn_id for e in result.entries} == {result.turn_id}
    transcript = deputy.transcript(conversation_id)
    assert [e.seq for e in transcript] == list(range(1, len(transcript) + 1))
    assert (transcript[0].kind, transcript[0].text) == ("agent_message", "Hi! How can I help?")
    assert transcript[1:] == result.entries
    assert result.conversation.last_seq == transcript[-1].seq
    # the caller's sink saw the customer's message, the turn's entries and the approved reply
    assert [e.id for e in sink.entries] == [e.id for e in result.entries]
    assert "".join(sink.deltas) == "We open at 9am."
    (turn,) = deputy.turns(conversation_id)
    assert (turn.status, turn.attempts, turn.inbound_entry_id) == (
        "completed",
        1,
        result.entries[0].id,
    )
    state = deputy.row(conversation_id).state
    assert state["turn"] == 1 and state["context"] == {"user_id": "u-1"}
    assert model.requests and "When do you open?" in user_text(model.requests[0])


def test_live_events_follow_the_turn_after_each_commit(deputy: Deputy) -> None:
    deputy.serve(ScriptedModel([reply("We open at 9am. We close at 6pm.")], name=MODEL))
    conversation_id = deputy.start(deputy.agent())

    async def follow() -> tuple[r.TurnResult, list[r.ConversationEvent]]:
        received: list[r.ConversationEvent] = []
        async with deputy.platform.events.subscribe(conversation_id) as events:
            body = r.MessageCreate(text="When are you open?")
            result = await c.post_message(deputy.platform, deputy.owner, conversation_id, body)
            async for event in events:
                received.append(event)
                if event.type == "turn.completed":
                    break
        return result, received

    result, events = asyncio.run(follow())
    entries = [e.entry for e in events if e.type == "entry"]
    assert [e.id for e in entries if e is not None] == [e.id for e in result.entries]
    deltas = [e.text for e in events if e.type == "reply.delta"]
    assert deltas == ["We open at 9am. ", "We close at 6pm."]
    last = events[-1]
    assert last.type == "turn.completed" and last.conversation is not None
    assert last.conversation.last_seq == result.entries[-1].seq


def test_a_failed_turn_keeps_the_message_and_the_state_it_started_from(deputy: Deputy) -> None:
    model = deputy.serve(
        ScriptedModel(
            [RuntimeError("the model process crashed"), reply("Hello again!")], name=MODEL
        )
    )
    conversation_id = deputy.start(deputy.agent(), context={"user_id": "u-9"})
    before = deputy.row(conversation_id).state

    with pytest.raises(Unavailable) as raised:
        deputy.say(conversation_id, "Hello?")
    assert raised.value.details["error"] == "RuntimeError"
    (turn,) = deputy.turns(conversation_id)
    assert raised.value.details["turn_id"] == turn.id
    assert turn.status == "failed" and "the model process crashed" in (turn.error or "")
    kinds = [e.kind for e in deputy.transcript(conversation_id)]
    assert kinds[1] == "customer_message" and kinds[-1] == "turn_failed"
    assert "agent_message" not in kinds[1:]
    assert deputy.row(conversation_id).state == before

    after = deputy.say(conversation_id, "Hello??")
    assert after.reply is not None and after.reply.text == "Hello again!"
    assert deputy.row(conversation_id).state["turn"] == 1
    model.assert_all_used()


def test_a_repeated_client_message_id_returns_the_first_turn(deputy: Deputy) -> None:
    model = deputy.serve(ScriptedModel([reply("We open at 9am.")], name=MODEL))
    conversation_id = deputy.start(deputy.agent())
    first = deputy.say(conversation_id, "When do you open?", client_message_id="msg-1")
    again = deputy.say(conversation_id, "When do you open?", client_message_id="msg-1")
    assert again.turn_id == first.turn_id
    assert again.entries == first.entries and again.reply == first.reply
    assert len(model.requests) == 1
    messages = [e for e in deputy.transcript(conversation_id) if e.kind == "customer_message"]
    assert len(messages) == 1 and messages[0].data == {"client_message_id": "msg-1"}


def test_pii_is_masked_in_storage_while_the_agent_reads_the_real_words(deputy: Deputy) -> None:
    seen: list[str] = []

    def answer(request: ModelRequest) -> str:
        seen.append(user_text(request))
        return "Thanks, we will write to you."

    deputy.serve(FunctionModel(answer, name=MODEL))
    spec = {**SPEC, "guardrails": {"preset": "standard", "mask_pii": True}}
    conversation_id = deputy.start(deputy.agent(spec))
    email = "jane.doe@example.com"
    result = deputy.say(conversation_id, f"Please write to me at {email} about my order.")

    assert result.reply is not None
    assert any(email in text for text in seen)
    stored = result.entries[0]
    assert stored.kind == "customer_message" and email not in stored.text
    assert "about my order" in stored.text
    for entry in deputy.transcript(conversation_id):
        assert email not in entry.text + json.dumps(entry.data)


def test_creating_checks_the_agent_and_keeps_customer_and_context(deputy: Deputy) -> None:
    with pytest.raises(NotFound):
        deputy.start("agt_unknown")
    bare = agents.create_agent(deputy.platform, deputy.owner, r.AgentCreate(name="draft"))
    with pytest.raises(InvalidRequest):
        deputy.start(bare.id)
    agent_id = deputy.agent()
    customer = r.CustomerRef(channel="web", external_id="visitor-7", display_name="Ann")
    created = c.create_conversation(
        deputy.platform,
        deputy.owner,
        r.ConversationCreate(agent_id=agent_id, customer=customer, context={"user_id": "u-7"}),
    )
    assert (created.status, created.last_seq, created.agent_version) == ("active", 1, 1)
    first = created.id
    second = deputy.start(agent_id, customer=customer, channel="email")
    assert deputy.row(first).customer_id == deputy.row(second).customer_id is not None
    assert deputy.row(first).state["context"] == {"user_id": "u-7"}
    assert deputy.row(first).last_seq == 1  # the greeting
    assert deputy.row(second).last_seq == 0  # no chat greeting on email
    page = c.list_conversations(
        deputy.platform,
        deputy.owner,
        agent_id=agent_id,
        status="active",
        customer_id=deputy.row(first).customer_id,
        limit=1,
        cursor=None,
    )
    assert [conv.id for conv in page.data] == [second] and page.next_cursor is not None


def test_a_channel_key_sees_only_its_agent(deputy: Deputy) -> None:
    deputy.serve(ScriptedModel([reply("Hello from the widget.")], name=MODEL))
    mine, other = deputy.agent(name="widget-agent"), deputy.agent(name="other-agent")
    channel = deputy.member_key("channel", agent_id=mine)
    with pytest.raises(NotFound):
        deputy.start(other, channel)
    own = deputy.start(mine, channel)
    foreign = deputy.start(other)
    for call in (
        lambda: c.get_conversation(deputy.platform, channel, foreign),
        lambda: c.list_entries(deputy.platform, channel, foreign),
        lambda: deputy.say(foreign, "hi", channel),
    ):
        with pytest.raises(NotFound):
            call()
    listed = c.list_conversations(
        deputy.platform,
        channel,
        agent_id=None,
        status=None,
        customer_id=None,
        limit=50,
        cursor=None,
    )
    assert [conv.id for conv in listed.data] == [own]
    result = deputy.say(own, "hi", channel)
    assert result.reply is not None and result.reply.text == "Hello from the widget."
    assert [e.kind for e in deputy.transcript(foreign)] == ["agent_message"]  # untouched


def test_another_workspace_cannot_reach_a_conversation(deputy: Deputy) -> None:
    conversation_id = deputy.start(deputy.agent())
    _, secret = deputy.api.new_workspace("Rival")
    rival = keys.authenticate(deputy.platform, secret)
    platform = deputy.platform
    for call in (
        lambda: c.get_conversation(platform, rival, conversation_id),
        lambda: c.list_entries(platform, rival, conversation_id),
        lambda: deputy.say(conversation_id, "hello", rival),
        lambda: c.close_conversation(platform, rival, conversation_id, r.ConversationClose()),
        lambda: c.claim_conversation(platform, rival, conversation_id),
    ):
        with pytest.raises(NotFound):
            call()
    listed = c.list_conversations(
        platform, rival, agent_id=None, status=None, customer_id=None, limit=50, cursor=None
    )
    assert listed.data == []
    assert deputy.row(conversation_id).last_seq == 1 and deputy.turns(conversation_id) == []


def test_a_closed_conversation_takes_no_messages(deputy: Deputy) -> None:
    conversation_id = deputy.start(deputy.agent())
    c.close_conversation(deputy.platform, deputy.owner, conversation_id, r.ConversationClose())
    with pytest.raises(Conflict):
        deputy.say(conversation_id, "anyone there?")
    with pytest.raises(Conflict):
        c.close_conversation(deputy.platform, deputy.owner, conversation_id, r.ConversationClose())
    assert deputy.turns(conversation_id) == []
