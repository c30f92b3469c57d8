"""The built-in SMTP listener (aiosmtpd on the application's event loop).

It is a final destination, never a relay: `RCPT TO` is accepted only for an address an enabled
email connection serves (`550` otherwise), and the message is acknowledged (`250`) only after
the platform stored it, so a sending server that got `250` can forget the message; when storing
fails it gets `451` and tries again later. What is done with a message is the caller's
business (`Intake`): this module only speaks SMTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("deputy.channels.email")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
MAX_RECIPIENTS = 50
SMTP_TIMEOUT_SECONDS = 120.0

IsServed = Callable[[str], Awaitable[bool]]
"""Whether an address (lower case) is served by an enabled connection."""


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope sender (`<>` for bounces) and the recipients the
    listener accepted (lower case)."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes


Store = Callable[[Received], Awaitable[None]]
"""Store a received message (raises when it could not be stored)."""


class ListenerHandler:
    """The aiosmtpd handler (its hooks are named `handle_<VERB>`): recipient check at RCPT,
    storage at DATA."""

    def __init__(self, is_served: IsServed, store: Store) -> None:
        self._is_served = is_served
        self._store = store

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        del server, session, rcpt_options
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            served = await self._is_served(address.strip().lower())
        except Exception:
            log.warning("the SMTP listener could not check a recipient", exc_info=True)
            return "451 4.3.0 Temporary failure, try again later"
        if not served:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such mailbox here"
        envelope.rcpt_tos.append(address.strip().lower())
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        content = envelope.original_content or envelope.content
        raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        if not raw:
            return "554 5.6.0 Empty message"
        received = Received(
            mail_from=envelope.mail_from or "<>", recipients=tuple(envelope.rcpt_tos), raw=raw
        )
        try:
            await self._store(received)
        except Exception:
            log.warning("the SMTP listener could not store a message", exc_info=True)
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 OK: queued"


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` into its parts (the setting is validated; this only splits it)."""
    host, _, port = value.rpartition(":")
    return host, int(port)


async def start_listener(
    listen: str, handler: ListenerHandler, *, hostname: str = "deputy"
) -> asyncio.Server:
    """Serve SMTP on `listen` ("host:port") until the returned server is closed. `hostname`
    is the greeting name (given, so no slow reverse lookup happens at start)."""
    host, port = parse_listen(listen)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=hostname,
            data_size_limit=MAX_MESSAGE_BYTES,
            timeout=SMTP_TIMEOUT_SECONDS,
            enable_SMTPUTF8=True,
            loop=loop,
        )

    return await loop.create_server(protocol, host=host, port=port)
