"""Live conversation events in process: subscribers get what is published for their
conversation in order, from the event loop or a worker thread (sync services publish from
there), and a subscriber that falls too far behind is ended instead of silently missing
events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest

from deputy.domain import resources as r
from deputy.services.conversation_events import SUBSCRIBER_QUEUE, ConversationEvents

pytestmark = pytest.mark.integration


def delta(text: str) -> r.ConversationEvent:
    return r.ConversationEvent(type="reply.delta", text=text)


async def take(stream: AsyncIterator[r.ConversationEvent], count: int) -> list[str | None]:
    texts: list[str | None] = []
    async for event in stream:
        texts.append(event.text)
        if len(texts) == count:
            break
    return texts


def test_subscribers_get_their_conversations_events_in_order_from_any_thread() -> None:
    events = ConversationEvents()

    async def scenario() -> tuple[list[str | None], list[str | None]]:
        async with (
            events.subscribe("cnv_a") as first,
            events.subscribe("cnv_a") as second,
            events.subscribe("cnv_b") as other,
        ):
            events.publish("cnv_a", delta("one"))
            await anyio.to_thread.run_sync(events.publish, "cnv_a", delta("two"))
            events.publish("cnv_b", delta("elsewhere"))
            events.publish("cnv_a", r.ConversationEvent(type="turn.completed"))
            assert await take(other, 1) == ["elsewhere"]
            return await take(first, 3), await take(second, 3)

    first, second = asyncio.run(scenario())
    assert first == second == ["one", "two", None]


def test_a_subscriber_that_falls_behind_is_ended() -> None:
    events = ConversationEvents()

    async def scenario() -> int:
        async with events.subscribe("cnv_a") as stream:
            for n in range(SUBSCRIBER_QUEUE + 10):
                events.publish("cnv_a", delta(str(n)))
            return len([event async for event in stream])

    received = asyncio.run(scenario())
    assert 0 < received < SUBSCRIBER_QUEUE
