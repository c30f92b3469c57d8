"""Slack, Telegram, WhatsApp and Twilio SMS end to end: a signed webhook reaches the echo agent
and its reply reaches a local fake of the platform's API with the right credentials and chat;
unsigned requests are refused and leave nothing behind; duplicates are answered once; a thread
is one conversation, continued from the API and by a human from the queue; a failed send is
retried and a refused one gives up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, update

from deputy.channels import default_senders
from deputy.services.channel_outbox import deliver_due
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api
from tests.integration.messaging_platforms import (
    KINDS,
    SECRETS,
    Delivery,
    FakePlatforms,
    connection_body,
    expected_authorization,
    fake_platforms,
    recipient,
    webhook,
)

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture
def platforms() -> Iterator[FakePlatforms]:
    with fake_platforms() as fakes:
        yield fakes


def connect(api: Api, kind: str, platforms: FakePlatforms, agent_id: str) -> str:
    created = api.client.post(
        "/v1/channel-connections",
        json=connection_body(kind, agent_id, platforms),
        headers=api.headers(),
    )
    assert created.status_code == 201, created.text
    connection_id: str = created.json()["id"]
    return connection_id


def deliver(api: Api, connection_id: str, delivery: Delivery, **headers: str) -> Any:
    return api.client.post(
        f"/v1/channels/{connection_id}/webhook",
        content=delivery.body,
        headers={**delivery.headers, **headers},
    )


def rows(api: Api, table: Any, connection_id: str) -> list[Any]:
    with api.platform.db.session() as session:
        found = session.scalars(select(table).where(table.connection_id == connection_id))
        return list(found.all())


def conversations(api: Api) -> int:
    with api.platform.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(t.Conversation)) or 0)


def eventually(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def conversation_of(api: Api, connection_id: str, delivery_id: str) -> str:
    def processed() -> str | None:
        for row in rows(api, t.ChannelInboundRow, connection_id):
            if row.delivery_id == delivery_id and row.status == "processed":
                return str(row.conversation_id)
        return None

    return eventually(processed)


def ok_answer(kind: str, response: Any) -> None:
    assert response.status_code == 200, response.text
    if kind == "sms":
        assert response.headers["content-type"].startswith("application/xml")
        assert response.text.endswith("<Response/>")
    else:
        assert response.json() == {"ok": True}


@pytest.mark.parametrize("kind", KINDS)
def test_a_thread_is_answered_on_the_platform_once_per_message(
    api: Api, platforms: FakePlatforms, kind: str
) -> None:
    connection_id = connect(api, kind, platforms, echo_agent(api))
    first = webhook(kind, "Where is my order?", thread="ada", delivery_id="d-1")
    ok_answer(kind, deliver(api, connection_id, first))

    sent = platforms.wait_for_text(ECHO_PREFIX + "Where is my order?")
    assert sent.kind == kind
    assert sent.authorization == expected_authorization(kind)
    assert sent.recipient == recipient(kind, "ada")
    if kind == "slack":
        assert sent.payload["thread_ts"].endswith(".000100")
    if kind == "telegram":
        assert sent.path == f"/telegram/bot{SECRETS['telegram']['bot_token']}/sendMessage"
        assert isinstance(sent.payload["reply_to_message_id"], int)

    retry = {"X-Slack-Retry-Num": "1"} if kind == "slack" else {}
    ok_answer(kind, deliver(api, connection_id, first, **retry))  # the platform retries
    second = webhook(kind, "And when will it arrive?", thread="ada", delivery_id="d-2")
    ok_answer(kind, deliver(api, connection_id, second))
    platforms.wait_for_text(ECHO_PREFIX + "And when will it arrive?")

    assert platforms.texts(kind).count(ECHO_PREFIX + "Where is my order?") == 1
    assert len(rows(api, t.ChannelInboundRow, connection_id)) == 2
    conversation = conversation_of(api, connection_id, first.delivery_id)
    assert conversation_of(api, connection_id, second.delivery_id) == conversation
    transcript = api.client.get(
        f"/v1/conversations/{conversation}/transcript", headers=api.headers()
    ).json()["entries"]
    said = [e["text"] for e in transcript if e["kind"] == "customer_message"]
    assert said == ["Where is my order?", "And when will it arrive?"]

    other = webhook(kind, "Hello from someone else", thread="bob", delivery_id="d-3")
    ok_answer(kind, deliver(api, connection_id, other))
    assert platforms.wait_for_text(ECHO_PREFIX + "Hello from someone else").recipient == (
        recipient(kind, "bob")
    )
    assert conversation_of(api, connection_id, other.delivery_id) != conversation


def _tampered(kind: str) -> list[tuple[str, Delivery]]:
    good = webhook(kind, "Refund me", thread="eve", delivery_id="forged-1")
    header = next(h for h in good.headers if h.lower() != "content-type")
    unsigned = {k: v for k, v in good.headers.items() if k != header}
    wrong = {**good.headers, header: "sha256=00" if kind == "whatsapp" else "bad"}
    changed = good.body.replace(b"Refund", b"Give")
    cases = [
        ("no signature", Delivery(unsigned, good.body, "x")),
        ("wrong signature", Delivery(wrong, good.body, "x")),
    ]
    if kind != "telegram":  # Telegram signs nothing: its secret token is the proof
        cases.append(("body changed after signing", Delivery(good.headers, changed, "x")))
    return cases


@pytest.mark.parametrize("kind", KINDS)
def test_requests_the_platform_did_not_sign_are_refused_and_leave_nothing(
    api: Api, platforms: FakePlatforms, kind: str
) -> None:
    connection_id = connect(api, kind, platforms, echo_agent(api))
    for case, forged in _tampered(kind):
        response = deliver(api, connection_id, forged)
        assert response.status_code == 401, case
        error = response.json()["error"]
        assert error["code"] == "unauthenticated", case
        assert all(secret not in response.text for secret in SECRETS[kind].values())
    assert rows(api, t.ChannelInboundRow, connection_id) == []
    assert conversations(api) == 0
    assert platforms.sent == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_and_a_human_from_the_queue_continue_the_conversation_on_the_platform(
    api: Api, platforms: FakePlatforms, kind: str
) -> None:
    agent_id = echo_agent(api, escalation={"default_queue": "support"})
    connection_id = connect(api, kind, platforms, agent_id)
    hello = webhook(kind, "Hi", "ann", "m-1")
    ok_answer(kind, deliver(api, connection_id, hello))
    platforms.wait_for_text(ECHO_PREFIX + "Hi")
    conversation = conversation_of(api, connection_id, hello.delivery_id)

    said = api.client.post(
        f"/v1/conversations/{conversation}/messages",
        json={"text": "Sent from the web"},
        headers=api.headers(),
    )
    assert said.status_code == 200, said.text
    from_api = platforms.wait_for_text(ECHO_PREFIX + "Sent from the web")
    assert from_api.recipient == recipient(kind, "ann")

    asked = webhook(kind, "I want to speak to a human please", "ann", "m-2")
    ok_answer(kind, deliver(api, connection_id, asked))

    def queued() -> bool:
        status = api.client.get(f"/v1/conversations/{conversation}", headers=api.headers())
        return bool(status.json()["status"] == "queued")

    eventually(queued)
    claimed = api.client.post(f"/v1/conversations/{conversation}/claim", headers=api.headers())
    assert claimed.status_code == 200, claimed.text
    replied = api.client.post(
        f"/v1/conversations/{conversation}/human-replies",
        json={"text": "Hi, Ann from support here."},
        headers=api.headers(),
    )
    assert replied.status_code == 201, replied.text
    human = platforms.wait_for_text("Hi, Ann from support here.")
    assert human.recipient == recipient(kind, "ann")
    assert human.authorization == expected_authorization(kind)


Failure = tuple[int, dict[str, Any]]
TRANSIENT: dict[str, Failure] = {
    "slack": (200, {"ok": False, "error": "ratelimited"}),
    "telegram": (500, {"ok": False, "error_code": 500, "description": "Internal"}),
    "whatsapp": (500, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
    "sms": (503, {"code": 20503, "message": "Service unavailable"}),
}
PERMANENT: dict[str, Failure] = {
    "slack": (200, {"ok": False, "error": "channel_not_found"}),
    "telegram": (403, {"ok": False, "error_code": 403, "description": "bot was blocked"}),
    "whatsapp": (400, {"error": {"message": "Re-engagement message", "code": 131047}}),
    "sms": (400, {"code": 21211, "message": "The 'To' number is not valid"}),
}


def outbox_row(api: Api, connection_id: str) -> t.ChannelOutboxRow | None:
    found = rows(api, t.ChannelOutboxRow, connection_id)
    return found[0] if found else None


@pytest.mark.parametrize("kind", KINDS)
def test_a_send_the_platform_could_not_take_is_retried_and_sent_later(
    api: Api, platforms: FakePlatforms, kind: str
) -> None:
    connection_id = connect(api, kind, platforms, echo_agent(api))
    platforms.fail(kind, *TRANSIENT[kind])
    ok_answer(kind, deliver(api, connection_id, webhook(kind, "Are you open?", "cy", "r-1")))

    def failed_once() -> t.ChannelOutboxRow | None:
        row = outbox_row(api, connection_id)
        return row if row is not None and row.attempts == 1 else None

    row = eventually(failed_once)
    assert row.status == "pending" and row.last_error
    with api.platform.db.session() as session:  # the backoff has passed
        session.execute(
            update(t.ChannelOutboxRow)
            .where(t.ChannelOutboxRow.id == row.id, t.ChannelOutboxRow.status == "pending")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    asyncio.run(deliver_due(api.platform, default_senders()))

    platforms.wait_for_text(ECHO_PREFIX + "Are you open?")

    def sent_later() -> t.ChannelOutboxRow | None:
        row = outbox_row(api, connection_id)
        return row if row is not None and row.status == "sent" else None

    sent = eventually(sent_later)
    assert sent.attempts == 2 and sent.last_error is None and sent.external_id
    assert [c.text for c in platforms.refused] == [ECHO_PREFIX + "Are you open?"]
    assert platforms.texts(kind).count(ECHO_PREFIX + "Are you open?") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_send_the_platform_refuses_for_good_fails_without_retrying(
    api: Api, platforms: FakePlatforms, kind: str
) -> None:
    connection_id = connect(api, kind, platforms, echo_agent(api))
    platforms.fail(kind, *PERMANENT[kind], times=5)
    ok_answer(kind, deliver(api, connection_id, webhook(kind, "Hello?", "dee", "p-1")))

    def gave_up() -> t.ChannelOutboxRow | None:
        row = outbox_row(api, connection_id)
        return row if row is not None and row.status == "failed" else None

    row = eventually(gave_up)
    assert row.attempts == 1 and row.last_error and row.sent_at is None
    asyncio.run(deliver_due(api.platform, default_senders()))
    assert len(platforms.refused) == 1 and platforms.sent == []
    for secret in SECRETS[kind].values():
        assert secret not in row.last_error


def test_the_whatsapp_subscription_handshake(api: Api, platforms: FakePlatforms) -> None:
    connection_id = connect(api, "whatsapp", platforms, echo_agent(api))
    path = f"/v1/channels/{connection_id}/webhook"
    query = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "8412"}
    answered = api.client.get(path, params=query)
    assert answered.status_code == 200 and answered.text == "8412"
    refused = api.client.get(path, params={**query, "hub.verify_token": "guess"})
    assert refused.status_code == 403 and "8412" not in refused.text
    assert refused.json()["error"]["code"] == "permission_denied"


def test_slacks_url_verification_is_answered_once_signed(
    api: Api, platforms: FakePlatforms
) -> None:
    import hashlib
    import hmac
    import json

    connection_id = connect(api, "slack", platforms, echo_agent(api))
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"}).encode()
    at = str(int(time.time()))
    secret = SECRETS["slack"]["signing_secret"].encode()
    digest = hmac.new(secret, f"v0:{at}:".encode() + body, hashlib.sha256).hexdigest()
    signed = {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": at}
    response = deliver(api, connection_id, Delivery(signed, body, "challenge"))
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}
    stale = {**signed, "X-Slack-Request-Timestamp": str(int(at) - 600)}
    assert deliver(api, connection_id, Delivery(stale, body, "challenge")).status_code == 401


def test_unknown_disabled_and_non_messaging_connections_are_not_found(
    api: Api, platforms: FakePlatforms
) -> None:
    agent_id = echo_agent(api)
    delivery = webhook("telegram", "hi", "x", "u-1")
    assert deliver(api, "chn_unknown", delivery).status_code == 404
    connection_id = connect(api, "telegram", platforms, agent_id)
    disabled = api.client.patch(
        f"/v1/channel-connections/{connection_id}", json={"enabled": False}, headers=api.headers()
    )
    assert disabled.status_code == 200, disabled.text
    response = deliver(api, connection_id, delivery)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    voice = api.client.post(
        "/v1/channel-connections",
        json={
            "agent_id": agent_id,
            "kind": "voice",
            "name": "phone",
            "config": {
                "account_sid": "AC1",
                "webhook_url": "https://deputy.example.com/voice",
                "stream_url": "wss://deputy.example.com/media",
            },
            "secrets": {"auth_token": "t"},
        },
        headers=api.headers(),
    )
    assert voice.status_code == 201, voice.text
    assert deliver(api, voice.json()["id"], delivery).status_code == 404
    assert api.client.get(f"/v1/channels/{connection_id}/webhook").status_code == 404
    assert rows(api, t.ChannelInboundRow, connection_id) == []


def test_an_oversized_delivery_is_refused_before_it_is_read(
    api: Api, platforms: FakePlatforms
) -> None:
    connection_id = connect(api, "whatsapp", platforms, echo_agent(api))
    huge = webhook("whatsapp", "x" * (70 * 1024), "big", "big-1")  # the limit here is 64 KiB
    response = deliver(api, connection_id, huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert rows(api, t.ChannelInboundRow, connection_id) == []
