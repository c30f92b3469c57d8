"""Conversations: create and read them, post customer messages (answered as JSON, or streamed
as Server-Sent Events with `Accept: text/event-stream`), follow their events, close them, and
the human queue (claim, reply, hand back). The WebSocket is in `conversation_ws`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse

from deputy.api import conversation_streams as streams
from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.runtime.ports import EventSink
from deputy.services import conversations as svc

router = APIRouter(tags=["conversations"])

MAX_SEQ = 2**31 - 1
AfterQuery = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="Only entries after this seq (0: from the start).")
]
_SSE_DOC = (
    "Server-Sent Events: `event:` the event type, `data:` a ConversationEvent as JSON, "
    "`id:` the entry's seq (for entries)."
)
_EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": _SSE_DOC,
        "content": {streams.SSE_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}
_TURN_OR_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The turn's result; with `Accept: text/event-stream`, the turn's events "
        "as they happen. " + _SSE_DOC,
        "content": {streams.SSE_MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    503: {
        "model": r.ErrorBody,
        "description": "The agent could not answer; the message is on record, its turn failed",
    },
}


def _event_stream(frames: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        frames, media_type=streams.SSE_MEDIA_TYPE, headers=dict(streams.SSE_HEADERS)
    )


@router.post("/conversations", status_code=status.HTTP_201_CREATED, response_model=r.Conversation)
def create_conversation(
    body: r.ConversationCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.Conversation:
    """Start a conversation with an agent's latest version (its greeting, if any, is the first
    entry)."""
    return svc.create_conversation(platform, principal, body)


@router.get("/conversations", response_model=r.Page[r.Conversation])
def list_conversations(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[str | None, Query(max_length=40)] = None,
    status: r.ConversationStatus | None = None,
    customer_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.Conversation]:
    return svc.list_conversations(
        platform,
        principal,
        agent_id=agent_id,
        status=status,
        customer_id=customer_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/conversations/{conversation_id}", response_model=r.Conversation)
def get_conversation(
    conversation_id: str, platform: PlatformDep, principal: PrincipalDep
) -> r.Conversation:
    return svc.get_conversation(platform, principal, conversation_id)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=r.TurnResult,
    responses=_TURN_OR_STREAM,
)
async def post_message(
    conversation_id: str,
    body: r.MessageCreate,
    platform: PlatformDep,
    principal: PrincipalDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> r.TurnResult | Response:
    """Send the customer's message and run the agent's turn. The message is stored before
    anything is answered; a streamed turn completes even if the client disconnects."""

    async def turn(sink: EventSink | None) -> r.TurnResult:
        return await svc.post_message(platform, principal, conversation_id, body, sink=sink)

    if not streams.wants_event_stream(accept):
        return await turn(None)
    events = await streams.start_streamed_turn(turn)
    return _event_stream(streams.sse_frame(event) async for event in events)


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=StreamingResponse,
    responses=_EVENT_STREAM,
)
async def follow_events(
    conversation_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    after: AfterQuery = 0,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_SEQ,
            description="Set by reconnecting EventSource clients: resume after this seq.",
        ),
    ] = None,
) -> StreamingResponse:
    """The stored entries after `after`, then live events, until the conversation closes; a
    comment every 15 s keeps idle connections open."""
    await platform.db.run(svc.get_conversation, platform, principal, conversation_id)
    events = streams.follow_conversation(
        platform, principal, conversation_id, after=max(after, last_event_id or 0)
    )
    return _event_stream(
        streams.HEARTBEAT if event is None else streams.sse_frame(event) async for event in events
    )


@router.get("/conversations/{conversation_id}/transcript", response_model=r.TranscriptPage)
def transcript(
    conversation_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    after: AfterQuery = 0,
    limit: LimitQuery = 200,
) -> r.TranscriptPage:
    """The transcript in order; pass `next_after` as `after` for the next page."""
    return svc.list_entries(platform, principal, conversation_id, after=after, limit=limit)


@router.post("/conversations/{conversation_id}/close", response_model=r.Conversation)
def close_conversation(
    conversation_id: str,
    body: r.ConversationClose,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> r.Conversation:
    return svc.close_conversation(platform, principal, conversation_id, body)


@router.post(
    "/conversations/{conversation_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=r.TranscriptEntry,
)
def give_feedback(
    conversation_id: str,
    body: r.ConversationFeedback,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> r.TranscriptEntry:
    """The customer's rating (1-5) and/or comment, recorded in the transcript; the
    improvement loop counts it as a signal."""
    return svc.give_feedback(platform, principal, conversation_id, body)


@router.get("/queue", response_model=r.Page[r.Conversation])
def list_queue(
    platform: PlatformDep,
    principal: PrincipalDep,
    queue: Annotated[str | None, Query(max_length=100, description="One queue only.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.Conversation]:
    """Conversations waiting for a human, oldest first."""
    return svc.list_queue(platform, principal, queue=queue, limit=limit, cursor=cursor)


@router.post("/conversations/{conversation_id}/claim", response_model=r.Conversation)
def claim_conversation(
    conversation_id: str, platform: PlatformDep, principal: PrincipalDep
) -> r.Conversation:
    """Take a queued conversation: it is yours to answer (member keys only)."""
    return svc.claim_conversation(platform, principal, conversation_id)


@router.post(
    "/conversations/{conversation_id}/human-replies",
    status_code=status.HTTP_201_CREATED,
    response_model=r.TranscriptEntry,
)
def reply_as_human(
    conversation_id: str, body: r.HumanReply, platform: PlatformDep, principal: PrincipalDep
) -> r.TranscriptEntry:
    """Answer the customer as the human who claimed the conversation."""
    return svc.reply_as_human(platform, principal, conversation_id, body)


@router.post("/conversations/{conversation_id}/hand-back", response_model=r.Conversation)
def hand_back(
    conversation_id: str, platform: PlatformDep, principal: PrincipalDep
) -> r.Conversation:
    """Return a conversation to the agent: it answers the next message."""
    return svc.hand_back(platform, principal, conversation_id)
