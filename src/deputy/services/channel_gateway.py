"""The gateway between channel adapters and conversations.

Inbound: `accept` stores a delivery before the adapter acknowledges it (a repeated
`delivery_id` is a duplicate and is dropped), then `process` finds the conversation its thread
keys point to (or starts one on the connection's agent), posts the message as a turn (the
delivery id is the turn's `client_message_id`, so processing twice never answers twice) and
hands what the agent said to the outbox. Deliveries a crash left `received` are processed again
by `keep_delivering`, the sweeper that also sends the outbox (`deputy.services.channel_outbox`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.channels.base import Sender
from deputy.domain import resources as r
from deputy.domain.channels import Attachment, ChannelKind, Inbound
from deputy.domain.errors import BudgetExhausted, DeputyError
from deputy.domain.ids import new_id
from deputy.services import conversations
from deputy.services.channel_connections import LoadedConnection, load_connection
from deputy.services.channel_outbox import (
    CUSTOMER_KINDS,
    deliver_due,
    enqueue_replies,
    wake_delivery,
    wakeup_event,
)
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.channels")

STALE_INBOUND_SECONDS = 600.0
SWEEP_SECONDS = 1.0
MAX_TEXT = 8000
OUTBOX_KINDS: tuple[ChannelKind, ...] = ("email", "slack", "telegram", "whatsapp", "sms")


@dataclass(frozen=True)
class Reception:
    """What became of a delivery: `duplicate` (seen before, dropped), or the conversation it
    went to and the agent's replies (empty while a human has the conversation)."""

    duplicate: bool
    inbound_id: str | None = None
    conversation_id: str | None = None
    replies: tuple[str, ...] = ()


# ---- inbound ------------------------------------------------------------------------------


def _payload(inbound: Inbound) -> dict[str, Any]:
    return asdict(inbound)


def _inbound(payload: Mapping[str, Any]) -> Inbound:
    data = dict(payload)
    data["thread_keys"] = tuple(data["thread_keys"])
    data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments", ()))
    return Inbound(**data)


def _store(
    platform: Platform,
    connection: LoadedConnection,
    inbound: Inbound,
    ignored_because: str | None = None,
) -> str | None:
    """The stored delivery's id (`received`, or `ignored` with the reason); None when this
    delivery id was stored before."""
    try:
        with platform.db.tenant_session(connection.workspace_id) as session:
            row = t.ChannelInboundRow(
                id=new_id("chin"),
                workspace_id=connection.workspace_id,
                connection_id=connection.id,
                delivery_id=inbound.delivery_id[:500],
                status="received" if ignored_because is None else "ignored",
                payload=_payload(inbound),
                error=None if ignored_because is None else ignored_because[:2000],
                processed_at=None if ignored_because is None else utcnow(),
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


async def ignore(
    platform: Platform, connection: LoadedConnection, inbound: Inbound, reason: str
) -> bool:
    """Record a delivery that is not answered (a bounce, an auto-reply); False for a repeat."""
    return await platform.db.run(_store, platform, connection, inbound, reason) is not None


async def accept(platform: Platform, connection: LoadedConnection, inbound: Inbound) -> str | None:
    """Store a delivery (the acknowledgement); None for a duplicate."""
    return await platform.db.run(_store, platform, connection, inbound)


def _known_conversation(
    session: Session, connection_id: str, keys: tuple[str, ...]
) -> t.Conversation | None:
    for key in keys:
        thread = session.scalar(
            select(t.ChannelThread).where(
                t.ChannelThread.connection_id == connection_id, t.ChannelThread.thread_key == key
            )
        )
        if thread is not None:
            conversation = session.get(t.Conversation, thread.conversation_id)
            if conversation is not None and conversation.status != "closed":
                return conversation
    return None


def _find(platform: Platform, connection: LoadedConnection, inbound: Inbound) -> str | None:
    with platform.db.tenant_session(connection.workspace_id) as session:
        found = _known_conversation(session, connection.id, inbound.thread_keys)
        if found is None:
            return None
        _remember(session, connection, found.id, inbound)
        return found.id


def _remember(
    session: Session, connection: LoadedConnection, conversation_id: str, inbound: Inbound
) -> None:
    """Bind the conversation to the connection (replies go to `reply_to`) and record the
    thread keys it does not have yet."""
    binding = session.scalar(
        select(t.ChannelBinding).where(
            t.ChannelBinding.connection_id == connection.id,
            t.ChannelBinding.conversation_id == conversation_id,
        )
    )
    if binding is None:
        binding = t.ChannelBinding(
            id=new_id("chb"),
            workspace_id=connection.workspace_id,
            connection_id=connection.id,
            conversation_id=conversation_id,
            reply_to=dict(inbound.reply_to),
            delivered_seq=0,
        )
        session.add(binding)
    else:
        binding.reply_to = dict(inbound.reply_to)
        binding.updated_at = utcnow()
    for key in dict.fromkeys(inbound.thread_keys):
        known = session.scalar(
            select(t.ChannelThread).where(
                t.ChannelThread.connection_id == connection.id, t.ChannelThread.thread_key == key
            )
        )
        if known is None:
            session.add(
                t.ChannelThread(
                    id=new_id("cht"),
                    workspace_id=connection.workspace_id,
                    connection_id=connection.id,
                    thread_key=key[:500],
                    conversation_id=conversation_id,
                )
            )
        elif known.conversation_id != conversation_id:  # the old thread's conversation closed
            known.conversation_id = conversation_id
    session.flush()


def _bind_new(
    platform: Platform, connection: LoadedConnection, conversation_id: str, inbound: Inbound
) -> None:
    with platform.db.tenant_session(connection.workspace_id) as session:
        _remember(session, connection, conversation_id, inbound)


# One conversation per new thread even when two of its messages arrive at once; a lock lives
# while someone holds or awaits it (threads are many, their bursts short).
_thread_locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}


@contextlib.asynccontextmanager
async def _one_at_a_time(connection: LoadedConnection, inbound: Inbound) -> AsyncIterator[None]:
    key = (connection.id, inbound.thread_keys[0] if inbound.thread_keys else "")
    lock, users = _thread_locks.get(key) or (asyncio.Lock(), 0)
    _thread_locks[key] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _thread_locks[key]
        if users <= 1:
            del _thread_locks[key]
        else:
            _thread_locks[key] = (lock, users - 1)


async def conversation_for(
    platform: Platform, connection: LoadedConnection, inbound: Inbound
) -> str:
    """The open conversation the delivery's thread keys point to, else a new one with the
    connection's agent on the connection's channel (the customer known by their channel id)."""
    async with _one_at_a_time(connection, inbound):
        found = await platform.db.run(_find, platform, connection, inbound)
        if found is not None:
            return found
        body = r.ConversationCreate(
            agent_id=connection.agent_id,
            channel=connection.kind,
            customer=r.CustomerRef(
                channel=connection.kind,
                external_id=inbound.external_customer_id[:200],
                display_name=(inbound.display_name or None) and inbound.display_name[:200],
            ),
            metadata={"connection_id": connection.id, **dict(list(inbound.metadata.items())[:19])},
        )
        created = await platform.db.run(
            conversations.create_conversation, platform, connection.principal, body
        )
        try:
            await platform.db.run(_bind_new, platform, connection, created.id, inbound)
        except IntegrityError:  # another process started this thread's conversation first
            found = await platform.db.run(_find, platform, connection, inbound)
            if found is None:
                raise
            return found
        return created.id


def message_text(inbound: Inbound) -> str:
    """The text the agent reads: the message, plus a line per attachment."""
    lines = [inbound.text.strip()] if inbound.text.strip() else []
    lines += [
        f"[attachment: {a.filename} ({a.content_type}, {a.size} bytes)]"
        for a in inbound.attachments
    ]
    text = "\n".join(lines) or "[empty message]"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _finish(
    platform: Platform,
    workspace_id: str,
    inbound_id: str,
    status: str,
    conversation_id: str | None,
    error: str | None,
) -> None:
    with platform.db.tenant_session(workspace_id) as session:
        session.execute(
            update(t.ChannelInboundRow)
            .where(t.ChannelInboundRow.id == inbound_id)
            .values(
                processed_at=utcnow(), status=status, conversation_id=conversation_id, error=error
            )
        )


async def process(
    platform: Platform, connection: LoadedConnection, inbound_id: str, inbound: Inbound
) -> Reception:
    """Answer a stored delivery and queue the replies for sending."""
    try:
        try:
            conversation_id = await conversation_for(platform, connection, inbound)
        except BudgetExhausted as exc:  # a spent budget stops new conversations: on record, why
            log.warning("channel %s: no new conversation: %s", connection.id, exc)
            reason = f"budget_exhausted: {exc.message}"[:2000]
            await platform.db.run(
                _finish, platform, connection.workspace_id, inbound_id, "ignored", None, reason
            )
            return Reception(False, inbound_id)
        body = r.MessageCreate(text=message_text(inbound), client_message_id=inbound_id)
        result: r.TurnResult | None = None
        try:
            result = await conversations.post_message(
                platform, connection.principal, conversation_id, body
            )
        except DeputyError as exc:  # the turn failed: the message is on record; say so
            log.warning("channel %s: the agent could not answer: %s", connection.id, exc)
        await platform.db.run(
            _finish,
            platform,
            connection.workspace_id,
            inbound_id,
            "processed",
            conversation_id,
            None,
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        await platform.db.run(
            _finish, platform, connection.workspace_id, inbound_id, "failed", None, error
        )
        raise
    await enqueue_replies(platform, connection.workspace_id, connection.id, conversation_id)
    wake_delivery()
    replies = tuple(e.text for e in (result.entries if result else []) if e.kind in CUSTOMER_KINDS)
    return Reception(False, inbound_id, conversation_id, replies)


async def receive(platform: Platform, connection: LoadedConnection, inbound: Inbound) -> Reception:
    """Store, answer and queue the replies of one delivery (adapters that can wait for the
    answer); a duplicate returns at once."""
    inbound_id = await accept(platform, connection, inbound)
    if inbound_id is None:
        return Reception(duplicate=True)
    return await process(platform, connection, inbound_id, inbound)


_background: set[asyncio.Task[Reception]] = set()


async def receive_in_background(
    platform: Platform, connection: LoadedConnection, inbound: Inbound
) -> bool:
    """Store the delivery and answer it after the adapter has acknowledged (webhooks that
    must answer within seconds); False for a duplicate."""
    inbound_id = await accept(platform, connection, inbound)
    if inbound_id is None:
        return False
    task = asyncio.create_task(process(platform, connection, inbound_id, inbound))
    _background.add(task)
    task.add_done_callback(_settled)
    return True


def _settled(task: asyncio.Task[Reception]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("a channel delivery could not be processed: %r", task.exception())


def _stale_inbound(platform: Platform) -> list[tuple[str, str, str, dict[str, Any]]]:
    cutoff = utcnow() - timedelta(seconds=STALE_INBOUND_SECONDS)
    with platform.db.session() as session:
        rows = session.scalars(
            select(t.ChannelInboundRow)
            .where(
                t.ChannelInboundRow.status == "received", t.ChannelInboundRow.created_at < cutoff
            )
            .limit(50)
        ).all()
        for row in rows:
            row.attempts += 1
            row.created_at = utcnow()  # not picked again before this try had its time
        return [(r.workspace_id, r.connection_id, r.id, dict(r.payload)) for r in rows]


async def resume_inbound(platform: Platform) -> int:
    """Process deliveries a crash left `received`; how many."""
    stale = await platform.db.run(_stale_inbound, platform)
    for _workspace_id, connection_id, inbound_id, payload in stale:
        try:
            connection = await platform.db.run(
                load_connection, platform, connection_id, OUTBOX_KINDS
            )
            await process(platform, connection, inbound_id, _inbound(payload))
        except Exception:
            log.warning("a stored channel delivery could not be processed", exc_info=True)
    return len(stale)


async def keep_delivering(
    platform: Platform, senders: Mapping[ChannelKind, Sender] | None = None
) -> None:
    """The outbox and inbound sweeper of this process (runs until cancelled)."""
    from deputy.channels import default_senders

    chosen = senders if senders is not None else default_senders()
    with wakeup_event() as wakeup:
        while True:
            try:
                await resume_inbound(platform)
                await deliver_due(platform, chosen)
            except Exception:
                log.warning("the channel outbox sweep failed; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), SWEEP_SECONDS)
            wakeup.clear()
