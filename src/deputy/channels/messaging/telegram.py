"""Telegram (Bot API webhook): the webhook proves itself with the secret token given to
`setWebhook` (`X-Telegram-Bot-Api-Secret-Token`, compared in constant time); a chat is one
conversation; replies go out with `sendMessage`, quoting the customer's message."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from deputy.channels.base import InboundRejected
from deputy.channels.messaging.webhook import (
    MalformedWebhook,
    Parsed,
    PlatformSender,
    Webhook,
    WebhookRequest,
    base_url,
    client,
    config_of,
    ignore,
    json_body,
    mapping,
    request,
    split_text,
    status_failure,
    text_of,
)
from deputy.domain.channels import Attachment, Inbound, KindConfig, Outbound, TelegramConfig

TEXT_LIMIT = 4096
# Media a message may carry: field -> (default file name, default content type).
MEDIA = {
    "document": ("document", "application/octet-stream"),
    "audio": ("audio", "audio/mpeg"),
    "voice": ("voice.ogg", "audio/ogg"),
    "video": ("video.mp4", "video/mp4"),
    "video_note": ("video_note.mp4", "video/mp4"),
    "animation": ("animation.mp4", "video/mp4"),
}


def verify(request: WebhookRequest, config: KindConfig, secrets: Mapping[str, str]) -> None:
    del config
    expected = secrets.get("secret_token")
    given = request.header("x-telegram-bot-api-secret-token")
    if not expected:
        raise InboundRejected("the connection has no secret token")
    if not given:
        raise InboundRejected("missing X-Telegram-Bot-Api-Secret-Token")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InboundRejected("the secret token does not match")


def _size(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        largest = photos[-1] if isinstance(photos[-1], dict) else {}
        found.append(Attachment("photo.jpg", "image/jpeg", _size(largest.get("file_size"))))
    for field, (name, content_type) in MEDIA.items():
        item = message.get(field)
        if isinstance(item, dict):
            found.append(
                Attachment(
                    filename=text_of(item.get("file_name"), 255) or name,
                    content_type=text_of(item.get("mime_type"), 100) or content_type,
                    size=_size(item.get("file_size")),
                )
            )
    return tuple(found)


def _name(sender: Mapping[str, Any]) -> str | None:
    parts = [text_of(sender.get("first_name"), 100), text_of(sender.get("last_name"), 100)]
    name = " ".join(p for p in parts if p) or text_of(sender.get("username"), 100)
    return name or None


def parse(request: WebhookRequest, config: KindConfig) -> Parsed:
    """A `message` or `edited_message` from a person becomes one Inbound (its text or its
    media's caption, its media described); other updates are ignored."""
    del config
    update = request.json()
    update_id = update.get("update_id")
    if not isinstance(update_id, int):
        raise MalformedWebhook("an update needs an update_id")
    edited = "message" not in update and "edited_message" in update
    message = update.get("edited_message" if edited else "message")
    if not isinstance(message, dict):
        return ignore("an update without a message")
    chat = message.get("chat")
    sender = mapping(message.get("from"))
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise MalformedWebhook("a message needs a chat id")
    if sender.get("is_bot"):
        return ignore("a bot's message")
    text = text_of(message.get("text")) or text_of(message.get("caption"))
    attachments = _attachments(message)
    if not text and not attachments:
        return ignore("a message without text or media")
    chat_id: int = chat["id"]
    message_id = message.get("message_id")
    reply_to: dict[str, Any] = {"chat_id": chat_id}
    if isinstance(message_id, int):
        reply_to["message_id"] = message_id
    customer = sender.get("id", chat_id)
    inbound = Inbound(
        delivery_id=str(update_id),
        external_customer_id=str(customer),
        text=f"(edited) {text}" if edited and text else text,
        thread_keys=(f"telegram:{chat_id}",),
        reply_to=reply_to,
        display_name=_name(sender),
        attachments=attachments,
        metadata={"telegram_chat_type": text_of(chat.get("type"), 20)},
    )
    return Parsed(messages=(inbound,))


WEBHOOK = Webhook(verify=verify, parse=parse)


class TelegramSender(PlatformSender):
    """`sendMessage` to the customer's chat (the first piece quotes their message)."""

    platform = "telegram"

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        telegram = config_of(config, TelegramConfig)
        token = self.secret(secrets, "bot_token")
        chat_id = self.target(message, "chat_id", "no chat to answer in")
        quoted = message.reply_to.get("message_id")
        url = f"{base_url(telegram.api_base_url)}/bot{token}/sendMessage"
        sent: str | None = None
        async with client(self.transport) as http:
            for index, piece in enumerate(split_text(message.text, TEXT_LIMIT)):
                body: dict[str, Any] = {"chat_id": chat_id, "text": piece}
                if index == 0 and isinstance(quoted, int):
                    body["reply_to_message_id"] = quoted
                    body["allow_sending_without_reply"] = True
                response = await request("telegram", http, "POST", url, json=body)
                answer = json_body(response)
                if response.status_code >= 400 or answer.get("ok") is not True:
                    description = str(answer.get("description", ""))
                    raise status_failure("telegram", response, description)
                result = answer.get("result")
                if isinstance(result, dict) and isinstance(result.get("message_id"), int):
                    sent = str(result["message_id"])
        return sent
