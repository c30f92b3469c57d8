"""The OpenAI-compatible endpoint: each deployed agent that enables it
(`channels.openai.enabled` in its live version's spec) is a model an OpenAI client talks to with
a Deputy API key. See `deputy.channels.openai_compat` for the protocol and how a resent history
finds its conversation.

An agent answers here only when its reviewed, deployed spec says so: the spec is what a
reviewer approved, and `channels.openai.enabled` (off by default) is where it says this front
door is open. Conversations started here have the channel `openai`; they are ordinary
conversations (the REST API reads and continues them, a human can take them over). The thread
key lives in the conversation's metadata (`openai_thread`), updated after every turn.

`usage` counts the tokens of the agent's model steps recorded in the turn (reasoning, routing,
slot extraction...); the guardrails' own model checks are metered to the workspace but not
counted here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update

from deputy.channels import openai_compat as oa
from deputy.domain import resources as r
from deputy.domain.errors import InvalidRequest, NotFound
from deputy.domain.tenancy import Principal
from deputy.runtime.journal import RecordedEntry
from deputy.services import conversations
from deputy.services.access import tenant
from deputy.services.channel_agents import ReachableAgent, reachable_agent, reachable_agents
from deputy.services.conversation_store import load_conversation, not_closed
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.channels.openai")

CHANNEL = "openai"
THREAD_META = "openai_thread"
CONVERSATION_META = "conversation_id"


def _enabled(agent: ReachableAgent) -> bool:
    return agent.spec.channels.openai.enabled


def list_models(platform: Platform, principal: Principal) -> list[ReachableAgent]:
    """The agents this key can talk to here: deployed on `openai` (or `all`) with the endpoint
    enabled in the live version's spec."""
    return [a for a in reachable_agents(platform, principal, CHANNEL) if _enabled(a)]


def get_model(platform: Platform, principal: Principal, model: str) -> ReachableAgent:
    agent = reachable_agent(platform, principal, CHANNEL, oa.agent_ref(model))
    if not _enabled(agent):
        error = NotFound("agent", model)
        error.message = (
            f"agent {agent.name!r} does not enable the OpenAI-compatible endpoint: set "
            "channels.openai.enabled in its spec and deploy that version"
        )
        raise error
    return agent


@dataclass(frozen=True)
class Prepared:
    """A request matched to its agent and conversation, ready to be answered."""

    agent: ReachableAgent
    model: str
    conversation_id: str
    exchange: oa.ChatExchange
    user: str | None


@dataclass(frozen=True)
class Answer:
    """The agent's answer to one request: its text (the turn's agent messages), the turn, and
    the tokens its model steps used."""

    conversation_id: str
    turn_id: str | None
    text: str
    prompt_tokens: int
    completion_tokens: int


def _thread(platform: Platform, principal: Principal, agent_id: str, key: str) -> str | None:
    """The open conversation of this agent on this channel that stored `key` last."""
    with tenant(platform, principal, "conversations:write") as session:
        return session.scalar(
            select(t.Conversation.id)
            .where(
                t.Conversation.agent_id == agent_id,
                t.Conversation.channel == CHANNEL,
                t.Conversation.status != "closed",
                t.Conversation.meta[THREAD_META].as_string() == key,
            )
            .order_by(t.Conversation.updated_at.desc())
            .limit(1)
        )


def _named(platform: Platform, principal: Principal, agent_id: str, conversation_id: str) -> str:
    """The conversation the caller named, if it is this agent's and open."""
    with tenant(platform, principal, "conversations:write") as session:
        row = load_conversation(session, principal, conversation_id)
        if row.agent_id != agent_id:
            raise NotFound("conversation", conversation_id)
        not_closed(row)
        return row.id


def _remember(platform: Platform, principal: Principal, conversation_id: str, key: str) -> None:
    with tenant(platform, principal, "conversations:write") as session:
        meta = session.scalar(
            select(t.Conversation.meta).where(t.Conversation.id == conversation_id)
        )
        if meta is None:
            return
        session.execute(
            update(t.Conversation)
            .where(t.Conversation.id == conversation_id)
            .values(meta={**meta, THREAD_META: key}, updated_at=utcnow())
        )


def _start(
    platform: Platform,
    principal: Principal,
    agent: ReachableAgent,
    request: oa.ChatCompletionRequest,
) -> str:
    extra = {k: v for k, v in (request.metadata or {}).items() if k != CONVERSATION_META}
    try:
        body = r.ConversationCreate(
            agent_id=agent.id,
            channel=CHANNEL,
            customer=r.CustomerRef(channel=CHANNEL, external_id=request.user)
            if request.user
            else None,
            metadata=extra,
        )
    except ValidationError as exc:
        raise InvalidRequest(
            "metadata: at most 20 keys, values up to 500 characters",
            details={"param": "metadata", "errors": exc.errors(include_url=False)},
        ) from None
    return conversations.create_conversation(platform, principal, body).id


async def prepare(
    platform: Platform,
    principal: Principal,
    request: oa.ChatCompletionRequest,
    conversation_id: str | None = None,
) -> Prepared:
    """Match a request to its agent and conversation (named, found by its thread key, or
    started). Nothing is posted yet."""
    exchange = oa.exchange(request)
    db = platform.db
    agent = await db.run(get_model, platform, principal, request.model)
    named = conversation_id or (request.metadata or {}).get(CONVERSATION_META)
    found: str | None
    if named:
        found = await db.run(_named, platform, principal, agent.id, named)
    elif exchange.prior:
        key = oa.thread_key(principal.key_id, agent.id, request.user, exchange.prior)
        found = await db.run(_thread, platform, principal, agent.id, key)
    else:
        found = None
    if found is None:
        found = await db.run(_start, platform, principal, agent, request)
    return Prepared(agent, oa.model_name(agent.name), found, exchange, request.user)


def _tokens(entries: list[r.TranscriptEntry]) -> tuple[int, int]:
    prompt = completion = 0
    for entry in entries:
        if entry.kind == "model_step":
            usage: dict[str, Any] = (entry.data.get("response") or {}).get("usage") or {}
            prompt += int(usage.get("input_tokens") or 0)
            completion += int(usage.get("output_tokens") or 0)
    return prompt, completion


class _DeltaSink:
    """The `EventSink` of a streamed answer: the reply's pieces on a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def entry(self, entry: RecordedEntry) -> None:
        return None

    async def reply_delta(self, text: str) -> None:
        self.queue.put_nowait(text)


async def answer(
    platform: Platform, principal: Principal, prepared: Prepared, sink: _DeltaSink | None = None
) -> Answer:
    """Post the message as a turn, remember the thread key the next request will carry, and
    return what the agent said. Raises `Unavailable` when the turn failed."""
    body = r.MessageCreate(text=prepared.exchange.text)
    result = await conversations.post_message(
        platform, principal, prepared.conversation_id, body, sink=sink
    )
    said = [e.text for e in result.entries if e.kind == "agent_message" and e.text.strip()]
    turns = oa.next_turns(prepared.exchange.prior, prepared.exchange.text, bool(said))
    key = oa.thread_key(principal.key_id, prepared.agent.id, prepared.user, turns)
    await platform.db.run(_remember, platform, principal, prepared.conversation_id, key)
    prompt, completion = _tokens(result.entries)
    return Answer(prepared.conversation_id, result.turn_id, "\n\n".join(said), prompt, completion)


_running: set[asyncio.Task[Answer]] = set()


async def stream_answer(
    platform: Platform, principal: Principal, prepared: Prepared
) -> AsyncGenerator[str | Answer]:
    """The reply's pieces as the agent produces them, then the `Answer`. The turn runs as its
    own task: a client that goes away does not stop it (the message and reply stay on
    record). A failed turn raises its error after the pieces already sent."""
    sink = _DeltaSink()
    task = asyncio.create_task(answer(platform, principal, prepared, sink))
    _running.add(task)
    task.add_done_callback(_running.discard)
    sent = ""
    getting: asyncio.Future[str] | None = None
    try:
        while True:
            getting = asyncio.ensure_future(sink.queue.get())
            done, _ = await asyncio.wait({getting, task}, return_when=asyncio.FIRST_COMPLETED)
            if getting in done:
                piece = getting.result()
                sent += piece
                yield piece
                continue
            while not sink.queue.empty():
                piece = sink.queue.get_nowait()
                sent += piece
                yield piece
            result = task.result()  # raises the turn's error
            if result.text.startswith(sent) and len(result.text) > len(sent):
                yield result.text[len(sent) :]  # agent messages that were not streamed
            yield result
            return
    finally:  # done, or the client went away: stop waiting (the turn itself goes on)
        if getting is not None:
            getting.cancel()
