"""Conversation events as streams: Server-Sent Events framing, a running turn's events (the
`EventSink` of `post_message` feeding a queue), and a conversation's stored entries followed
by its live events without loss or repeats. Shared by the SSE routes and the WebSocket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Final

from deputy.domain import resources as r
from deputy.domain.errors import DeputyError
from deputy.domain.tenancy import Principal
from deputy.runtime.journal import RecordedEntry
from deputy.runtime.ports import EventSink
from deputy.services import conversations as svc
from deputy.services.conversation_store import shows
from deputy.services.platform import Platform

log = logging.getLogger("deputy.api.streams")

SSE_MEDIA_TYPE: Final = "text/event-stream"
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HEARTBEAT_SECONDS = 15.0
"""How often an idle event stream sends a comment, so proxies keep the connection open."""
HEARTBEAT: Final = ": keep-alive\n\n"
BACKLOG_PAGE = 200
TERMINAL_TYPES: Final = frozenset({"turn.completed", "turn.failed"})

# Turns started by streaming requests run on after their client has gone; keep a reference
# so the event loop does not drop them half-way.
_running_turns: set[asyncio.Task[r.TurnResult]] = set()


def wants_event_stream(accept: str | None) -> bool:
    return accept is not None and SSE_MEDIA_TYPE in accept.lower()


def sse_frame(event: r.ConversationEvent) -> str:
    """One event in SSE framing: `id:` (the entry's seq, when there is one), `event:`, `data:`."""
    lines = []
    if event.entry is not None:
        lines.append(f"id: {event.entry.seq}")
    lines.append(f"event: {event.type}")
    lines.append(f"data: {event.model_dump_json()}")
    return "\n".join(lines) + "\n\n"


def entry_event(entry: r.TranscriptEntry) -> r.ConversationEvent:
    return r.ConversationEvent(type="entry", entry=entry)


class QueueSink:
    """The `EventSink` of one streamed turn: its entries and reply pieces, as events on an
    unbounded queue (the turn never waits for a slow or vanished client), then one terminal
    event (`turn.completed` or `turn.failed`)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[r.ConversationEvent] = asyncio.Queue()
        self.sent: set[str] = set()

    async def entry(self, entry: RecordedEntry) -> None:
        self.sent.add(entry.id)
        self.queue.put_nowait(entry_event(r.TranscriptEntry.model_validate(entry)))

    async def reply_delta(self, text: str) -> None:
        self.queue.put_nowait(r.ConversationEvent(type="reply.delta", text=text))

    def finish(self, event: r.ConversationEvent) -> None:
        self.queue.put_nowait(event)


async def _run_turn(
    turn: Callable[[EventSink], Awaitable[r.TurnResult]], sink: QueueSink
) -> r.TurnResult:
    try:
        result = await turn(sink)
    except DeputyError as error:
        sink.finish(r.ConversationEvent(type="turn.failed", text=error.message))
        raise
    except Exception:
        sink.finish(r.ConversationEvent(type="turn.failed", text="the turn failed"))
        raise
    # The turn's entries recorded outside the running turn (the customer's message before it,
    # what closing the turn added), so the stream holds every entry of the turn.
    for entry in sorted(result.entries, key=lambda e: e.seq):
        if entry.id not in sink.sent:
            sink.queue.put_nowait(entry_event(entry))
    sink.finish(r.ConversationEvent(type="turn.completed", conversation=result.conversation))
    return result


def _forget(task: asyncio.Task[r.TurnResult]) -> None:
    _running_turns.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None and not isinstance(error, DeputyError):
        log.error("a streamed turn failed", exc_info=error)


async def start_streamed_turn(
    turn: Callable[[EventSink], Awaitable[r.TurnResult]],
) -> AsyncIterator[r.ConversationEvent]:
    """Start `turn` as its own task (it completes even if the client disconnects) and return
    its events, ending with the terminal one. Waits for the first event: a turn refused before
    recording anything (unknown or closed conversation, no permission) raises its error here,
    so the caller answers with an ordinary error response instead of a stream."""
    sink = QueueSink()
    task = asyncio.create_task(_run_turn(turn, sink))
    _running_turns.add(task)
    task.add_done_callback(_forget)
    first = await sink.queue.get()
    if first.type == "turn.failed":
        await task  # raises the turn's error

    async def events() -> AsyncIterator[r.ConversationEvent]:
        event = first
        while True:
            yield event
            if event.type in TERMINAL_TYPES:
                return
            event = await sink.queue.get()

    return events()


async def _with_heartbeats(
    live: AsyncIterator[r.ConversationEvent], interval: float
) -> AsyncIterator[r.ConversationEvent | None]:
    """`live`'s events, and None after every `interval` seconds without one."""
    pending: asyncio.Future[r.ConversationEvent] = asyncio.ensure_future(anext(live))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield None
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            yield event
            pending = asyncio.ensure_future(anext(live))
    finally:
        pending.cancel()


def _closes(event: r.ConversationEvent) -> bool:
    return (
        event.type == "status"
        and event.conversation is not None
        and event.conversation.status == "closed"
    )


async def follow_conversation(
    platform: Platform, principal: Principal, conversation_id: str, *, after: int | None
) -> AsyncIterator[r.ConversationEvent | None]:
    """The conversation's stored entries after `after` (none when `after` is None: live events
    only), then its live events, until it closes; None is a heartbeat tick. It subscribes
    before reading the stored entries and drops live entries already sent, so nothing is lost
    or sent twice."""
    async with platform.events.subscribe(conversation_id) as live:
        sent = page_after = after
        while page_after is not None:
            page = await platform.db.run(
                partial(svc.list_entries, after=page_after, limit=BACKLOG_PAGE),
                platform,
                principal,
                conversation_id,
            )
            for entry in page.entries:
                yield entry_event(entry)
                sent = entry.seq
            page_after = page.next_after
        conversation = await platform.db.run(
            svc.get_conversation, platform, principal, conversation_id
        )
        if conversation.status == "closed":
            yield r.ConversationEvent(type="status", conversation=conversation)
            return
        async for event in _with_heartbeats(live, HEARTBEAT_SECONDS):
            if event is not None and event.entry is not None:
                if sent is not None and event.entry.seq <= sent:
                    continue
                sent = event.entry.seq
                if not shows(principal, event.entry.kind):
                    continue
            yield event
            if event is not None and _closes(event):
                return
