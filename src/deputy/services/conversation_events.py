"""Live events of conversations, fanned out in process to whoever follows them (a streaming
response, a human agent's console).

Events are published after what they report was committed; they are a convenience, not the
record (the transcript is). Each subscriber has a bounded queue: one that falls too far behind
is ended (its iteration stops) rather than silently missing events, and can read the transcript
from where it was. Publishing works from the event loop and from worker threads alike."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from deputy.domain import resources as r

SUBSCRIBER_QUEUE = 1000


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[r.ConversationEvent | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE)
    )
    overflowed: bool = False

    def offer(self, event: r.ConversationEvent) -> None:
        """Queue `event` (on the subscriber's loop); a full queue ends the subscription."""
        if self.overflowed:
            return
        if self.queue.qsize() >= SUBSCRIBER_QUEUE - 1:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class ConversationEvents:
    """In-process fan-out of `ConversationEvent`s by conversation id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[_Subscriber]] = {}

    @contextlib.asynccontextmanager
    async def subscribe(
        self, conversation_id: str
    ) -> AsyncIterator[AsyncIterator[r.ConversationEvent]]:
        """Follow a conversation: events published while the context is open, in order."""
        subscriber = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.setdefault(conversation_id, set()).add(subscriber)
        try:
            yield self._iterate(subscriber)
        finally:
            with self._lock:
                remaining = self._subscribers.get(conversation_id)
                if remaining is not None:
                    remaining.discard(subscriber)
                    if not remaining:
                        del self._subscribers[conversation_id]

    @staticmethod
    async def _iterate(subscriber: _Subscriber) -> AsyncIterator[r.ConversationEvent]:
        while True:
            event = await subscriber.queue.get()
            if event is None:
                return
            yield event

    def publish(self, conversation_id: str, event: r.ConversationEvent) -> None:
        """Hand `event` to every subscriber of the conversation; never blocks."""
        with self._lock:
            subscribers = list(self._subscribers.get(conversation_id, ()))
        if not subscribers:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for subscriber in subscribers:
            if subscriber.loop is current:
                subscriber.offer(event)
            else:
                with contextlib.suppress(RuntimeError):  # its loop has closed: it is gone
                    subscriber.loop.call_soon_threadsafe(subscriber.offer, event)
