"""Twilio SMS: X-Twilio-Signature (Twilio's published example, the configured URL, tampering),
what an incoming message becomes, the empty TwiML answer, and the Messages API."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, urlencode

import pytest

from deputy.channels.base import DeliveryFailed, InboundRejected
from deputy.channels.messaging import sms
from deputy.channels.messaging.webhook import MalformedWebhook, WebhookRequest
from deputy.channels.twilio import twilio_signature
from deputy.domain.channels import SmsConfig
from tests.unit.messaging_fakes import FakeApi, outbound, send

URL = "https://deputy.example.com/v1/channels/chn_1/webhook"
CONFIG = SmsConfig(
    api_base_url="https://twilio.test",
    account_sid="AC123",
    from_number="+15550001111",
    webhook_url=URL,
)
SECRETS = {"auth_token": "twilio-token"}
FORM = {
    "MessageSid": "SM1",
    "AccountSid": "AC123",
    "From": "+447700900123",
    "To": "+15550001111",
    "Body": "Is my parcel here?",
    "NumMedia": "0",
}


def signed(params: dict[str, str], url: str = URL, key: str = "twilio-token") -> WebhookRequest:
    """Signed as Twilio documents it, computed here independently of the adapter."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(key.encode(), data.encode(), hashlib.sha1).digest()
    return WebhookRequest(
        headers={"x-twilio-signature": base64.b64encode(digest).decode()},
        body=urlencode(params).encode(),
    )


def test_the_signature_matches_twilios_published_example() -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_a_request_signed_for_the_configured_url_is_accepted() -> None:
    sms.verify(signed(FORM), CONFIG, SECRETS)
    sms.verify(signed(FORM, url=URL.replace(".com/", ".com:443/")), CONFIG, SECRETS)


@pytest.mark.parametrize(
    "request_",
    [
        signed(FORM, key="other"),
        signed(FORM, url="https://attacker.example/v1/channels/chn_1/webhook"),
        WebhookRequest(
            headers=signed(FORM).headers, body=urlencode({**FORM, "Body": "x"}).encode()
        ),
        WebhookRequest(headers={}, body=urlencode(FORM).encode()),
    ],
    ids=["wrong token", "another url", "tampered form", "missing"],
)
def test_requests_twilio_did_not_sign_are_refused(request_: WebhookRequest) -> None:
    with pytest.raises(InboundRejected) as refused:
        sms.verify(request_, CONFIG, SECRETS)
    assert "twilio-token" not in str(refused.value)


def test_an_incoming_message_becomes_an_inbound_and_twilio_gets_empty_twiml() -> None:
    parsed = sms.parse(signed(FORM), CONFIG)
    (inbound,) = parsed.messages
    assert (inbound.delivery_id, inbound.text) == ("SM1", "Is my parcel here?")
    assert inbound.thread_keys == ("sms:+447700900123",)
    assert inbound.reply_to == {"to": "+447700900123"}
    assert parsed.answer is not None and parsed.answer.body.endswith(b"<Response/>")


def test_mms_media_are_described() -> None:
    form = {**FORM, "NumMedia": "2", "MediaContentType0": "image/png", "MediaUrl0": "u0"}
    (inbound,) = sms.parse(signed(form), CONFIG).messages
    assert [a.content_type for a in inbound.attachments] == [
        "image/png",
        "application/octet-stream",
    ]


def test_a_form_without_a_sid_or_sender_is_refused() -> None:
    with pytest.raises(MalformedWebhook):
        sms.parse(signed({"Body": "hi"}), CONFIG)


def test_the_reply_is_sent_with_basic_auth_from_the_connections_number() -> None:
    api = FakeApi([(201, {"sid": "SM_OUT", "status": "queued"})])
    sender = sms.SmsSender(api.transport())
    assert send(sender, CONFIG, SECRETS, outbound(to="+447700900123")) == "SM_OUT"
    (request,) = api.requests
    assert str(request.url) == "https://twilio.test/2010-04-01/Accounts/AC123/Messages.json"
    expected = base64.b64encode(b"AC123:twilio-token").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    form = parse_qs(request.content.decode())
    assert form == {"To": ["+447700900123"], "From": ["+15550001111"], "Body": ["Echo: hi"]}


def test_a_long_reply_is_split_into_texts_of_at_most_1600_characters() -> None:
    api = FakeApi([(201, {"sid": "SM"})])
    words = " ".join(f"w{i}" for i in range(1000))
    send(sms.SmsSender(api.transport()), CONFIG, SECRETS, outbound(words, to="+1"))
    bodies = [parse_qs(r.content.decode())["Body"][0] for r in api.requests]
    assert len(bodies) > 1 and all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies) == words


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (401, True), (429, False), (500, False)]
)
def test_refusals_are_permanent_and_throttling_is_retried(status: int, permanent: bool) -> None:
    api = FakeApi([(status, {"code": 21211, "message": "invalid To", "status": status})])
    with pytest.raises(DeliveryFailed) as failed:
        send(sms.SmsSender(api.transport()), CONFIG, SECRETS, outbound(to="+1"))
    assert failed.value.permanent is permanent
