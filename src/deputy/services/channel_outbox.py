"""The channel outbox: what conversations say, sent on the channels that carry them.

Every `agent_message` and `human_message` entry of a conversation carried on a connection
becomes one outbox row, exactly once (a binding's `delivered_seq` moves in the same
transaction), so a colleague's reply from the queue goes out on the channel too. Rows are sent
by the kind's `Sender`, in order within a conversation, and retried with exponential backoff
until sent or out of attempts. For email, the id of a sent message becomes a thread key of its
conversation (the customer's reply names it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from deputy.channels.base import DeliveryFailed, Sender
from deputy.domain.channels import ChannelKind, Outbound
from deputy.domain.errors import DeputyError
from deputy.domain.ids import new_id
from deputy.observability.genai import send_span
from deputy.observability.tracing import TURN_TRACES, carried_context
from deputy.services.channel_connections import load_connection
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.channels")

MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 300.0
SEND_LEASE_SECONDS = 60.0
MAX_SEND_ROUNDS = 20
CUSTOMER_KINDS = ("agent_message", "human_message")
TRACE_KEY = "trace"
"""The payload key of the W3C trace context of the turn that said a row's message (None when
this process did not run it, or for a colleague's reply)."""


def backoff_seconds(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 2, 4, 8, ... up to five minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2.0**attempts))


def _enqueue(
    platform: Platform, workspace_id: str, connection_id: str, conversation_id: str
) -> int:
    with platform.db.tenant_session(workspace_id) as session:
        binding = session.scalar(
            select(t.ChannelBinding)
            .where(
                t.ChannelBinding.connection_id == connection_id,
                t.ChannelBinding.conversation_id == conversation_id,
            )
            .with_for_update()
        )
        if binding is None:
            return 0
        entries = session.scalars(
            select(t.ConversationEntry)
            .where(
                t.ConversationEntry.conversation_id == conversation_id,
                t.ConversationEntry.seq > binding.delivered_seq,
            )
            .order_by(t.ConversationEntry.seq)
        ).all()
        queued = 0
        for entry in entries:
            if entry.kind in CUSTOMER_KINDS and entry.text.strip():
                message = Outbound(
                    conversation_id=conversation_id,
                    entry_seq=entry.seq,
                    text=entry.text,
                    reply_to=dict(binding.reply_to),
                    author="human" if entry.kind == "human_message" else "agent",
                )
                session.add(
                    t.ChannelOutboxRow(
                        id=new_id("chout"),
                        workspace_id=workspace_id,
                        connection_id=connection_id,
                        conversation_id=conversation_id,
                        entry_seq=entry.seq,
                        # The trace of the turn that said it (when this process ran it): the
                        # send joins that trace.
                        payload={**asdict(message), TRACE_KEY: TURN_TRACES.get(entry.turn_id)},
                        status="pending",
                        attempts=0,
                    )
                )
                queued += 1
        if entries:
            binding.delivered_seq = entries[-1].seq
            binding.updated_at = utcnow()
        return queued


async def enqueue_replies(
    platform: Platform, workspace_id: str, connection_id: str, conversation_id: str
) -> int:
    """Queue the conversation's customer-visible entries not queued yet; how many."""
    return await platform.db.run(_enqueue, platform, workspace_id, connection_id, conversation_id)


def _behind(platform: Platform) -> list[tuple[str, str, str]]:
    """Bindings whose conversation has entries past what was queued."""
    with platform.db.session() as session:
        rows = session.execute(
            select(
                t.ChannelBinding.workspace_id,
                t.ChannelBinding.connection_id,
                t.ChannelBinding.conversation_id,
            )
            .join(t.Conversation, t.Conversation.id == t.ChannelBinding.conversation_id)
            .where(t.Conversation.last_seq > t.ChannelBinding.delivered_seq)
            .limit(200)
        ).all()
        return [(w, c, v) for w, c, v in rows]


def _claim_due(platform: Platform, limit: int = 50) -> list[tuple[str, str]]:
    """Due outbox rows claimed for sending (their next attempt pushed a lease ahead, so
    another process leaves them alone): (workspace id, row id). A conversation's messages go
    out in order: a row waits while an earlier one of its conversation is still pending
    (being sent, or backing off), so at most one row per conversation is claimed at a time."""
    now = utcnow()
    claimed: list[tuple[str, str]] = []
    outbox, earlier = t.ChannelOutboxRow, aliased(t.ChannelOutboxRow)
    waiting = (
        select(earlier.id)
        .where(
            earlier.connection_id == outbox.connection_id,
            earlier.conversation_id == outbox.conversation_id,
            earlier.status == "pending",
            earlier.entry_seq < outbox.entry_seq,
        )
        .exists()
    )
    with platform.db.session() as session:
        due = session.execute(
            select(outbox.workspace_id, outbox.id, outbox.next_attempt_at)
            .where(outbox.status == "pending", outbox.next_attempt_at <= now, ~waiting)
            .order_by(outbox.next_attempt_at)
            .limit(limit)
        ).all()
        for workspace_id, row_id, at in due:
            taken = session.execute(
                update(t.ChannelOutboxRow)
                .where(t.ChannelOutboxRow.id == row_id, t.ChannelOutboxRow.next_attempt_at == at)
                .values(next_attempt_at=now + timedelta(seconds=SEND_LEASE_SECONDS))
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                claimed.append((workspace_id, row_id))
    return claimed


def _outbox_row(
    platform: Platform, workspace_id: str, row_id: str
) -> tuple[str, Outbound, dict[str, str] | None]:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.ChannelOutboxRow, row_id)
        payload = dict(row.payload)
        carrier = payload.pop(TRACE_KEY, None)
        return row.connection_id, Outbound(**payload), carrier


def _sent(platform: Platform, workspace_id: str, row_id: str, external_id: str | None) -> None:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.ChannelOutboxRow, row_id)
        row.status, row.sent_at, row.external_id = "sent", utcnow(), external_id
        row.attempts += 1
        row.last_error = None


def _failed(
    platform: Platform, workspace_id: str, row_id: str, error: str, permanent: bool
) -> None:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.ChannelOutboxRow, row_id)
        row.attempts += 1
        row.last_error = error[:2000]
        if permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
        else:
            row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.attempts))


# ---- a sent message's own id as a thread key (email) --------------------------------------

THREADED_BY_SENT_ID: tuple[ChannelKind, ...] = ("email",)
"""Kinds whose customers answer a message by naming it (email's In-Reply-To): the id a sender
returns is recorded as a thread key, so a reply finds the conversation even when the
customer's client dropped the older ids from References."""


def _remember_sent_id(platform: Platform, workspace_id: str, row_id: str, sent_id: str) -> None:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.ChannelOutboxRow, row_id)
        key = sent_id[:500]
        known = session.scalar(
            select(t.ChannelThread.id).where(
                t.ChannelThread.connection_id == row.connection_id,
                t.ChannelThread.thread_key == key,
            )
        )
        if known is None:
            session.add(
                t.ChannelThread(
                    id=new_id("cht"),
                    workspace_id=workspace_id,
                    connection_id=row.connection_id,
                    thread_key=key,
                    conversation_id=row.conversation_id,
                )
            )


async def remember_sent_id(
    platform: Platform, workspace_id: str, row_id: str, sent_id: str
) -> None:
    """Record the id of a sent outbox row as a thread key of its conversation (the row is
    already `sent`: a failure here is logged, never retried as a send)."""
    try:
        await platform.db.run(_remember_sent_id, platform, workspace_id, row_id, sent_id)
    except Exception:
        log.warning("could not record a sent message's id as a thread key", exc_info=True)


async def _send_one(
    platform: Platform, senders: Mapping[ChannelKind, Sender], workspace_id: str, row_id: str
) -> None:
    connection_id, message, carrier = await platform.db.run(
        _outbox_row, platform, workspace_id, row_id
    )
    try:
        connection = await platform.db.run(load_connection, platform, connection_id, tuple(senders))
        sender = senders[connection.kind]
        with send_span(
            workspace_id=workspace_id,
            channel=connection.kind,
            conversation_id=message.conversation_id,
            parent=carried_context(carrier),
        ):
            external_id = await sender.send(connection.config, connection.secrets, message)
    except DeliveryFailed as exc:
        log.warning("channel %s: a send failed: %s", connection_id, exc)
        await platform.db.run(_failed, platform, workspace_id, row_id, str(exc), exc.permanent)
        return
    except DeputyError as exc:  # the connection is gone or disabled: nothing can send it
        await platform.db.run(_failed, platform, workspace_id, row_id, exc.message, True)
        return
    except Exception as exc:  # an adapter's bug or an unexpected transport error: retry
        log.warning("channel %s: a send failed unexpectedly", connection_id, exc_info=True)
        await platform.db.run(
            _failed, platform, workspace_id, row_id, f"{type(exc).__name__}: {exc}", False
        )
        return
    await platform.db.run(_sent, platform, workspace_id, row_id, external_id)
    if external_id and connection.kind in THREADED_BY_SENT_ID:
        await remember_sent_id(platform, workspace_id, row_id, external_id)


async def deliver_due(platform: Platform, senders: Mapping[ChannelKind, Sender]) -> int:
    """Queue what conversations said since, then send the due outbox rows (conversations side
    by side, each conversation's rows one after the other, in order); how many rows were
    tried."""
    for workspace_id, connection_id, conversation_id in await platform.db.run(_behind, platform):
        await enqueue_replies(platform, workspace_id, connection_id, conversation_id)
    tried = 0
    for _round in range(MAX_SEND_ROUNDS):  # a sent row lets its conversation's next one go
        claimed = await platform.db.run(_claim_due, platform)
        if not claimed:
            break
        await asyncio.gather(*(_send_one(platform, senders, w, i) for w, i in claimed))
        tried += len(claimed)
    return tried


# The wake-up events of the sweepers running in this process (one per running app: tests
# may run several, each in its own event loop).
_wakeups: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def wake_delivery() -> None:
    """Send now instead of at the next sweep (after new replies were queued)."""
    for loop, event in list(_wakeups):
        loop.call_soon_threadsafe(event.set)


@contextlib.contextmanager
def wakeup_event() -> Iterator[asyncio.Event]:
    """An event `wake_delivery` sets, for a sweeper of the running loop."""
    wakeup = (asyncio.get_running_loop(), asyncio.Event())
    _wakeups.add(wakeup)
    try:
        yield wakeup[1]
    finally:
        _wakeups.discard(wakeup)
