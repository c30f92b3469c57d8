"""The email channel end to end, against real mail servers: postfix (SMTP) delivering into
dovecot (IMAP) on 127.0.0.1, the customer using smtplib and imaplib, Deputy polling the
support mailbox over IMAP (or receiving on its built-in SMTP listener) and answering through
postfix with the echo agent."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.services.channel_connections import load_connection
from deputy.services.channel_email import take
from deputy.services.startup import prepare
from deputy.store import tables as t
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.mail_servers import MailServers, mail_servers
from tests.processes import free_port

pytestmark = pytest.mark.integration

WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def servers() -> Iterator[MailServers]:
    with mail_servers() as running:
        yield running


def connect(
    api: Api, agent_id: str, servers: MailServers, support: str, *, imap: bool = True
) -> str:
    """An email connection for `support@example.com`-like addresses through the servers."""
    config: dict[str, Any] = {
        "address": support,
        "display_name": "Acme Support",
        "smtp_host": "127.0.0.1",
        "smtp_port": servers.smtp_port,
        "smtp_security": "none",
    }
    secrets = {}
    if imap:
        config |= {
            "imap_host": "127.0.0.1",
            "imap_port": servers.imap_port,
            "imap_security": "none",
            "poll_seconds": 1,
        }
        secrets["imap_password"] = servers.password
    response = api.client.post(
        "/v1/channel-connections",
        json={
            "agent_id": agent_id,
            "kind": "email",
            "name": support.split("@")[0],
            "config": config,
            "secrets": secrets,
        },
        headers=api.headers(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["secrets_set"] == sorted(secrets)
    connection_id: str = response.json()["id"]
    return connection_id


def mail(sender: str, to: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rows(api: Api, table: Any, connection_id: str) -> list[Any]:
    with api.platform.db.session() as session:
        found = session.scalars(select(table).where(table.connection_id == connection_id)).all()
        session.expunge_all()
        return list(found)


def customer_messages(api: Api, conversation_id: str) -> list[str]:
    response = api.client.get(
        f"/v1/conversations/{conversation_id}/transcript", headers=api.headers()
    )
    assert response.status_code == 200, response.text
    return [e["text"] for e in response.json()["entries"] if e["kind"] == "customer_message"]


def test_a_customer_emails_support_and_the_thread_continues(api: Api, servers: MailServers) -> None:
    agent_id = echo_agent(api)
    connect(api, agent_id, servers, "support@example.com")
    customer = "customer@example.com"

    # (1) The customer writes; the poller picks it up; the agent's answer lands in their inbox.
    first = mail(
        f"Jane Doe <{customer}>",
        "support@example.com",
        "Where is my order?",
        "My order 1234 has not arrived.\n\n-- \nJane Doe\n+1 555 0100\n",
    )
    servers.send(first)
    (reply,) = servers.wait_for_messages(customer, 1)
    assert reply["In-Reply-To"] == first["Message-ID"]
    assert reply["Subject"] == "Re: Where is my order?"
    assert str(reply["From"]) == "Acme Support <support@example.com>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert text_of(reply).strip() == "Echo: My order 1234 has not arrived."
    assert servers.unseen("support@example.com") == 0  # flagged once stored

    # (2) They answer from a client that quotes and keeps only the last id in References.
    second = mail(
        f"Jane Doe <{customer}>",
        "Acme Support <support@example.com>",
        "Re: Where is my order?",
        "Thanks! What is the tracking number?\n\n"
        "On Tue, 5 Mar 2024 at 10:02, Acme Support <support@example.com> wrote:\n"
        "> Echo: My order 1234 has not arrived.\n",
        In_Reply_To=reply["Message-ID"],
        References=reply["Message-ID"],
    )
    servers.send(second)
    second_reply = servers.wait_for_messages(customer, 2)[1]
    assert second_reply["In-Reply-To"] == second["Message-ID"]
    assert text_of(second_reply).strip() == "Echo: Thanks! What is the tracking number?"
    listed = api.client.get(f"/v1/conversations?agent_id={agent_id}", headers=api.headers())
    (conversation,) = listed.json()["data"]
    assert conversation["channel"] == "email"
    assert customer_messages(api, conversation["id"]) == [
        "My order 1234 has not arrived.",
        "Thanks! What is the tracking number?",
    ]

    # (3) A colleague continues the same conversation from the API: the conversation is
    # carried on email, so the agent's answer is emailed to the customer in the same thread.
    posted = api.client.post(
        f"/v1/conversations/{conversation['id']}/messages",
        json={"text": "Please also update the delivery address."},
        headers=api.headers(),
    )
    assert posted.status_code == 200, posted.text
    third_reply = servers.wait_for_messages(customer, 3)[2]
    assert text_of(third_reply).strip() == "Echo: Please also update the delivery address."
    assert third_reply["In-Reply-To"] == second["Message-ID"]
    assert third_reply["Subject"] == "Re: Where is my order?"


def test_bounces_and_automatic_replies_are_stored_and_never_answered(
    api: Api, servers: MailServers
) -> None:
    agent_id = echo_agent(api)
    connection_id = connect(api, agent_id, servers, "support2@example.com")
    bounce = (
        "From: MAILER-DAEMON@mail.example.com (Mail Delivery System)\r\n"
        "To: support2@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mail.example.com')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mail.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b--\r\n"
    )
    with smtplib.SMTP("127.0.0.1", servers.smtp_port) as client:
        client.sendmail("<>", ["support2@example.com"], bounce.encode())
    out_of_office = mail(
        "customer2@example.com",
        "support2@example.com",
        "Automatic reply: your order",
        "I am out of the office until Monday.",
        Auto_Submitted="auto-replied",
        X_Auto_Response_Suppress="All",
    )
    newsletter = mail(
        "news@example.com", "support2@example.com", "Our news", "Sale!", Precedence="bulk"
    )
    servers.send(out_of_office)
    servers.send(newsletter)

    stored = wait_until(
        lambda: (
            (found := rows(api, t.ChannelInboundRow, connection_id)) and len(found) == 3 and found
        ),
        "three stored deliveries",
    )
    assert sorted(row.status for row in stored) == ["ignored"] * 3
    reasons = sorted(row.error for row in stored)
    assert reasons[0].startswith("automatic: Auto-Submitted")
    assert reasons[1] == "automatic: Precedence bulk"
    assert reasons[2].startswith("bounce")
    assert rows(api, t.ChannelOutboxRow, connection_id) == []
    listed = api.client.get(f"/v1/conversations?agent_id={agent_id}", headers=api.headers())
    assert listed.json()["data"] == []
    assert servers.unseen("support2@example.com") == 0
    assert servers.messages("customer2@example.com") == []


def test_a_reply_waits_while_smtp_is_down_and_goes_out_once_it_is_back(
    api: Api, servers: MailServers
) -> None:
    agent_id = echo_agent(api)
    question = mail("customer3@example.com", "support3@example.com", "Hours?", "When do you open?")
    servers.send(question)
    servers.wait_for_messages("support3@example.com", 1)
    servers.stop_smtp()
    try:
        connection_id = connect(api, agent_id, servers, "support3@example.com")
        failed = wait_until(
            lambda: [r for r in rows(api, t.ChannelOutboxRow, connection_id) if r.attempts],
            "a failed send",
        )
        assert failed[0].status == "pending"
        assert "SMTP unavailable" in (failed[0].last_error or "")
    finally:
        servers.start_smtp()
    (reply,) = servers.wait_for_messages("customer3@example.com", 1)
    assert reply["In-Reply-To"] == question["Message-ID"]
    assert text_of(reply).strip() == "Echo: When do you open?"
    (row,) = wait_until(
        lambda: [r for r in rows(api, t.ChannelOutboxRow, connection_id) if r.status == "sent"],
        "the outbox row marked sent",
    )
    assert row.attempts >= 2 and row.external_id == reply["Message-ID"]
    assert len(servers.messages("customer3@example.com")) == 1


@pytest.fixture
def listener_api(database_url: str, tmp_path: Path) -> Iterator[tuple[Api, int]]:
    """The API with the built-in SMTP listener on a free port."""
    port = free_port()
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        smtp_listen=f"127.0.0.1:{port}",
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client, platform, boot.created.owner_key.secret), port
    platform.close()


def test_the_built_in_smtp_listener_takes_mail_for_its_connections_only(
    listener_api: tuple[Api, int], servers: MailServers
) -> None:
    api, port = listener_api
    agent_id = echo_agent(api)
    connection_id = connect(api, agent_id, servers, "support4@example.com", imap=False)

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, "the SMTP listener")
    question = mail("Ana <customer4@example.com>", "support4@example.com", "Refund", "Refund me.")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("customer4@example.com", ["nobody@example.com"], b"Subject: x\r\n\r\nx")
        assert refused.value.recipients["nobody@example.com"][0] == 550
        client.send_message(question)
        client.send_message(question)  # a resend: accepted, stored once, answered once
        client.sendmail(
            "<>",
            ["support4@example.com"],
            b"From: postmaster@example.com\r\n"
            b"Subject: Delivery failure\r\nMessage-ID: <dsn-1@example.com>\r\n\r\n"
            b"Could not deliver.\r\n",
        )
    # `250` came only once each delivery was stored: the repeat was dropped, the bounce kept.
    stored = {row.delivery_id: row.status for row in rows(api, t.ChannelInboundRow, connection_id)}
    assert set(stored) == {question["Message-ID"], "<dsn-1@example.com>"}
    assert stored["<dsn-1@example.com>"] == "ignored"
    (reply,) = servers.wait_for_messages("customer4@example.com", 1)
    assert reply["In-Reply-To"] == question["Message-ID"]
    assert str(reply["To"]) == "Ana <customer4@example.com>"
    assert text_of(reply).strip() == "Echo: Refund me."

    # Someone else answering that reply (a forward, a CC) does not join Ana's conversation.
    stranger = mail(
        "customer5@example.com",
        "support4@example.com",
        "Re: Refund",
        "What did she order?",
        In_Reply_To=reply["Message-ID"],
        References=f"{question['Message-ID']} {reply['Message-ID']}",
    )
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
        client.send_message(stranger)
    (answer,) = servers.wait_for_messages("customer5@example.com", 1)
    assert text_of(answer).strip() == "Echo: What did she order?"
    listed = api.client.get(f"/v1/conversations?agent_id={agent_id}", headers=api.headers())
    assert len(listed.json()["data"]) == 2

    # A customer whose address the mail server refuses: a permanent failure, not retried.
    ghost = mail("ghost@example.com", "support4@example.com", "Hi", "Anyone there?")
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as client:
        client.send_message(ghost)
    failed = wait_until(
        lambda: [r for r in rows(api, t.ChannelOutboxRow, connection_id) if r.status == "failed"],
        "the refused reply marked failed",
    )
    assert failed[0].attempts == 1 and "550" in (failed[0].last_error or "")


def test_attachments_are_stored_the_signature_is_carried_and_own_mail_is_ignored(
    api: Api,
) -> None:
    """`take` on the app's event loop, without mail servers (nothing is sent here)."""
    agent_id = echo_agent(api, channels={"email": {"enabled": True, "signature": "Acme team"}})
    created = api.client.post(
        "/v1/channel-connections",
        json={
            "agent_id": agent_id,
            "kind": "email",
            "name": "files",
            "config": {"address": "files@example.com", "smtp_host": "127.0.0.1", "smtp_port": 9},
        },
        headers=api.headers(),
    )
    assert created.status_code == 201, created.text
    connection = load_connection(api.platform, created.json()["id"], "email")
    portal = api.client.portal
    assert portal is not None

    message = mail("Jane <jane@example.com>", "files@example.com", "Invoice", "See attached.")
    message.add_attachment(
        b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    raw = message.as_bytes()
    assert portal.call(take, api.platform, connection, raw, "jane@example.com") == "accepted"
    assert portal.call(take, api.platform, connection, raw, "jane@example.com") == "duplicate"

    (inbound,) = rows(api, t.ChannelInboundRow, connection.id)
    (attachment,) = inbound.payload["attachments"]
    assert attachment["filename"] == "invoice.pdf" and attachment["size"] == 16
    blob = b"".join(api.platform.blobs.read_chunks(connection.workspace_id, attachment["blob_key"]))
    assert blob == b"%PDF-1.4 invoice"
    (binding,) = wait_until(lambda: rows(api, t.ChannelBinding, connection.id), "the binding")
    assert binding.reply_to["signature"] == "Acme team"
    said = wait_until(lambda: customer_messages(api, binding.conversation_id), "the turn")
    assert said == ["See attached.\n[attachment: invoice.pdf (application/pdf, 16 bytes)]"]

    own = mail("files@example.com", "files@example.com", "Re: Invoice", "Echo: loop?")
    assert portal.call(take, api.platform, connection, own.as_bytes(), None) == "ignored"
    ignored = [r for r in rows(api, t.ChannelInboundRow, connection.id) if r.status == "ignored"]
    assert [r.error for r in ignored] == ["sent by this mailbox itself"]
