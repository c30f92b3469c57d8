"""Slack: the v0 request signature (Slack's published example, tampering, replays), what a
delivery becomes (challenge, a person's message, events to ignore), and chat.postMessage."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from deputy.channels.base import DeliveryFailed, InboundRejected
from deputy.channels.messaging import slack
from deputy.channels.messaging.webhook import MalformedWebhook, WebhookRequest
from deputy.domain.channels import SlackConfig
from tests.unit.messaging_fakes import FakeApi, outbound, send

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CONFIG = SlackConfig(api_base_url="https://slack.test/api")
SECRETS = {"signing_secret": SECRET, "bot_token": "xoxb-test-token"}
NOW = 1_700_000_000


def signed(body: bytes, *, at: int = NOW, secret: str = SECRET) -> WebhookRequest:
    """A request signed as Slack documents it, computed here independently of the adapter."""
    base = f"v0:{at}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return WebhookRequest(
        headers={"x-slack-signature": f"v0={digest}", "x-slack-request-timestamp": str(at)},
        body=body,
    )


def event(**fields: Any) -> bytes:
    message = {"type": "message", "user": "U123", "channel": "C42", "ts": "1700.0001"}
    message.update(fields)
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T9",
            "event_id": "Ev01",
            "event": message,
            "authorizations": [{"user_id": "UBOT", "is_bot": True}],
        }
    ).encode()


def test_the_signature_matches_slacks_published_example() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
        b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F39770"
        b"0885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10"
        b"d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack.signature(SECRET, "1531420618", body) == expected
    request = WebhookRequest(
        headers={"x-slack-signature": expected, "x-slack-request-timestamp": "1531420618"},
        body=body,
    )
    slack.verify(request, CONFIG, SECRETS, now=1531420618 + 299)


def test_a_signed_fresh_request_is_accepted() -> None:
    slack.verify(signed(event()), CONFIG, SECRETS, now=NOW + 10)


@pytest.mark.parametrize(
    "request_",
    [
        signed(event(), secret="another-secret"),
        WebhookRequest(headers=signed(event()).headers, body=event(text="tampered")),
        WebhookRequest(headers={"x-slack-request-timestamp": str(NOW)}, body=event()),
        WebhookRequest(headers={"x-slack-signature": "v0=00"}, body=event()),
        WebhookRequest(
            headers={**signed(event()).headers, "x-slack-request-timestamp": "soon"}, body=event()
        ),
    ],
    ids=["wrong secret", "tampered body", "no signature", "no timestamp", "bad timestamp"],
)
def test_requests_slack_did_not_sign_are_refused(request_: WebhookRequest) -> None:
    with pytest.raises(InboundRejected) as refused:
        slack.verify(request_, CONFIG, SECRETS, now=NOW)
    assert refused.value.status == 401
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("skew", [-301, 301, 3600])
def test_a_replayed_or_future_request_is_refused_even_when_signed(skew: int) -> None:
    with pytest.raises(InboundRejected, match="too old"):
        slack.verify(signed(event(), at=NOW + skew), CONFIG, SECRETS, now=NOW)


def test_a_connection_without_a_signing_secret_refuses_everything() -> None:
    with pytest.raises(InboundRejected):
        slack.verify(signed(event()), CONFIG, {"bot_token": "x"}, now=NOW)


def test_the_url_verification_challenge_is_answered() -> None:
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1a", "token": "t"})
    parsed = slack.parse(WebhookRequest(headers={}, body=body.encode()), CONFIG)
    assert parsed.messages == ()
    assert parsed.answer is not None
    assert json.loads(parsed.answer.body) == {"challenge": "3eZbrw1a"}


def test_a_persons_message_becomes_an_inbound_threaded_by_channel_and_ts() -> None:
    files = [{"name": "invoice.pdf", "mimetype": "application/pdf", "size": 1234}]
    parsed = slack.parse(
        WebhookRequest(headers={}, body=event(text="Where is my order?", files=files)), CONFIG
    )
    (inbound,) = parsed.messages
    assert inbound.delivery_id == "Ev01"
    assert inbound.text == "Where is my order?"
    assert inbound.thread_keys == ("slack:C42:1700.0001",)
    assert inbound.reply_to == {"channel": "C42", "thread_ts": "1700.0001"}
    assert inbound.external_customer_id == "T9:U123"
    assert [(a.filename, a.content_type, a.size) for a in inbound.attachments] == [
        ("invoice.pdf", "application/pdf", 1234)
    ]


def test_a_reply_in_a_thread_goes_to_the_threads_conversation() -> None:
    body = event(ts="1700.0009", thread_ts="1700.0001", channel_type="im")
    (inbound,) = slack.parse(WebhookRequest(headers={}, body=body), CONFIG).messages
    assert inbound.thread_keys == ("slack:C42:1700.0001", "slack:C42")
    assert inbound.reply_to["thread_ts"] == "1700.0001"


@pytest.mark.parametrize(
    "fields",
    [
        {"bot_id": "B1"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"user": "UBOT"},
        {"type": "reaction_added"},
    ],
    ids=["bot", "edit", "deletion", "join", "own message", "not a message"],
)
def test_events_that_are_not_a_persons_message_are_ignored(fields: dict[str, Any]) -> None:
    parsed = slack.parse(WebhookRequest(headers={}, body=event(**fields)), CONFIG)
    assert parsed.messages == () and parsed.ignored


@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", json.dumps({"type": "event_callback", "event": {}}).encode()]
)
def test_a_malformed_delivery_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        slack.parse(WebhookRequest(headers={}, body=body), CONFIG)


def test_the_reply_is_posted_in_the_thread_with_the_bot_token() -> None:
    api = FakeApi([(200, {"ok": True, "ts": "1700.0002"})])
    sent = send(
        slack.SlackSender(api.transport()),
        CONFIG,
        SECRETS,
        outbound(channel="C42", thread_ts="1700.0001"),
    )
    assert sent == "1700.0002"
    (request,) = api.requests
    assert str(request.url) == "https://slack.test/api/chat.postMessage"
    assert request.headers["authorization"] == "Bearer xoxb-test-token"
    assert api.json() == {"channel": "C42", "text": "Echo: hi", "thread_ts": "1700.0001"}


def test_a_long_reply_is_split_under_slacks_limit() -> None:
    api = FakeApi([(200, {"ok": True, "ts": "1"})])
    text = ("word " * 20_000).strip()
    send(slack.SlackSender(api.transport()), CONFIG, SECRETS, outbound(text, channel="C42"))
    pieces = [api.json(i)["text"] for i in range(len(api.requests))]
    assert len(pieces) == 3 and all(len(p) <= slack.TEXT_LIMIT for p in pieces)
    assert " ".join(pieces) == text


@pytest.mark.parametrize(
    ("status", "answer", "permanent"),
    [
        (200, {"ok": False, "error": "invalid_auth"}, True),
        (200, {"ok": False, "error": "channel_not_found"}, True),
        (200, {"ok": False, "error": "ratelimited"}, False),
        (429, {"ok": False, "error": "ratelimited"}, False),
        (500, {}, False),
        (503, {}, False),
    ],
)
def test_slacks_refusals_are_permanent_and_its_hiccups_are_retried(
    status: int, answer: dict[str, Any], permanent: bool
) -> None:
    api = FakeApi([(status, answer)])
    with pytest.raises(DeliveryFailed) as failed:
        send(slack.SlackSender(api.transport()), CONFIG, SECRETS, outbound(channel="C42"))
    assert failed.value.permanent is permanent
    assert "xoxb-test-token" not in str(failed.value)
