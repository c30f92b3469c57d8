"""Outbound email: a reply composed to thread in the customer's client, sent by SMTP.

The reply goes from the connection's address (with its display name) to the customer's
address, as `Re: <subject>`, with a new Message-ID and `In-Reply-To`/`References` pointing at
the customer's message, so every client shows it in the same thread. Agent replies carry
`Auto-Submitted: auto-replied` (RFC 3834) so that well-behaved auto-responders do not answer
them; a colleague's reply from the queue is a person writing and carries none. The body is
plain text with a simple HTML alternative, and the agent's email signature
(`channels.email.signature` of its spec, carried in `reply_to["signature"]`) after the
standard "-- " delimiter.

The returned external id is the Message-ID, which the gateway records as a thread key so a
reply whose client dropped `References` still finds the conversation.

Errors: a temporary failure (4xx, connection refused or reset, timeout, TLS or login trouble
that an operator can fix) raises `DeliveryFailed()` and the outbox retries with backoff; a
permanent refusal (5xx for the recipient, the sender or the content) raises
`DeliveryFailed(permanent=True)`. Passwords never appear in an error."""

from __future__ import annotations

import asyncio
import html
import re
import smtplib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from deputy.channels.base import DeliveryFailed
from deputy.channels.tls import client_tls_context
from deputy.domain.channels import EmailConfig, KindConfig, Outbound

SEND_TIMEOUT_SECONDS = 30.0
REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|réf|rif)\s*:", re.I)
MAX_REFERENCES = 20


def reply_subject(subject: str | None) -> str:
    """`Re: <subject>`, without stacking prefixes."""
    subject = " ".join((subject or "").split())
    if not subject:
        return "Re: your message"
    return subject if REPLY_PREFIX.match(subject) else f"Re: {subject}"


def _address(addr_spec: str, name: str | None = None) -> Address:
    try:
        return Address(display_name=(name or "").strip(), addr_spec=addr_spec)
    except (ValueError, IndexError) as exc:
        raise DeliveryFailed(f"not a valid address: {addr_spec!r}", permanent=True) from exc


def _html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>\n"
        for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n{body}</body></html>\n'


def compose_reply(config: EmailConfig, message: Outbound) -> EmailMessage:
    """The reply to send for one outbox message (raises `DeliveryFailed` when it cannot be
    addressed)."""
    target: Mapping[str, Any] = message.reply_to
    customer = str(target.get("address") or "")
    if "@" not in customer:
        raise DeliveryFailed("the conversation has no customer email address", permanent=True)
    email = EmailMessage()
    email["From"] = _address(str(config.address), config.display_name)
    email["To"] = _address(customer, target.get("name"))
    email["Subject"] = reply_subject(target.get("subject"))
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=str(config.address).rsplit("@", 1)[1])
    replying_to = target.get("message_id")
    if replying_to:
        email["In-Reply-To"] = str(replying_to)
        references = [str(r) for r in target.get("references") or [replying_to]]
        email["References"] = " ".join(references[-MAX_REFERENCES:])
    if message.author == "agent":
        email["Auto-Submitted"] = "auto-replied"
        email["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    text = message.text.strip()
    signature = str(target.get("signature") or "").strip()
    if signature:
        text = f"{text}\n\n-- \n{signature}"
    email.set_content(text + "\n")
    email.add_alternative(_html(text), subtype="html")
    return email


def _permanent(code: int) -> bool:
    return 500 <= code < 600


def _deliver(config: EmailConfig, password: str | None, email: EmailMessage, to: str) -> None:
    """Blocking: one SMTP session that hands over one message."""
    helo = str(config.address).rsplit("@", 1)[1]
    context = client_tls_context()
    client: smtplib.SMTP
    if config.smtp_security == "tls":
        client = smtplib.SMTP_SSL(
            config.smtp_host,
            config.smtp_port,
            local_hostname=helo,
            timeout=SEND_TIMEOUT_SECONDS,
            context=context,
        )
    else:
        client = smtplib.SMTP(
            config.smtp_host, config.smtp_port, local_hostname=helo, timeout=SEND_TIMEOUT_SECONDS
        )
    with client:
        if config.smtp_security == "starttls":
            client.starttls(context=context)
        if config.smtp_username:
            if not password:
                raise DeliveryFailed("smtp_username is set but the smtp_password secret is not")
            client.login(config.smtp_username, password)
        client.send_message(email, from_addr=str(config.address), to_addrs=[to])


def deliver(config: EmailConfig, password: str | None, email: EmailMessage) -> None:
    """Send `email` to its `To` address, mapping SMTP outcomes to `DeliveryFailed`."""
    to = str(email["To"].addresses[0].addr_spec)
    try:
        _deliver(config, password, email, to)
    except DeliveryFailed:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _text in exc.recipients.values()]
        detail = "; ".join(f"{code} {text!r}" for code, text in exc.recipients.values())
        raise DeliveryFailed(
            f"the recipient was refused: {detail}", permanent=all(map(_permanent, codes))
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(f"SMTP login failed ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        said = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        raise DeliveryFailed(
            f"the SMTP server answered {exc.smtp_code} {said}".strip(),
            permanent=_permanent(exc.smtp_code),
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(f"the SMTP server does not support it: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, TLS
        raise DeliveryFailed(f"SMTP unavailable: {type(exc).__name__}: {exc}") from None


class EmailSender:
    """The email channel's outbox sender (one SMTP session per message, off the event loop)."""

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        if not isinstance(config, EmailConfig):
            raise DeliveryFailed("not an email connection", permanent=True)
        email = compose_reply(config, message)
        await asyncio.to_thread(deliver, config, secrets.get("smtp_password") or None, email)
        return str(email["Message-ID"])
