"""The gateway between channel adapters and conversations.

Inbound: `accept` stores a delivery before the adapter acknowledges it (a repeated
`delivery_id` is a duplicate and is dropped), then `process` finds the conversation its thread
keys point to (or starts one on the connection's agent), posts the message as a turn (the
delivery id is the turn's `client_message_id`, so processing twice never answers twice) and
hands what the agent said to the outbox. Deliveries a crash left `received` are processed again
by `keep_delivering`.

Outbound: every `agent_message` and `human_message` entry of a conversation carried on a
connection becomes one outbox row, exactly once (a binding's `delivered_seq` moves in the same
transaction), so a colleague's reply from the queue goes out on the channel too. Rows are sent
by the kind's `Sender` and retried with exponential backoff until sent or out of attempts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.channels.base import DeliveryFailed, Sender
from deputy.domain import resources as r
from deputy.domain.channels import Attachment, ChannelKind, Inbound, Outbound
from deputy.domain.errors import DeputyError
from deputy.domain.ids import new_id
from deputy.services import conversations
from deputy.services.channel_connections import LoadedConnection, load_connection
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.channels")

MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 300.0
SEND_LEASE_SECONDS = 60.0
STALE_INBOUND_SECONDS = 600.0
SWEEP_SECONDS = 1.0
CUSTOMER_KINDS = ("agent_message", "human_message")
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


def backoff_seconds(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 2, 4, 8, ... up to five minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 2.0**attempts))


# ---- inbound ------------------------------------------------------------------------------


def _payload(inbound: Inbound) -> dict[str, Any]:
    return asdict(inbound)


def _inbound(payload: Mapping[str, Any]) -> Inbound:
    data = dict(payload)
    data["thread_keys"] = tuple(data["thread_keys"])
    data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments", ()))
    return Inbound(**data)


def _store(platform: Platform, connection: LoadedConnection, inbound: Inbound) -> str | None:
    """The stored delivery's id; None when this delivery id was stored before."""
    try:
        with platform.db.tenant_session(connection.workspace_id) as session:
            row = t.ChannelInboundRow(
                id=new_id("chin"),
                workspace_id=connection.workspace_id,
                connection_id=connection.id,
                delivery_id=inbound.delivery_id[:500],
                status="received",
                payload=_payload(inbound),
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


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


# One conversation per new thread even when two of its messages arrive at once.
_thread_locks: dict[tuple[str, str], asyncio.Lock] = {}


def _lock(connection: LoadedConnection, inbound: Inbound) -> asyncio.Lock:
    key = (connection.id, inbound.thread_keys[0] if inbound.thread_keys else "")
    return _thread_locks.setdefault(key, asyncio.Lock())


async def conversation_for(
    platform: Platform, connection: LoadedConnection, inbound: Inbound
) -> str:
    """The open conversation the delivery's thread keys point to, else a new one with the
    connection's agent on the connection's channel (the customer known by their channel id)."""
    async with _lock(connection, inbound):
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
        await platform.db.run(_bind_new, platform, connection, created.id, inbound)
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
        conversation_id = await conversation_for(platform, connection, inbound)
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


# ---- outbound -----------------------------------------------------------------------------


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
                        payload=asdict(message),
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
    another process leaves them alone): (workspace id, row id)."""
    now = utcnow()
    claimed: list[tuple[str, str]] = []
    with platform.db.session() as session:
        due = session.execute(
            select(
                t.ChannelOutboxRow.workspace_id,
                t.ChannelOutboxRow.id,
                t.ChannelOutboxRow.next_attempt_at,
            )
            .where(
                t.ChannelOutboxRow.status == "pending", t.ChannelOutboxRow.next_attempt_at <= now
            )
            .order_by(t.ChannelOutboxRow.next_attempt_at)
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


def _outbox_row(platform: Platform, workspace_id: str, row_id: str) -> tuple[str, Outbound, int]:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.ChannelOutboxRow, row_id)
        return row.connection_id, Outbound(**row.payload), row.attempts


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


async def _send_one(
    platform: Platform, senders: Mapping[ChannelKind, Sender], workspace_id: str, row_id: str
) -> None:
    connection_id, message, _attempts = await platform.db.run(
        _outbox_row, platform, workspace_id, row_id
    )
    try:
        connection = await platform.db.run(load_connection, platform, connection_id, tuple(senders))
        sender = senders[connection.kind]
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


async def deliver_due(platform: Platform, senders: Mapping[ChannelKind, Sender]) -> int:
    """Queue what conversations said since, then send every due outbox row once; how many
    rows were tried."""
    for workspace_id, connection_id, conversation_id in await platform.db.run(_behind, platform):
        await enqueue_replies(platform, workspace_id, connection_id, conversation_id)
    claimed = await platform.db.run(_claim_due, platform)
    await asyncio.gather(*(_send_one(platform, senders, w, i) for w, i in claimed))
    return len(claimed)


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


_wakeup: asyncio.Event | None = None


def wake_delivery() -> None:
    """Send now instead of at the next sweep (after new replies were queued)."""
    if _wakeup is not None:
        _wakeup.set()


async def keep_delivering(
    platform: Platform, senders: Mapping[ChannelKind, Sender] | None = None
) -> None:
    """The outbox and inbound sweeper of this process (runs until cancelled)."""
    global _wakeup
    from deputy.channels import default_senders

    chosen = senders if senders is not None else default_senders()
    _wakeup = asyncio.Event()
    try:
        while True:
            try:
                await resume_inbound(platform)
                await deliver_due(platform, chosen)
            except Exception:
                log.warning("the channel outbox sweep failed; trying again", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_wakeup.wait(), SWEEP_SECONDS)
            _wakeup.clear()
    finally:
        _wakeup = None
