"""WhatsApp Cloud API: the subscription handshake, X-Hub-Signature-256, what a delivery
becomes (texts and described media; statuses and other numbers ignored), and sending."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from deputy.channels.base import DeliveryFailed, InboundRejected
from deputy.channels.messaging import whatsapp
from deputy.channels.messaging.webhook import MalformedWebhook, WebhookRequest
from deputy.domain.channels import WhatsAppConfig
from tests.unit.messaging_fakes import FakeApi, outbound, send

CONFIG = WhatsAppConfig(api_base_url="https://graph.test/v21.0", phone_number_id="1065")
SECRETS = {"app_secret": "app-secret", "access_token": "EAAtoken", "verify_token": "vt-42"}


def signed(body: bytes, key: str = "app-secret") -> WebhookRequest:
    digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(headers={"x-hub-signature-256": f"sha256={digest}"}, body=body)


def delivery(*messages: dict[str, Any], number: str = "1065", **value: Any) -> bytes:
    change_value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Grace"}, "wa_id": "447700900123"}],
        "messages": list(messages),
        **value,
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": change_value}]}],
    }
    return json.dumps(payload).encode()


def text(body: str, message_id: str = "wamid.A") -> dict[str, Any]:
    return {"from": "447700900123", "id": message_id, "type": "text", "text": {"body": body}}


def test_the_handshake_echoes_the_challenge_for_the_right_token() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "vt-42", "hub.challenge": "1158201444"}
    answer = whatsapp.handshake(query, SECRETS)
    assert (answer.body, answer.media_type) == (b"1158201444", "text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "vt-42", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_the_handshake_refuses_anything_else(query: dict[str, str]) -> None:
    with pytest.raises(InboundRejected) as refused:
        whatsapp.handshake(query, SECRETS)
    assert refused.value.status == 403


def test_a_body_signed_with_the_app_secret_is_accepted() -> None:
    whatsapp.verify(signed(delivery(text("hi"))), CONFIG, SECRETS)


@pytest.mark.parametrize(
    "request_",
    [
        signed(delivery(text("hi")), key="other"),
        WebhookRequest(headers=signed(delivery(text("hi"))).headers, body=delivery(text("ho"))),
        WebhookRequest(headers={}, body=delivery(text("hi"))),
        WebhookRequest(headers={"x-hub-signature-256": "sha1=abc"}, body=delivery(text("hi"))),
    ],
    ids=["wrong secret", "tampered", "missing", "wrong form"],
)
def test_unsigned_or_tampered_deliveries_are_refused(request_: WebhookRequest) -> None:
    with pytest.raises(InboundRejected):
        whatsapp.verify(request_, CONFIG, SECRETS)


def test_every_message_becomes_an_inbound_threaded_by_the_customers_number() -> None:
    image = {
        "from": "447700900123",
        "id": "wamid.B",
        "type": "image",
        "image": {"mime_type": "image/jpeg", "caption": "The broken part", "id": "m1"},
    }
    parsed = whatsapp.parse(signed(delivery(text("My order?"), image)), CONFIG)
    first, second = parsed.messages
    assert (first.delivery_id, first.text, first.display_name) == ("wamid.A", "My order?", "Grace")
    assert first.thread_keys == ("whatsapp:447700900123",)
    assert first.reply_to == {"to": "447700900123", "message_id": "wamid.A"}
    assert second.text == "The broken part"
    assert [(a.filename, a.content_type) for a in second.attachments] == [("image", "image/jpeg")]


def test_button_answers_and_other_kinds_are_described() -> None:
    button = {
        "from": "447700900123",
        "id": "wamid.C",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Yes"}},
    }
    contacts = {"from": "447700900123", "id": "wamid.D", "type": "contacts", "contacts": []}
    first, second = whatsapp.parse(signed(delivery(button, contacts)), CONFIG).messages
    assert first.text == "Yes"
    assert second.text == "[a contacts message]"


def test_statuses_and_other_numbers_are_ignored() -> None:
    statuses = delivery(statuses=[{"id": "wamid.X", "status": "delivered"}])
    assert whatsapp.parse(signed(statuses), CONFIG).messages == ()
    other = delivery(text("hi"), number="9999")
    assert whatsapp.parse(signed(other), CONFIG).messages == ()


@pytest.mark.parametrize("body", [b"{}", b"[]", delivery({"type": "text", "text": {"body": "x"}})])
def test_a_malformed_delivery_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        whatsapp.parse(WebhookRequest(headers={}, body=body), CONFIG)


def test_the_reply_is_a_text_message_from_the_connections_number() -> None:
    api = FakeApi([(200, {"messages": [{"id": "wamid.OUT"}]})])
    sender = whatsapp.WhatsAppSender(api.transport())
    assert send(sender, CONFIG, SECRETS, outbound(to="447700900123")) == "wamid.OUT"
    (request,) = api.requests
    assert str(request.url) == "https://graph.test/v21.0/1065/messages"
    assert request.headers["authorization"] == "Bearer EAAtoken"
    body = api.json()
    assert (body["messaging_product"], body["to"], body["type"]) == (
        "whatsapp",
        "447700900123",
        "text",
    )
    assert body["text"]["body"] == "Echo: hi"


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (401, 190, True),  # expired token
        (400, 131047, True),  # outside the 24-hour window
        (400, 130429, False),  # throttled
        (500, 1, False),
        (503, 0, False),
    ],
)
def test_refusals_are_permanent_and_throttling_is_retried(
    status: int, code: int, permanent: bool
) -> None:
    api = FakeApi([(status, {"error": {"message": "no", "code": code}})])
    with pytest.raises(DeliveryFailed) as failed:
        send(whatsapp.WhatsAppSender(api.transport()), CONFIG, SECRETS, outbound(to="1"))
    assert failed.value.permanent is permanent
    assert "EAAtoken" not in str(failed.value)
