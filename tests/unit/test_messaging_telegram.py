"""Telegram: the webhook's secret token, what an update becomes (text, captions, media,
edits; bots and non-message updates ignored), and sendMessage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deputy.channels.base import DeliveryFailed, InboundRejected
from deputy.channels.messaging import telegram
from deputy.channels.messaging.webhook import MalformedWebhook, WebhookRequest
from deputy.domain.channels import TelegramConfig
from tests.unit.messaging_fakes import FakeApi, outbound, send

CONFIG = TelegramConfig(api_base_url="https://telegram.test")
SECRETS = {"bot_token": "123:ABC", "secret_token": "s3cret-token"}
HEADER = "x-telegram-bot-api-secret-token"


def update(
    field: str = "message", sender: dict[str, Any] | None = None, **fields: Any
) -> WebhookRequest:
    message: dict[str, Any] = {
        "message_id": 77,
        "date": 1_700_000_000,
        "chat": {"id": 5551, "type": "private"},
        "from": {"id": 5551, "is_bot": False, "first_name": "Ada", "last_name": "L"},
        "text": "Hello",
    }
    message.update(fields)
    if sender is not None:
        message["from"] = sender
    body = json.dumps({"update_id": 9001, field: message}).encode()
    return WebhookRequest(headers={HEADER: "s3cret-token"}, body=body)


def test_the_right_secret_token_is_accepted() -> None:
    telegram.verify(update(), CONFIG, SECRETS)


@pytest.mark.parametrize("headers", [{}, {HEADER: "wrong"}, {HEADER: "s3cret-token-and-more"}])
def test_a_missing_or_wrong_secret_token_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InboundRejected) as refused:
        telegram.verify(WebhookRequest(headers=headers, body=b"{}"), CONFIG, SECRETS)
    assert "s3cret-token" not in str(refused.value)


def test_a_message_becomes_an_inbound_threaded_by_chat() -> None:
    (inbound,) = telegram.parse(update(), CONFIG).messages
    assert inbound.delivery_id == "9001"
    assert inbound.text == "Hello"
    assert inbound.thread_keys == ("telegram:5551",)
    assert inbound.reply_to == {"chat_id": 5551, "message_id": 77}
    assert inbound.display_name == "Ada L"
    assert inbound.external_customer_id == "5551"


def test_media_are_described_and_their_caption_is_the_text() -> None:
    document = {"file_name": "receipt.pdf", "mime_type": "application/pdf", "file_size": 2048}
    photo = [{"file_size": 100}, {"file_size": 9000}]
    (inbound,) = telegram.parse(
        update(text=None, caption="My receipt", document=document, photo=photo), CONFIG
    ).messages
    assert inbound.text == "My receipt"
    assert [(a.filename, a.content_type, a.size) for a in inbound.attachments] == [
        ("photo.jpg", "image/jpeg", 9000),
        ("receipt.pdf", "application/pdf", 2048),
    ]


def test_an_edited_message_is_taken_and_marked() -> None:
    (inbound,) = telegram.parse(update("edited_message", text="Hello again"), CONFIG).messages
    assert inbound.text == "(edited) Hello again"


@pytest.mark.parametrize(
    "request_",
    [
        update(sender={"id": 1, "is_bot": True}),
        update(text=None),
        update("channel_post"),
    ],
    ids=["bot", "nothing usable", "not a message"],
)
def test_other_updates_are_ignored(request_: WebhookRequest) -> None:
    parsed = telegram.parse(request_, CONFIG)
    assert parsed.messages == () and parsed.ignored


@pytest.mark.parametrize(
    "body", [b"nope", b'{"message": {}}', b'{"update_id": 1, "message": {"chat": {}}}']
)
def test_a_malformed_update_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        telegram.parse(WebhookRequest(headers={}, body=body), CONFIG)


def test_the_reply_is_sent_to_the_chat_quoting_the_message() -> None:
    api = FakeApi([(200, {"ok": True, "result": {"message_id": 78}})])
    sender = telegram.TelegramSender(api.transport())
    assert send(sender, CONFIG, SECRETS, outbound(chat_id=5551, message_id=77)) == "78"
    (request,) = api.requests
    assert str(request.url) == "https://telegram.test/bot123:ABC/sendMessage"
    body = api.json()
    assert (body["chat_id"], body["text"], body["reply_to_message_id"]) == (5551, "Echo: hi", 77)


def test_a_long_reply_is_split_at_4096_and_only_the_first_piece_quotes() -> None:
    api = FakeApi([(200, {"ok": True, "result": {"message_id": 1}})])
    text = "x" * 5000
    send(
        telegram.TelegramSender(api.transport()),
        CONFIG,
        SECRETS,
        outbound(text, chat_id=1, message_id=2),
    )
    bodies = [api.json(i) for i in range(len(api.requests))]
    assert [len(b["text"]) for b in bodies] == [4096, 904]
    assert "reply_to_message_id" in bodies[0] and "reply_to_message_id" not in bodies[1]


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (401, True), (403, True), (429, False), (502, False)]
)
def test_refusals_are_permanent_and_throttling_is_retried(status: int, permanent: bool) -> None:
    api = FakeApi([(status, {"ok": False, "error_code": status, "description": "nope"})])
    with pytest.raises(DeliveryFailed) as failed:
        send(telegram.TelegramSender(api.transport()), CONFIG, SECRETS, outbound(chat_id=1))
    assert failed.value.permanent is permanent
    assert "123:ABC" not in str(failed.value)
