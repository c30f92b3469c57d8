"""The outgoing reply (addressing, threading headers, loop protection, signature) and how SMTP
outcomes become retryable or permanent failures."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import pytest

from deputy.channels.base import DeliveryFailed
from deputy.channels.email import send
from deputy.channels.email.send import EmailSender, compose_reply, reply_subject
from deputy.domain.channels import EmailConfig, Outbound, SlackConfig

CONFIG = EmailConfig(
    address="support@acme.example",
    display_name="Acme Support",
    smtp_host="smtp.acme.example",
    smtp_port=2525,
    smtp_security="none",
)
REPLY_TO = {
    "address": "jane@example.test",
    "name": "Jane Doe",
    "subject": "Order 1234",
    "message_id": "<m2@example.test>",
    "references": ["<m1@example.test>", "<m2@example.test>"],
}


def outbound(text: str = "Your order ships today.", **changes: Any) -> Outbound:
    return Outbound(
        conversation_id="cnv_1",
        entry_seq=3,
        text=text,
        reply_to={**REPLY_TO, **changes.pop("reply_to", {})},
        **changes,
    )


def test_a_reply_threads_in_the_customers_client() -> None:
    email = compose_reply(CONFIG, outbound())
    assert str(email["From"]) == "Acme Support <support@acme.example>"
    assert str(email["To"]) == "Jane Doe <jane@example.test>"
    assert email["Subject"] == "Re: Order 1234"
    assert email["In-Reply-To"] == "<m2@example.test>"
    assert email["References"] == "<m1@example.test> <m2@example.test>"
    assert email["Message-ID"].endswith("@acme.example>")
    assert email["Auto-Submitted"] == "auto-replied"
    plain = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content() == "Your order ships today.\n"
    assert html is not None and "<p>Your order ships today.</p>" in html.get_content()


def test_each_reply_has_its_own_message_id() -> None:
    assert (
        compose_reply(CONFIG, outbound())["Message-ID"]
        != compose_reply(CONFIG, outbound())["Message-ID"]
    )


def test_the_signature_follows_the_standard_delimiter_and_html_is_escaped() -> None:
    email = compose_reply(
        CONFIG, outbound("Use <b>code</b> & save", reply_to={"signature": "Acme\nacme.example"})
    )
    plain = email.get_body(preferencelist=("plain",))
    html = email.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().endswith(
        "Use <b>code</b> & save\n\n-- \nAcme\nacme.example\n"
    )
    assert html is not None and "Use &lt;b&gt;code&lt;/b&gt; &amp; save" in html.get_content()


def test_a_colleagues_reply_is_not_marked_automatic() -> None:
    email = compose_reply(CONFIG, outbound(author="human"))
    assert email["Auto-Submitted"] is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order 1234", "Re: Order 1234"),
        ("RE: Order 1234", "RE: Order 1234"),
        ("Aw: Bestellung", "Aw: Bestellung"),
        ("", "Re: your message"),
        (None, "Re: your message"),
        ("  spaced\n out  ", "Re: spaced out"),
    ],
)
def test_reply_subject(subject: str | None, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_a_conversation_without_an_address_cannot_be_sent() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        compose_reply(CONFIG, outbound(reply_to={"address": ""}))
    assert failed.value.permanent


class FakeSMTP:
    """Stands in for smtplib.SMTP: records the session, fails as told."""

    sessions: list[FakeSMTP] = []
    fail_with: BaseException | None = None

    def __init__(self, host: str, port: int, **_kwargs: Any) -> None:
        if isinstance(FakeSMTP.fail_with, OSError):
            raise FakeSMTP.fail_with
        self.calls: list[tuple[str, Any]] = [("connect", (host, port))]
        FakeSMTP.sessions.append(self)

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.calls.append(("quit", None))

    def starttls(self, **_kwargs: Any) -> None:
        self.calls.append(("starttls", None))

    def login(self, user: str, password: str) -> None:
        self.calls.append(("login", (user, password)))

    def send_message(self, email: EmailMessage, from_addr: str, to_addrs: list[str]) -> None:
        if FakeSMTP.fail_with is not None:
            raise FakeSMTP.fail_with
        self.calls.append(("send", (from_addr, to_addrs, email["Subject"])))


@pytest.fixture
def fake_smtp(monkeypatch: pytest.MonkeyPatch) -> type[FakeSMTP]:
    FakeSMTP.sessions = []
    FakeSMTP.fail_with = None
    monkeypatch.setattr(send.smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


def run_send(config: EmailConfig = CONFIG, secrets: dict[str, str] | None = None) -> str | None:
    return asyncio.run(EmailSender().send(config, secrets or {}, outbound()))


def test_a_send_logs_in_with_starttls_and_returns_the_message_id(
    fake_smtp: type[FakeSMTP],
) -> None:
    config = CONFIG.model_copy(update={"smtp_security": "starttls", "smtp_username": "bot"})
    sent_id = run_send(config, {"smtp_password": "s3cret"})
    assert sent_id is not None and sent_id.startswith("<") and sent_id.endswith("@acme.example>")
    (session,) = fake_smtp.sessions
    assert [name for name, _ in session.calls] == ["connect", "starttls", "login", "send", "quit"]
    assert session.calls[2][1] == ("bot", "s3cret")
    assert session.calls[3][1] == ("support@acme.example", ["jane@example.test"], "Re: Order 1234")


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (ConnectionRefusedError(111, "Connection refused"), False),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (smtplib.SMTPRecipientsRefused({"jane@example.test": (450, b"mailbox busy")}), False),
        (smtplib.SMTPRecipientsRefused({"jane@example.test": (550, b"no such user")}), True),
        (smtplib.SMTPSenderRefused(553, b"not yours", "support@acme.example"), True),
        (smtplib.SMTPDataError(421, b"try later"), False),
        (smtplib.SMTPDataError(554, b"spam"), True),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
    ],
)
def test_smtp_outcomes_map_to_retry_or_give_up(
    fake_smtp: type[FakeSMTP], error: BaseException, permanent: bool
) -> None:
    fake_smtp.fail_with = error
    with pytest.raises(DeliveryFailed) as failed:
        run_send(CONFIG, {"smtp_password": "s3cret"})
    assert failed.value.permanent is permanent
    assert "s3cret" not in str(failed.value)


def test_a_username_without_a_password_is_a_clear_retryable_error(
    fake_smtp: type[FakeSMTP],
) -> None:
    with pytest.raises(DeliveryFailed, match="smtp_password") as failed:
        run_send(CONFIG.model_copy(update={"smtp_username": "bot"}))
    assert not failed.value.permanent


def test_another_kinds_config_is_refused() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        asyncio.run(EmailSender().send(SlackConfig(), {}, outbound()))
    assert failed.value.permanent
