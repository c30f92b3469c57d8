"""The human queue and closing: a handoff queues the conversation, a member claims it and
answers while the agent stays silent, hands it back and the agent answers again; only the right
member may act; closing records the outcome the evidence shows (or the one given), and an
agent's `end_conversation` closes it with the agent's outcome."""

from __future__ import annotations

import asyncio

import pytest

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, PermissionDenied
from deputy.domain.tenancy import Principal
from deputy.services import conversations as c
from deputy.services import keys, workspaces
from deputy.testing import ScriptedModel, reply, tool_call
from tests.integration.conftest import Api
from tests.integration.test_conversations_service import MODEL, SPEC, Deputy

pytestmark = pytest.mark.integration

ASK_FOR_A_PERSON = "This is useless, I want to speak to a human please"


@pytest.fixture
def deputy(api: Api) -> Deputy:
    return Deputy.of(api)


def another_member(deputy: Deputy) -> Principal:
    member = workspaces.add_member(
        deputy.platform,
        deputy.owner,
        r.MemberCreate(email="sam@example.com", name="Sam", role="builder"),
    )
    body = r.KeyCreate(name="sam", kind="member", member_id=member.id)
    return keys.authenticate(
        deputy.platform, keys.create_key(deputy.platform, deputy.owner, body).secret
    )


def test_a_handoff_goes_through_the_queue_and_back_to_the_agent(deputy: Deputy) -> None:
    model = deputy.serve(ScriptedModel([reply("Glad to help again: we open at 9am.")], name=MODEL))
    platform, owner = deputy.platform, deputy.owner
    conversation_id = deputy.start(deputy.agent())

    async def handed_off() -> tuple[r.TurnResult, list[r.ConversationEvent]]:
        async with platform.events.subscribe(conversation_id) as events:
            result = await c.post_message(
                platform, owner, conversation_id, r.MessageCreate(text=ASK_FOR_A_PERSON)
            )
            seen = []
            async for event in events:
                seen.append(event)
                if event.type == "turn.completed":
                    return result, seen
        raise AssertionError("no turn.completed event")

    result, events = asyncio.run(handed_off())
    assert result.conversation.status == "queued" and result.conversation.queue == "support"
    assert result.conversation.handoff is not None
    assert result.conversation.handoff["trigger"] == "customer_request"
    assert [e.kind for e in result.entries][-2:] == ["agent_message", "handoff"]
    statuses = [e.conversation.status for e in events if e.type == "status" and e.conversation]
    assert statuses == ["queued"]

    queue = c.list_queue(platform, owner, queue="support", limit=10, cursor=None)
    assert [conv.id for conv in queue.data] == [conversation_id]
    assert c.list_queue(platform, owner, queue="billing", limit=10, cursor=None).data == []

    waiting = deputy.say(conversation_id, "Hello? Is anyone there?")
    assert waiting.reply is None and [e.kind for e in waiting.entries] == ["customer_message"]
    assert deputy.turns(conversation_id)[-1].status == "completed"

    claimed = c.claim_conversation(platform, owner, conversation_id)
    assert (claimed.status, claimed.assignee_member_id) == ("human", owner.member_id)
    with pytest.raises(Conflict):
        c.claim_conversation(platform, owner, conversation_id)
    answer = c.reply_as_human(platform, owner, conversation_id, r.HumanReply(text="Hi, Ann here."))
    assert (answer.kind, answer.text, answer.turn_id) == ("human_message", "Hi, Ann here.", None)
    during = deputy.say(conversation_id, "Thanks Ann. When do you open?")
    assert during.reply is None
    assert model.requests == []  # the agent stayed silent while a human had it

    back = c.hand_back(platform, owner, conversation_id)
    assert (back.status, back.assignee_member_id, back.queue) == ("active", None, None)
    again = deputy.say(conversation_id, "And tomorrow?")
    assert again.reply is not None and again.reply.text == "Glad to help again: we open at 9am."
    kinds = [e.kind for e in deputy.transcript(conversation_id)]
    assert kinds.count("human_message") == 1 and kinds[-1] == "agent_message"
    model.assert_all_used()


def test_only_the_claiming_member_acts_on_a_queued_conversation(deputy: Deputy) -> None:
    deputy.serve(ScriptedModel([], name=MODEL))  # a request for a person needs no model
    platform, owner = deputy.platform, deputy.owner
    agent_id = deputy.agent()
    conversation_id = deputy.start(agent_id)
    sam = another_member(deputy)
    channel = deputy.member_key("channel", agent_id=agent_id)

    with pytest.raises(Conflict):  # not queued
        c.claim_conversation(platform, owner, conversation_id)
    deputy.say(conversation_id, ASK_FOR_A_PERSON)
    with pytest.raises(PermissionDenied):  # a channel key is not a member
        c.claim_conversation(platform, channel, conversation_id)
    with pytest.raises(Conflict):  # nobody claimed it yet
        c.reply_as_human(platform, owner, conversation_id, r.HumanReply(text="hi"))
    c.claim_conversation(platform, sam, conversation_id)
    with pytest.raises(PermissionDenied):
        c.reply_as_human(platform, owner, conversation_id, r.HumanReply(text="It's me instead"))
    c.reply_as_human(platform, sam, conversation_id, r.HumanReply(text="Sam here, how can I help?"))
    c.hand_back(platform, sam, conversation_id)
    with pytest.raises(Conflict):
        c.hand_back(platform, sam, conversation_id)
    texts = [e.text for e in deputy.transcript(conversation_id) if e.kind == "human_message"]
    assert texts == ["Sam here, how can I help?"]


def test_closing_records_the_outcome_the_evidence_shows(deputy: Deputy) -> None:
    deputy.serve(ScriptedModel([reply("We open at 9am.")], name=MODEL))
    platform, owner = deputy.platform, deputy.owner
    agent_id = deputy.agent()

    answered = deputy.start(agent_id)
    deputy.say(answered, "When do you open?")
    closed = c.close_conversation(platform, owner, answered, r.ConversationClose(reason="idle"))
    assert (closed.status, closed.outcome) == ("closed", "abandoned")
    assert closed.outcome_evidence["rule"] == "no procedure reached an exit"
    assert closed.closed_at is not None
    last = deputy.transcript(answered)[-1]
    assert (last.kind, last.text, last.data["outcome"]) == ("outcome", "idle", "abandoned")

    escalated = deputy.start(agent_id)
    deputy.say(escalated, ASK_FOR_A_PERSON)
    closed = c.close_conversation(platform, owner, escalated, r.ConversationClose())
    assert closed.outcome == "escalated"

    given = deputy.start(agent_id)
    body = r.ConversationClose(outcome="resolved", reason="solved by phone")
    closed = c.close_conversation(platform, owner, given, body)
    assert closed.outcome == "resolved"
    assert closed.outcome_evidence["reason"] == "solved by phone"


def test_the_agent_ending_the_conversation_closes_it(deputy: Deputy) -> None:
    spec = {
        **SPEC,
        "tools": [
            {
                "name": "finish",
                "description": "End the conversation when the customer is done.",
                "effect": "read",
                "binding": {"kind": "builtin", "builtin": "end_conversation"},
            }
        ],
    }
    deputy.serve(
        ScriptedModel(
            [tool_call("finish", {"outcome": "resolved", "summary": "said goodbye"})],
            name=MODEL,
        )
    )
    conversation_id = deputy.start(deputy.agent(spec))
    result = deputy.say(conversation_id, "That's all, thanks, bye!")
    conversation = result.conversation
    assert (conversation.status, conversation.outcome) == ("closed", "resolved")
    assert conversation.outcome_evidence["rule"] == "declared by the agent"
    assert conversation.outcome_evidence["summary"] == "said goodbye"
    assert [e.kind for e in result.entries][-1] == "outcome"
    assert result.reply is not None
