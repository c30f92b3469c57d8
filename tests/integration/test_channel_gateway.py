"""The channel gateway with a fake sender, on a real database and no background sweeper (the
app's lifespan is not started, so each test drives `deliver_due` and `resume_inbound` itself):
deliveries are stored once, a thread is one conversation (a new one once it is closed), every
reply is queued and sent exactly once even under concurrent sweeps, failed sends back off and
give up, and a delivery a crash left unprocessed is answered later."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from deputy.api.app import create_app
from deputy.channels.base import DeliveryFailed
from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.domain.channels import ChannelConnectionCreate, Inbound, KindConfig, Outbound
from deputy.domain.tenancy import Principal
from deputy.services import channel_gateway as gateway
from deputy.services import channel_outbox as outbox
from deputy.services import conversations, keys
from deputy.services.channel_connections import (
    LoadedConnection,
    create_connection,
    load_connection,
)
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


@pytest.fixture
def quiet_api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """The API without its lifespan: no sweeper sends or resumes behind a test's back."""
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data")
    platform, boot = prepare(settings)
    assert boot.created is not None
    client = TestClient(create_app(platform), raise_server_exceptions=False)
    yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


@dataclass
class FakeSender:
    """Records what it sends; `failure` (when set) is raised instead, for every message or
    only those containing `failing`; messages containing `slow` take a while."""

    sent: list[Outbound] = field(default_factory=list)
    failure: Exception | None = None
    failing: str = ""
    pause: float = 0.0
    slow: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        slow = self.slow is not None and self.slow in message.text
        await asyncio.sleep(0.2 if slow else self.pause)
        if self.failure is not None and self.failing in message.text:
            raise self.failure
        with self._lock:
            self.sent.append(message)
            return f"ext-{len(self.sent)}"

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.sent]


@dataclass
class Gateway:
    api: Api
    owner: Principal
    connection: LoadedConnection
    sender: FakeSender

    @property
    def senders(self) -> dict[str, FakeSender]:
        return {"telegram": self.sender}

    def inbound(self, text: str, delivery_id: str, thread: str = "chat:1") -> Inbound:
        return Inbound(
            delivery_id=delivery_id,
            external_customer_id="customer-1",
            text=text,
            thread_keys=(thread,),
            reply_to={"chat_id": thread},
        )

    def receive(self, text: str, delivery_id: str, thread: str = "chat:1") -> gateway.Reception:
        inbound = self.inbound(text, delivery_id, thread)
        return asyncio.run(gateway.receive(self.api.platform, self.connection, inbound))

    def deliver(self) -> int:
        return asyncio.run(outbox.deliver_due(self.api.platform, self.senders))  # type: ignore[arg-type]

    def outbox(self) -> list[t.ChannelOutboxRow]:
        with self.api.platform.db.session() as session:
            query = select(t.ChannelOutboxRow).order_by(t.ChannelOutboxRow.entry_seq)
            return list(session.scalars(query).all())

    def make_due(self) -> None:
        with self.api.platform.db.session() as session:
            session.execute(
                update(t.ChannelOutboxRow)
                .where(t.ChannelOutboxRow.status == "pending")
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )


@pytest.fixture
def gw(quiet_api: Api) -> Gateway:
    agent_id = echo_agent(quiet_api)
    platform = quiet_api.platform
    owner = keys.authenticate(platform, quiet_api.owner_key)
    body = ChannelConnectionCreate(
        agent_id=agent_id,
        kind="telegram",
        name="bot",
        config={},
        secrets={"bot_token": "1:x", "secret_token": "s"},
    )
    created = create_connection(platform, owner, body)
    connection = load_connection(platform, created.id, "telegram")
    return Gateway(quiet_api, owner, connection, FakeSender())


def test_a_delivery_is_answered_queued_and_sent_once(gw: Gateway) -> None:
    reception = gw.receive("hello", "u-1")
    assert not reception.duplicate and reception.replies == (ECHO_PREFIX + "hello",)
    assert gw.receive("hello", "u-1") == gateway.Reception(duplicate=True)

    assert gw.deliver() == 1
    assert gw.deliver() == 0
    (sent,) = gw.sender.sent
    assert (sent.text, sent.reply_to, sent.author) == (
        ECHO_PREFIX + "hello",
        {"chat_id": "chat:1"},
        "agent",
    )
    assert sent.conversation_id == reception.conversation_id
    (row,) = gw.outbox()
    assert (row.status, row.attempts, row.external_id) == ("sent", 1, "ext-1")


def test_concurrent_sweeps_send_every_reply_exactly_once(gw: Gateway) -> None:
    conversation_id = gw.receive("first", "u-1").conversation_id
    assert conversation_id is not None

    async def say(text: str) -> None:  # the conversation goes on outside the channel
        body = r.MessageCreate(text=text)
        await conversations.post_message(gw.api.platform, gw.owner, conversation_id, body)

    for number in range(5):
        asyncio.run(say(f"more {number}"))
    gw.sender.pause = 0.02

    async def sweeps() -> None:
        await asyncio.gather(*(outbox.deliver_due(gw.api.platform, gw.senders) for _ in range(3)))  # type: ignore[arg-type]

    threads = [threading.Thread(target=asyncio.run, args=(sweeps(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = [ECHO_PREFIX + "first", *(f"{ECHO_PREFIX}more {n}" for n in range(5))]
    assert sorted(gw.sender.texts) == sorted(expected)
    rows = gw.outbox()
    assert [row.status for row in rows] == ["sent"] * 6
    assert len({row.entry_seq for row in rows}) == 6


def test_a_conversations_replies_go_out_in_order_behind_a_failing_one(gw: Gateway) -> None:
    conversation_id = gw.receive("first", "u-1").conversation_id
    assert conversation_id is not None
    for text in ("second", "third"):
        body = r.MessageCreate(text=text)
        asyncio.run(conversations.post_message(gw.api.platform, gw.owner, conversation_id, body))
    other = gw.receive("elsewhere", "u-2", thread="chat:2").conversation_id
    gw.sender.failure, gw.sender.failing = DeliveryFailed("busy"), "first"

    gw.deliver()  # the first reply fails: the two after it wait, the other conversation goes
    assert [(m.conversation_id, m.text) for m in gw.sender.sent] == [
        (other, ECHO_PREFIX + "elsewhere")
    ]
    gw.sender.failure, gw.sender.slow = None, "first"  # a slow send must not be overtaken
    gw.make_due()
    gw.deliver()
    ordered = [m.text for m in gw.sender.sent if m.conversation_id == conversation_id]
    assert ordered == [ECHO_PREFIX + w for w in ("first", "second", "third")]


def test_messages_arriving_together_on_a_new_thread_share_one_conversation(gw: Gateway) -> None:
    async def together() -> list[gateway.Reception]:
        platform, connection = gw.api.platform, gw.connection
        return list(
            await asyncio.gather(
                *(
                    gateway.receive(platform, connection, gw.inbound(f"m{n}", f"u-{n}", "new"))
                    for n in range(3)
                )
            )
        )

    receptions = asyncio.run(together())
    assert len({reception.conversation_id for reception in receptions}) == 1


def test_a_closed_conversations_thread_starts_a_new_conversation(gw: Gateway) -> None:
    first = gw.receive("one", "u-1").conversation_id
    assert first is not None
    close = r.ConversationClose(outcome="resolved")
    conversations.close_conversation(gw.api.platform, gw.owner, first, close)

    second = gw.receive("two", "u-2").conversation_id
    assert second is not None and second != first
    assert gw.receive("three", "u-3").conversation_id == second
    gw.deliver()
    by_conversation = {(m.conversation_id, m.text) for m in gw.sender.sent}
    assert by_conversation == {
        (first, ECHO_PREFIX + "one"),
        (second, ECHO_PREFIX + "two"),
        (second, ECHO_PREFIX + "three"),
    }


def test_a_stored_delivery_a_crash_left_unprocessed_is_answered_later(gw: Gateway) -> None:
    platform = gw.api.platform
    stored = asyncio.run(gateway.accept(platform, gw.connection, gw.inbound("lost?", "u-9")))
    assert stored is not None
    assert asyncio.run(gateway.resume_inbound(platform)) == 0  # still fresh: maybe in flight

    with platform.db.session() as session:
        session.execute(
            update(t.ChannelInboundRow)
            .where(t.ChannelInboundRow.id == stored)
            .values(created_at=utcnow() - timedelta(seconds=gateway.STALE_INBOUND_SECONDS + 1))
        )
    assert asyncio.run(gateway.resume_inbound(platform)) == 1
    assert asyncio.run(gateway.resume_inbound(platform)) == 0
    with platform.db.session() as session:
        row = session.get_one(t.ChannelInboundRow, stored)
        assert (row.status, row.attempts) == ("processed", 1) and row.conversation_id
    gw.deliver()
    assert gw.sender.texts == [ECHO_PREFIX + "lost?"]


def test_failed_sends_back_off_and_give_up_after_the_last_attempt(gw: Gateway) -> None:
    gw.sender.failure = DeliveryFailed("the API is busy")
    gw.receive("hello", "u-1")
    assert gw.deliver() == 1
    (row,) = gw.outbox()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "the API is busy")
    assert row.next_attempt_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
    assert gw.deliver() == 0  # not due yet

    gw.sender.failure = RuntimeError("a bug in the adapter")  # unexpected: retried too
    for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
        gw.make_due()
        assert gw.deliver() == 1
        (row,) = gw.outbox()
        assert row.attempts == attempt
    assert row.status == "failed" and "RuntimeError" in (row.last_error or "")
    gw.make_due()
    assert gw.deliver() == 0


def test_a_permanent_failure_is_not_retried_and_a_later_reply_still_goes(gw: Gateway) -> None:
    gw.sender.failure = DeliveryFailed("blocked by the user", permanent=True)
    gw.receive("hello", "u-1")
    gw.deliver()
    (row,) = gw.outbox()
    assert (row.status, row.attempts) == ("failed", 1)

    gw.sender.failure = None
    gw.receive("again", "u-2")
    gw.make_due()
    gw.deliver()
    assert gw.sender.texts == [ECHO_PREFIX + "again"]
