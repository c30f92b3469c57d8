"""WhatsApp Cloud API: the subscription handshake (`hub.verify_token`), deliveries signed with
the app secret (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`), a customer's
number is one conversation, replies go out as text messages from the connection's number."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from deputy.channels.base import DeliveryFailed, InboundRejected
from deputy.channels.messaging.webhook import (
    MalformedWebhook,
    Parsed,
    PlatformSender,
    Webhook,
    WebhookAnswer,
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
from deputy.domain.channels import Attachment, Inbound, KindConfig, Outbound, WhatsAppConfig

TEXT_LIMIT = 4096
MEDIA = ("image", "document", "audio", "video", "sticker")
# Graph API error codes worth retrying: throttling and temporary errors.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131048, 131056})


def signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def handshake(query: Mapping[str, str], secrets: Mapping[str, str]) -> WebhookAnswer:
    """Answer Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    expected = secrets.get("verify_token")
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not expected:
        raise InboundRejected("not a subscription request", status=403)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InboundRejected("the verify token does not match", status=403)
    challenge = query.get("hub.challenge", "")[:500]
    return WebhookAnswer(body=challenge.encode(), media_type="text/plain")


def verify(request: WebhookRequest, config: KindConfig, secrets: Mapping[str, str]) -> None:
    del config
    secret = secrets.get("app_secret")
    given = request.header("x-hub-signature-256")
    if not secret:
        raise InboundRejected("the connection has no app secret")
    if not given:
        raise InboundRejected("missing X-Hub-Signature-256")
    if not hmac.compare_digest(signature(secret, request.body).encode(), given.encode()):
        raise InboundRejected("the X-Hub-Signature-256 signature does not match")


def _content(message: Mapping[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    """A message's text and media: text, captions, button answers; other kinds described."""
    kind = message.get("type")
    part = mapping(message.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        return text_of(part.get("body")), ()
    if kind in MEDIA:
        name = text_of(part.get("filename"), 255) or str(kind)
        content_type = text_of(part.get("mime_type"), 100) or "application/octet-stream"
        return text_of(part.get("caption")), (Attachment(name, content_type, 0),)
    if kind == "button":
        return text_of(part.get("text")), ()
    if kind == "interactive":
        for choice in ("button_reply", "list_reply"):
            if isinstance(part.get(choice), dict):
                return text_of(part[choice].get("title")), ()
    if kind == "location":
        where = ", ".join(
            str(part[k]) for k in ("name", "address", "latitude", "longitude") if k in part
        )
        return f"[location: {where}]", ()
    return f"[a {kind} message]", ()


def _names(value: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in value.get("contacts") or ():
        if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str):
            profile = mapping(contact.get("profile"))
            names[contact["wa_id"]] = text_of(profile.get("name"), 200)
    return names


def parse(request: WebhookRequest, config: KindConfig) -> Parsed:
    """Every customer message of the delivery (for this connection's number) as an Inbound;
    delivery statuses and other fields are ignored."""
    number = config_of(config, WhatsAppConfig).phone_number_id
    payload = request.json()
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise MalformedWebhook("a delivery needs entries")
    found: list[Inbound] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or change.get("field") != "messages":
                continue
            metadata = mapping(value.get("metadata"))
            if metadata.get("phone_number_id") not in (None, number):
                continue  # another number of the same app
            names = _names(value)
            for message in value.get("messages") or ():
                if isinstance(message, dict):
                    found.append(_inbound(message, names))
    if not found:
        return ignore("no customer message (statuses or other fields)")
    return Parsed(messages=tuple(found))


def _inbound(message: Mapping[str, Any], names: Mapping[str, str]) -> Inbound:
    sender, message_id = message.get("from"), message.get("id")
    if not isinstance(sender, str) or not isinstance(message_id, str):
        raise MalformedWebhook("a message needs a sender and an id")
    text, attachments = _content(message)
    return Inbound(
        delivery_id=message_id,
        external_customer_id=sender,
        text=text,
        thread_keys=(f"whatsapp:{sender}",),
        reply_to={"to": sender, "message_id": message_id},
        display_name=names.get(sender) or None,
        attachments=attachments,
        metadata={"whatsapp_type": text_of(message.get("type"), 20)},
    )


WEBHOOK = Webhook(verify=verify, parse=parse)


class WhatsAppSender(PlatformSender):
    """A text message to the customer's number through the Graph API."""

    platform = "whatsapp"

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        whatsapp = config_of(config, WhatsAppConfig)
        token = self.secret(secrets, "access_token")
        to = str(self.target(message, "to", "no number to answer"))
        url = f"{base_url(whatsapp.api_base_url)}/{whatsapp.phone_number_id}/messages"
        headers = {"Authorization": f"Bearer {token}"}
        sent: str | None = None
        async with client(self.transport) as http:
            for piece in split_text(message.text, TEXT_LIMIT):
                body = {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    "type": "text",
                    "text": {"preview_url": False, "body": piece},
                }
                response = await request("whatsapp", http, "POST", url, json=body, headers=headers)
                answer = json_body(response)
                if response.status_code >= 400:
                    raise _failure(response, answer)
                ids = [m.get("id") for m in answer.get("messages") or () if isinstance(m, dict)]
                sent = next((i for i in ids if isinstance(i, str)), sent)
        return sent


def _failure(response: Any, answer: Mapping[str, Any]) -> DeliveryFailed:
    error = mapping(answer.get("error"))
    code = error.get("code")
    failure = status_failure("whatsapp", response, f"{code}: {text_of(error.get('message'), 200)}")
    if code in TRANSIENT_CODES:
        failure.permanent = False
    return failure
