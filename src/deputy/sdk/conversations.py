"""Conversations and the human queue, for `DeputyClient` (`client.conversations`,
`client.queue`) and `AsyncDeputyClient` (the same, awaited).

    conversation = client.conversations.create(agent.id)
    for event in client.conversations.stream(conversation.id, "Where is my order?"):
        if event.type == "reply.delta":
            print(event.text, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from deputy.domain import resources as r
from deputy.sdk import _conversation_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP
from deputy.sdk.errors import DeputyConnectionError, UnexpectedResponse
from deputy.sdk.sse import ServerSentEvent, aparse_sse, parse_sse

# A turn may wait on a local model for a minute (the server retries and falls back).
TURN_TIMEOUT = 180.0
TERMINAL_EVENTS = frozenset({"turn.completed", "turn.failed"})


def _check_stream(response: httpx.Response) -> None:
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type != calls.EVENT_STREAM:
        raise UnexpectedResponse(
            f"expected an event stream, got {media_type or 'no content type'}; "
            "is the URL a Deputy server?",
            details={"status": response.status_code},
        )


def _event(sse: ServerSentEvent) -> r.ConversationEvent:
    try:
        return r.ConversationEvent.model_validate_json(sse.data)
    except ValidationError as exc:
        raise UnexpectedResponse(f"an unreadable {sse.event!r} event in the stream") from exc


def _broke_off(conversation_id: str, cause: BaseException | None = None) -> DeputyConnectionError:
    return DeputyConnectionError(
        f"the event stream of {conversation_id} broke off before the turn ended"
        + (f": {cause}" if cause else "")
        + "; the turn goes on: read the transcript"
    )


class ConversationsAPI:
    """Talk to an agent as a customer: conversations, messages (answered whole or streamed),
    transcripts."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: str,
        *,
        customer: r.CustomerRef | Mapping[str, Any] | None = None,
        channel: str | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> r.Conversation:
        """Start a conversation with the agent's latest version. `context` holds facts the
        caller vouches for (an authenticated `user_id`, say)."""
        return self._http.run(
            calls.create_conversation(
                agent_id, customer, channel, context, metadata, idempotency_key
            )
        )

    def get(self, conversation_id: str) -> r.Conversation:
        return self._http.run(calls.get_conversation(conversation_id))

    def list(
        self,
        *,
        agent_id: str | None = None,
        status: r.ConversationStatus | None = None,
        customer_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[r.Conversation]:
        return self._http.run(
            calls.list_conversations(agent_id, status, customer_id, limit, cursor)
        )

    def post_message(
        self,
        conversation_id: str,
        text: str,
        *,
        client_message_id: str | None = None,
        timeout: float | None = TURN_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.TurnResult:
        """Send the customer's message; the answer is the whole turn (`reply` is the agent's
        message, if it answered)."""
        return self._http.run(
            calls.post_message(conversation_id, text, client_message_id, timeout, idempotency_key)
        )

    def stream(
        self,
        conversation_id: str,
        text: str,
        *,
        client_message_id: str | None = None,
        timeout: float | None = TURN_TIMEOUT,
    ) -> Iterator[r.ConversationEvent]:
        """Send the customer's message and yield the turn's events as they happen: `entry`
        (each recorded entry), `reply.delta` (pieces of the approved reply), and last
        `turn.completed` (with the conversation) or `turn.failed`."""
        call = calls.stream_message(conversation_id, text, client_message_id, timeout)
        with self._http.stream(call) as response:
            _check_stream(response)
            try:
                for sse in parse_sse(response.iter_lines()):
                    event = _event(sse)
                    yield event
                    if event.type in TERMINAL_EVENTS:
                        return
            except httpx.TransportError as exc:
                raise _broke_off(conversation_id, exc) from exc
        raise _broke_off(conversation_id)

    def transcript(
        self, conversation_id: str, *, after: int = 0, limit: int | None = None
    ) -> r.TranscriptPage:
        """Entries after seq `after`, in order; pass `next_after` back for the next page."""
        return self._http.run(calls.transcript(conversation_id, after, limit))

    def iter_transcript(
        self, conversation_id: str, *, after: int = 0, page_size: int | None = None
    ) -> Iterator[r.TranscriptEntry]:
        """Every entry after seq `after`, following the pages."""
        next_after: int | None = after
        while next_after is not None:
            page = self.transcript(conversation_id, after=next_after, limit=page_size)
            yield from page.entries
            next_after = page.next_after

    def close(
        self,
        conversation_id: str,
        *,
        outcome: r.ConversationOutcome | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> r.Conversation:
        """Close it; without `outcome` the server decides it from the conversation's evidence."""
        return self._http.run(
            calls.close_conversation(conversation_id, outcome, reason, idempotency_key)
        )

    def feedback(
        self,
        conversation_id: str,
        *,
        rating: int | None = None,
        comment: str = "",
        idempotency_key: str | None = None,
    ) -> r.TranscriptEntry:
        """Record the customer's rating (1-5) and/or comment on the conversation."""
        return self._http.run(
            calls.give_feedback(conversation_id, rating, comment, idempotency_key)
        )


class QueueAPI:
    """The human side: conversations handed off to people (member keys only for claiming,
    replying and handing back)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def list(
        self, *, queue: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.Conversation]:
        """Conversations waiting for a human, oldest first."""
        return self._http.run(calls.list_queue(queue, limit, cursor))

    def claim(self, conversation_id: str, *, idempotency_key: str | None = None) -> r.Conversation:
        return self._http.run(calls.claim(conversation_id, idempotency_key))

    def reply(
        self, conversation_id: str, text: str, *, idempotency_key: str | None = None
    ) -> r.TranscriptEntry:
        """Answer the customer (only the member who claimed the conversation)."""
        return self._http.run(calls.human_reply(conversation_id, text, idempotency_key))

    def hand_back(
        self, conversation_id: str, *, idempotency_key: str | None = None
    ) -> r.Conversation:
        """Return the conversation to the agent; it answers the next message."""
        return self._http.run(calls.hand_back(conversation_id, idempotency_key))


class AsyncConversationsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: str,
        *,
        customer: r.CustomerRef | Mapping[str, Any] | None = None,
        channel: str | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> r.Conversation:
        return await self._http.run(
            calls.create_conversation(
                agent_id, customer, channel, context, metadata, idempotency_key
            )
        )

    async def get(self, conversation_id: str) -> r.Conversation:
        return await self._http.run(calls.get_conversation(conversation_id))

    async def list(
        self,
        *,
        agent_id: str | None = None,
        status: r.ConversationStatus | None = None,
        customer_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[r.Conversation]:
        return await self._http.run(
            calls.list_conversations(agent_id, status, customer_id, limit, cursor)
        )

    async def post_message(
        self,
        conversation_id: str,
        text: str,
        *,
        client_message_id: str | None = None,
        timeout: float | None = TURN_TIMEOUT,
        idempotency_key: str | None = None,
    ) -> r.TurnResult:
        return await self._http.run(
            calls.post_message(conversation_id, text, client_message_id, timeout, idempotency_key)
        )

    async def stream(
        self,
        conversation_id: str,
        text: str,
        *,
        client_message_id: str | None = None,
        timeout: float | None = TURN_TIMEOUT,
    ) -> AsyncIterator[r.ConversationEvent]:
        call = calls.stream_message(conversation_id, text, client_message_id, timeout)
        async with self._http.stream(call) as response:
            _check_stream(response)
            try:
                async for sse in aparse_sse(response.aiter_lines()):
                    event = _event(sse)
                    yield event
                    if event.type in TERMINAL_EVENTS:
                        return
            except httpx.TransportError as exc:
                raise _broke_off(conversation_id, exc) from exc
        raise _broke_off(conversation_id)

    async def transcript(
        self, conversation_id: str, *, after: int = 0, limit: int | None = None
    ) -> r.TranscriptPage:
        return await self._http.run(calls.transcript(conversation_id, after, limit))

    async def iter_transcript(
        self, conversation_id: str, *, after: int = 0, page_size: int | None = None
    ) -> AsyncIterator[r.TranscriptEntry]:
        next_after: int | None = after
        while next_after is not None:
            page = await self.transcript(conversation_id, after=next_after, limit=page_size)
            for entry in page.entries:
                yield entry
            next_after = page.next_after

    async def close(
        self,
        conversation_id: str,
        *,
        outcome: r.ConversationOutcome | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> r.Conversation:
        return await self._http.run(
            calls.close_conversation(conversation_id, outcome, reason, idempotency_key)
        )

    async def feedback(
        self,
        conversation_id: str,
        *,
        rating: int | None = None,
        comment: str = "",
        idempotency_key: str | None = None,
    ) -> r.TranscriptEntry:
        return await self._http.run(
            calls.give_feedback(conversation_id, rating, comment, idempotency_key)
        )


class AsyncQueueAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def list(
        self, *, queue: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.Conversation]:
        return await self._http.run(calls.list_queue(queue, limit, cursor))

    async def claim(
        self, conversation_id: str, *, idempotency_key: str | None = None
    ) -> r.Conversation:
        return await self._http.run(calls.claim(conversation_id, idempotency_key))

    async def reply(
        self, conversation_id: str, text: str, *, idempotency_key: str | None = None
    ) -> r.TranscriptEntry:
        return await self._http.run(calls.human_reply(conversation_id, text, idempotency_key))

    async def hand_back(
        self, conversation_id: str, *, idempotency_key: str | None = None
    ) -> r.Conversation:
        return await self._http.run(calls.hand_back(conversation_id, idempotency_key))
