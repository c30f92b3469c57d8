"""The email channel's inbound side: the built-in SMTP listener and the IMAP pollers.

Both hand raw messages to `take`, which parses them and either stores them as **ignored**
(bounces, automatic replies, list mail, the mailbox's own messages: never answered, so never a
mail loop) or hands them to the channel gateway, which stores the delivery (dedup by
Message-ID), threads it to a conversation and answers after the acknowledgement. The listener
says `250` and the poller flags `\\Seen` only once the delivery is stored.

Threading is by Message-ID: a reply carries the ids of the messages it answers (In-Reply-To,
References), which are the conversation's thread keys. A thread key only counts for the
customer who owns the conversation: a stranger who quotes someone else's message (or is CC'd
on it) starts a conversation of their own instead of reading another customer's.

Attachments are stored in the platform's blob store (`email-<digest>-<n>`, deterministic, so a
repeated delivery rewrites the same blobs) and described to the agent by name, type and size;
one larger than the upload limit is described but not stored (`blob_key` None)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from deputy.channels.email.imap import Mailbox, MailboxError
from deputy.channels.email.listener import ListenerHandler, Received, start_listener
from deputy.channels.email.parse import ParsedEmail, parse_email, reply_to
from deputy.domain.channels import Attachment, EmailConfig, Inbound
from deputy.services import channel_gateway
from deputy.services.channel_connections import LoadedConnection, enabled_connections
from deputy.services.conversation_store import agent_spec
from deputy.services.deployment_routing import live_version
from deputy.services.platform import Platform
from deputy.store import tables as t

log = logging.getLogger("deputy.channels.email")

POLL_TICK_SECONDS = 1.0
T = TypeVar("T")


# ---- one message ------------------------------------------------------------------------


def _signature(platform: Platform, connection: LoadedConnection) -> str | None:
    """`channels.email.signature` of the version that answers email (the email deployment,
    else the `all` one, else the latest version)."""
    with platform.db.tenant_session(connection.workspace_id) as session:
        version = live_version(session, connection.agent_id, "email") or live_version(
            session, connection.agent_id
        )
        if version is None:
            version = session.scalar(
                select(t.AgentVersion.number)
                .where(t.AgentVersion.agent_id == connection.agent_id)
                .order_by(t.AgentVersion.number.desc())
                .limit(1)
            )
        if version is None:
            return None
        try:
            return agent_spec(session, connection.agent_id, version).channels.email.signature
        except Exception:  # a spec that cannot be read must not hold up the customer's mail
            log.warning("agent %s: no email signature", connection.agent_id, exc_info=True)
            return None


def _own_thread_keys(
    platform: Platform, connection: LoadedConnection, parsed: ParsedEmail
) -> tuple[str, ...]:
    """The message's thread keys minus those of another customer's conversation."""
    keys = parsed.thread_keys
    with platform.db.tenant_session(connection.workspace_id) as session:
        rows = session.execute(
            select(t.ChannelThread.thread_key, t.Customer.external_id)
            .join(t.Conversation, t.Conversation.id == t.ChannelThread.conversation_id)
            .join(t.Customer, t.Customer.id == t.Conversation.customer_id, isouter=True)
            .where(
                t.ChannelThread.connection_id == connection.id,
                t.ChannelThread.thread_key.in_(keys),
            )
        ).all()
    foreign = {key for key, owner in rows if (owner or "").lower() != parsed.from_address}
    return tuple(key for key in keys if key not in foreign) or (parsed.message_id,)


def _store_attachments(
    platform: Platform, connection: LoadedConnection, parsed: ParsedEmail
) -> tuple[Attachment, ...]:
    limit = platform.settings.max_upload_bytes
    digest = hashlib.sha256(f"{connection.id}\n{parsed.message_id}".encode()).hexdigest()[:32]
    stored: list[Attachment] = []
    for index, item in enumerate(parsed.attachments, start=1):
        key: str | None = f"email-{digest}-{index}"
        if len(item.content) > limit:
            key = None
        else:
            platform.blobs.put(
                connection.workspace_id, str(key), io.BytesIO(item.content), max_bytes=limit
            )
        stored.append(Attachment(item.filename, item.content_type, len(item.content), key))
    return tuple(stored)


def _ignore_reason(connection: LoadedConnection, parsed: ParsedEmail) -> str | None:
    assert isinstance(connection.config, EmailConfig)
    if parsed.ignored:
        return parsed.ignored
    if not parsed.from_address:
        return "no sender address"
    if parsed.from_address == str(connection.config.address).lower():
        return "sent by this mailbox itself"
    return None


async def take(
    platform: Platform, connection: LoadedConnection, raw: bytes, envelope_from: str | None
) -> str:
    """Store one raw message for a connection: `accepted` (answered after this returns),
    `ignored` (stored, never answered), or `duplicate` (seen before). Raises when it could not
    be stored (the caller leaves the message for a later try)."""
    try:
        parsed = await asyncio.to_thread(parse_email, raw, envelope_from=envelope_from)
    except Exception as exc:  # a message the parser cannot read: kept on record, unanswered
        digest = hashlib.sha256(raw).hexdigest()[:40]
        parsed = ParsedEmail(
            message_id=f"<sha256.{digest}@deputy.invalid>",
            from_address="",
            from_name=None,
            reply_address="",
            recipients=(),
            subject="",
            text="",
            in_reply_to=None,
            references=(),
            ignored=f"unreadable message: {type(exc).__name__}",
        )
    reason = _ignore_reason(connection, parsed)
    if reason is None:
        keys = await platform.db.run(_own_thread_keys, platform, connection, parsed)
        signature = await platform.db.run(_signature, platform, connection)
        attachments = await asyncio.to_thread(_store_attachments, platform, connection, parsed)
    else:
        keys, signature, attachments = parsed.thread_keys, None, ()
    inbound = Inbound(
        delivery_id=parsed.message_id,
        external_customer_id=parsed.from_address or "unknown",
        text=parsed.text,
        thread_keys=keys,
        reply_to=reply_to(parsed, signature),
        display_name=parsed.from_name,
        attachments=attachments,
        metadata={"email_subject": parsed.subject[:200]} if parsed.subject else {},
    )
    if reason is not None:
        stored = await channel_gateway.ignore(platform, connection, inbound, reason)
        log.info("email %s on %s not answered: %s", parsed.message_id, connection.id, reason)
        return "ignored" if stored else "duplicate"
    accepted = await channel_gateway.receive_in_background(platform, connection, inbound)
    return "accepted" if accepted else "duplicate"


# ---- the SMTP listener ------------------------------------------------------------------


def _serving(platform: Platform, address: str) -> list[LoadedConnection]:
    return [
        connection
        for connection in enabled_connections(platform, "email")
        if isinstance(connection.config, EmailConfig)
        and str(connection.config.address).lower() == address
    ]


def listener_handler(platform: Platform) -> ListenerHandler:
    """The SMTP handler: RCPT accepted for addresses an enabled connection serves; DATA
    stored for each of them."""

    async def is_served(address: str) -> bool:
        return bool(await platform.db.run(_serving, platform, address))

    async def store(received: Received) -> None:
        seen: set[str] = set()
        for address in received.recipients:
            for connection in await platform.db.run(_serving, platform, address):
                if connection.id not in seen:
                    seen.add(connection.id)
                    await take(platform, connection, received.raw, received.mail_from)

    return ListenerHandler(is_served, store)


# ---- the IMAP pollers -------------------------------------------------------------------


async def poll_mailbox(platform: Platform, connection: LoadedConnection) -> int:
    """Read a connection's unseen messages once; how many were stored (or were repeats).
    Each is flagged `\\Seen` after it is stored; one that could not be stored stays unseen
    and the rest wait for the next poll."""
    assert isinstance(connection.config, EmailConfig)
    mailbox = Mailbox(connection.config, connection.secret("imap_password"))
    handled = 0
    try:
        await _in_thread(mailbox.open)
        for message in await _in_thread(mailbox.unseen):
            await take(platform, connection, message.raw, None)
            await _in_thread(mailbox.mark_seen, message.uid)
            handled += 1
    finally:
        await _in_thread(mailbox.close)
    return handled


async def _in_thread(call: Callable[..., T], *args: object) -> T:
    """`call` in a worker thread; when the caller is cancelled meanwhile, the call is still
    waited for (it is bounded by the IMAP timeout), so the session's socket is never left to
    a thread nobody closes after."""
    future = asyncio.ensure_future(asyncio.to_thread(call, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


async def _poll_quietly(platform: Platform, connection: LoadedConnection) -> None:
    try:
        await poll_mailbox(platform, connection)
    except MailboxError as exc:
        log.warning("email connection %s: %s", connection.id, exc)
    except Exception:
        log.warning("email connection %s: polling failed", connection.id, exc_info=True)


def _polled(platform: Platform) -> list[LoadedConnection]:
    return [
        connection
        for connection in enabled_connections(platform, "email")
        if isinstance(connection.config, EmailConfig) and connection.config.imap_host
    ]


async def keep_polling(platform: Platform) -> None:
    """Poll every enabled email connection that has an IMAP mailbox, each every
    `poll_seconds` (one poll at a time per connection), until cancelled. Connections created,
    changed or disabled meanwhile are picked up within a second."""
    loop = asyncio.get_running_loop()
    running: dict[str, asyncio.Task[None]] = {}
    due: dict[str, float] = {}
    try:
        while True:
            try:
                connections = await platform.db.run(_polled, platform)
            except Exception:
                log.warning("could not list the email connections", exc_info=True)
                connections = []
            now = loop.time()
            current = {connection.id for connection in connections}
            for gone in [key for key, task in running.items() if task.done()]:
                del running[gone]
            for gone in set(due) - current:
                del due[gone]
            for connection in connections:
                task = running.get(connection.id)
                if (task is not None and not task.done()) or now < due.get(connection.id, 0.0):
                    continue
                assert isinstance(connection.config, EmailConfig)
                due[connection.id] = now + connection.config.poll_seconds
                running[connection.id] = asyncio.create_task(_poll_quietly(platform, connection))
            await asyncio.sleep(POLL_TICK_SECONDS)
    finally:
        for task in running.values():
            task.cancel()
        for task in running.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def keep_serving_email(platform: Platform) -> None:
    """The built-in SMTP listener (when `DEPUTY_SMTP_LISTEN` is set) and the IMAP pollers of
    every enabled email connection, until cancelled."""
    server: asyncio.Server | None = None
    listen = platform.settings.smtp_listen
    if listen:
        try:
            server = await start_listener(listen, listener_handler(platform))
            log.info("SMTP listener on %s", listen)
        except OSError:
            log.error("the SMTP listener could not listen on %s", listen, exc_info=True)
    try:
        await keep_polling(platform)
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
