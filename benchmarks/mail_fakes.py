"""Email for the channels benchmark: a customer's mail client (plain `smtplib` to Deputy's
built-in SMTP listener, answering in the thread of the last reply) and a fake outgoing SMTP
server (aiosmtpd on 127.0.0.1) that records when each of Deputy's replies arrives."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from aiosmtpd.controller import Controller
from benchmarks.served import free_port

SUPPORT = "support@shop.example"


@dataclass
class ReplyInbox:
    """Deputy's outgoing mail as it arrives: (arrival time, message)."""

    arrived: list[tuple[float, EmailMessage]] = field(default_factory=list)
    _condition: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._condition:
            self.arrived.append((time.perf_counter(), message))
            self._condition.notify_all()
        return "250 2.0.0 OK"

    def wait_for(self, text: str, timeout: float) -> tuple[float, EmailMessage]:
        """The first reply whose plain text contains `text`."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for at, message in self.arrived:
                    body = message.get_body(("plain",))
                    if body is not None and text in str(body.get_content()):
                        return at, message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"no reply containing {text!r} in {timeout} s")
                self._condition.wait(min(left, 0.2))


@contextmanager
def reply_inbox() -> Iterator[tuple[ReplyInbox, int]]:
    inbox = ReplyInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="smtp.fake")
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def connection_body(agent_id: str, smtp_port: int) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "kind": "email",
        "name": "email-bench",
        "config": {
            "address": SUPPORT,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_security": "none",
        },
        "secrets": {},
    }


@dataclass
class Customer:
    """One customer writing to support, each message in the thread of the last reply."""

    address: str
    last_reply: EmailMessage | None = None

    def message(self, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.address
        message["To"] = SUPPORT
        message["Message-ID"] = make_msgid(domain="customer.example")
        if self.last_reply is None:
            message["Subject"] = "A question about my order"
        else:
            message["Subject"] = "Re: " + str(self.last_reply["Subject"]).removeprefix("Re: ")
            reply_id = str(self.last_reply["Message-ID"])
            message["In-Reply-To"] = reply_id
            message["References"] = " ".join(
                filter(None, [str(self.last_reply.get("References", "")), reply_id])
            )
        message.set_content(text)
        return message


def send(listen: str, message: EmailMessage) -> None:
    host, _, port = listen.rpartition(":")
    with smtplib.SMTP(host, int(port), local_hostname="customer.example", timeout=30) as smtp:
        smtp.send_message(message)
