"""Reading a support mailbox over IMAP (blocking; callers run it in a worker thread).

Messages are read with `BODY.PEEK[]`, which leaves them unseen: a message is flagged `\\Seen`
only by `mark_seen`, which the email service calls after the gateway has stored the delivery.
A crash between the two leaves it unseen, so the next poll reads it again and the gateway's
dedup (by Message-ID) drops the repeat: nothing is lost and nothing is answered twice."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from deputy.channels.tls import client_tls_context
from deputy.domain.channels import EmailConfig

IMAP_TIMEOUT_SECONDS = 30.0
MAX_MESSAGES_PER_POLL = 50


class MailboxError(Exception):
    """The mailbox could not be read (unreachable, login refused, no such folder). The
    message never contains the password."""


@dataclass(frozen=True)
class FetchedMessage:
    uid: str
    raw: bytes


def _check(result: tuple[str, Sequence[object]], doing: str) -> Sequence[object]:
    status, data = result
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise MailboxError(f"IMAP {doing} failed: {status} {detail}".strip())
    return data


class Mailbox:
    """One IMAP session on a connection's mailbox (a context manager)."""

    def __init__(self, config: EmailConfig, password: str | None) -> None:
        if not config.imap_host:
            raise MailboxError("the connection has no imap_host")
        self.config = config
        self._password = password
        self._client: imaplib.IMAP4 | None = None

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        config = self.config
        host = str(config.imap_host)
        context = client_tls_context()
        try:
            if config.imap_security == "tls":
                client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    host, config.imap_port, ssl_context=context, timeout=IMAP_TIMEOUT_SECONDS
                )
            else:
                client = imaplib.IMAP4(host, config.imap_port, timeout=IMAP_TIMEOUT_SECONDS)
                if config.imap_security == "starttls":
                    client.starttls(ssl_context=context)
            self._client = client
            username = config.imap_username or str(config.address)
            _check(client.login(username, self._password or ""), "login")
            _check(client.select(_quoted(config.imap_mailbox)), f"select {config.imap_mailbox}")
        except (imaplib.IMAP4.error, OSError) as exc:
            self.close()
            raise MailboxError(f"IMAP {host}:{config.imap_port}: {_safe(exc)}") from None
        except MailboxError:
            self.close()
            raise

    @property
    def client(self) -> imaplib.IMAP4:
        if self._client is None:
            raise MailboxError("the mailbox is not open")
        return self._client

    def unseen(self, limit: int = MAX_MESSAGES_PER_POLL) -> list[FetchedMessage]:
        """Up to `limit` unseen messages, oldest first, left unseen."""
        try:
            data = _check(self.client.uid("SEARCH", "UNSEEN"), "search")
            first = data[0] if data else b""
            uids = first.split()[:limit] if isinstance(first, bytes) else []
            fetched: list[FetchedMessage] = []
            for uid in uids:
                parts = _check(self.client.uid("FETCH", uid.decode(), "(BODY.PEEK[])"), "fetch")
                for part in parts:
                    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
                        fetched.append(FetchedMessage(uid.decode(), part[1]))
                        break
            return fetched
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP read failed: {_safe(exc)}") from None

    def mark_seen(self, uid: str) -> None:
        try:
            _check(self.client.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "store")
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP flag failed: {_safe(exc)}") from None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.state == "SELECTED":
                client.close()
        except (imaplib.IMAP4.error, OSError):
            pass
        try:
            client.logout()  # closes the socket whatever the server answers
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):
                client.shutdown()


def _quoted(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (names with spaces, e.g. "Support Inbox")."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, imaplib.IMAP4.error) and text.startswith("b'"):
        text = text[2:-1]
    return f"{type(exc).__name__}: {text}"[:500]
