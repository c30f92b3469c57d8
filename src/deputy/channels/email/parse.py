"""One raw email into what the platform needs: who wrote, what they wrote (quotes and
signature stripped), how it threads, what is attached, and whether it must be left unanswered.

Bounces and automatic replies are recognised here and never answered (an agent answering an
out-of-office that answers the agent is a mail loop). Attachments are returned with their
bytes; the caller decides where they go (the email service stores them in the platform's blob
store). Nothing here touches the network or the database."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import PurePosixPath
from typing import Any

from deputy.channels.email.html_text import html_to_text
from deputy.channels.email.quotes import strip_quotes

MESSAGE_ID = re.compile(r"<[^<>\s]{1,450}>")
MAX_REFERENCES = 20
BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
LIST_HEADERS = ("List-Id", "List-Unsubscribe", "List-Post", "Mailing-List")
AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Auto-Response-Suppress")
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})


@dataclass(frozen=True)
class RawAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class ParsedEmail:
    """A message as the channel sees it. `message_id` is always set (a stable digest of the
    raw bytes stands in when the sender gave none); `ignored` says why the message must not
    be answered (a bounce, an automatic reply, list mail), None for a customer's message."""

    message_id: str
    from_address: str
    from_name: str | None
    reply_address: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    in_reply_to: str | None
    references: tuple[str, ...]
    attachments: tuple[RawAttachment, ...] = ()
    ignored: str | None = None

    @property
    def thread_keys(self) -> tuple[str, ...]:
        """The ids this message may continue, most specific first, then its own id (so a
        later reply that only references this message finds the conversation)."""
        keys = [self.in_reply_to, *reversed(self.references), self.message_id]
        return tuple(dict.fromkeys(key for key in keys if key))


def message_ids(value: str | None) -> list[str]:
    """The `<id>` tokens of a Message-ID, In-Reply-To or References header, in order."""
    return MESSAGE_ID.findall(value or "")


def _raw_header(message: Message, name: str) -> str:
    """A header's value as sent, unfolded, without the (slow) structured parsing of the
    default policy: most headers here are only tokens (ids, keywords) or addresses."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return " ".join(str(value).split())
    return ""


def _decoded(value: str) -> str:
    """RFC 2047 encoded words (`=?utf-8?q?...?=`) decoded; undecodable text kept as is."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError):
        return value


def _header(message: Message, name: str) -> str:
    return _decoded(_raw_header(message, name)).strip()


def _sender(message: Message) -> tuple[str, str | None]:
    name, address = parseaddr(_raw_header(message, "From"))
    return address.strip().lower(), (_decoded(name).strip() or None)


def _reply_address(message: Message, sender: str) -> str:
    """Where replies go: the Reply-To address when it is at the sender's own domain (a team
    address, a no-reply sender), else the sender. A Reply-To elsewhere is not followed: with a
    forged From it would send one customer's conversation to a stranger."""
    _name, address = parseaddr(_raw_header(message, "Reply-To"))
    address = address.strip().lower()
    if "@" in address and "@" in sender and address.rsplit("@", 1)[1] == sender.rsplit("@", 1)[1]:
        return address
    return sender


def _recipients(message: Message) -> tuple[str, ...]:
    pairs = getaddresses(
        [_raw_header(message, h) for h in ("To", "Cc", "Delivered-To", "X-Original-To")]
    )
    return tuple(dict.fromkeys(address.lower() for _name, address in pairs if "@" in address))


def ignore_reason(message: Message, envelope_from: str | None = None) -> str | None:
    """Why a message must be stored but not answered, or None for a customer's message.

    `envelope_from`: the SMTP MAIL FROM when known (the listener); otherwise the
    Return-Path header stands in (IMAP). An empty return path (`<>`) marks a bounce or
    another automatic notification (RFC 5321 4.5.5)."""
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    if content_type == "multipart/report" and report_type in ("delivery-status", ""):
        return "bounce: a delivery status notification"
    if any(part.get_content_type() == "message/delivery-status" for part in message.walk()):
        return "bounce: a delivery status notification"
    sender, _name = _sender(message)
    if sender.split("@")[0] in BOUNCE_SENDERS:
        return f"bounce: sent by {sender.split('@')[0]}"
    if envelope_from is not None:
        null_sender = envelope_from.strip() in ("", "<>")
    else:
        null_sender = _header(message, "Return-Path") == "<>"
    if null_sender:
        return "bounce: an empty return path"
    if content_type == "multipart/report":
        return f"automatic: a {report_type} report"
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"automatic: Auto-Submitted {auto_submitted.split(';')[0]}"
    for name in AUTO_REPLY_HEADERS:
        if _header(message, name):
            return f"automatic: {name}"
    precedence = _header(message, "Precedence").lower()
    if precedence in BULK_PRECEDENCE:
        return f"automatic: Precedence {precedence}"
    for name in LIST_HEADERS:
        if _header(message, name):
            return f"list mail: {name}"
    return None


def _body_text(message: EmailMessage) -> str:
    """The plain text a person would read: the text part when there is one (HTML only when
    there is not), its quoted history and signature stripped."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if body.get_content_type() == "text/html":
        content = html_to_text(content)
    return strip_quotes(content)


def _safe_filename(name: str | None) -> str:
    """The last path component of a sender-chosen name, without control characters."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    return re.sub(r"[\x00-\x1f\x7f]", "", base).strip(" .")[:200]


def _attachments(message: EmailMessage) -> tuple[RawAttachment, ...]:
    """Files the customer attached; images embedded in the HTML (signature logos, pasted
    screenshots referenced by Content-ID) are not files they meant to send."""
    found: list[RawAttachment] = []
    for part in message.iter_attachments():
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        inline = part.get_content_disposition() == "inline"
        if inline and part.get("Content-ID") and part.get_content_maintype() == "image":
            continue
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            continue
        filename = _safe_filename(part.get_filename()) or f"attachment-{len(found) + 1}"
        found.append(RawAttachment(filename, part.get_content_type(), content))
    return tuple(found)


def _stand_in_id(raw: bytes) -> str:
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@deputy.invalid>"


def parse_email(raw: bytes, *, envelope_from: str | None = None) -> ParsedEmail:
    """Parse one RFC 5322 message (as received, CRLF or LF line ends)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    own = message_ids(_header(message, "Message-ID"))
    message_id = own[0] if own else _stand_in_id(raw)
    sender, name = _sender(message)
    reason = ignore_reason(message, envelope_from)
    replying_to = message_ids(_header(message, "In-Reply-To"))
    return ParsedEmail(
        message_id=message_id,
        from_address=sender,
        from_name=name,
        reply_address=_reply_address(message, sender),
        recipients=_recipients(message),
        subject=" ".join(_header(message, "Subject").split())[:500],
        text="" if reason else _body_text(message),
        in_reply_to=replying_to[0] if replying_to else None,
        references=tuple(message_ids(_header(message, "References"))[-MAX_REFERENCES:]),
        attachments=() if reason else _attachments(message),
        ignored=reason,
    )


def reply_to(parsed: ParsedEmail, signature: str | None = None) -> dict[str, Any]:
    """What a reply to this message needs (stored with the conversation's binding)."""
    data: dict[str, Any] = {
        "address": parsed.reply_address,
        "name": parsed.from_name,
        "subject": parsed.subject,
        "message_id": parsed.message_id,
        "references": [*parsed.references, parsed.message_id][-MAX_REFERENCES:],
    }
    if signature:
        data["signature"] = signature
    return data
