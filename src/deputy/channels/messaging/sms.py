"""SMS through Twilio (or a Twilio-compatible API): webhooks signed with the account's auth
token, the customer's number is one conversation, replies sent with the Messages API (the
webhook itself answers an empty TwiML `<Response/>`, so Twilio sends nothing on its own).

Signature: `X-Twilio-Signature` is base64 HMAC-SHA1, keyed by the auth token, of the URL
Twilio posted to (the connection's `webhook_url`) followed by every form parameter, sorted by
name, as name + value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from deputy.channels.base import InboundRejected
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
    json_body,
    request,
    split_text,
    status_failure,
)
from deputy.channels.twilio import verify_twilio_signature
from deputy.domain.channels import Attachment, Inbound, KindConfig, Outbound, SmsConfig

TEXT_LIMIT = 1600
MAX_MEDIA = 10
EMPTY_TWIML = WebhookAnswer(
    body=b'<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="application/xml"
)


def form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise MalformedWebhook("the form is not UTF-8") from None


def verify(request: WebhookRequest, config: KindConfig, secrets: Mapping[str, str]) -> None:
    token = secrets.get("auth_token")
    if not token:
        raise InboundRejected("the connection has no auth token")
    url = str(config_of(config, SmsConfig).webhook_url)
    signature = request.header("x-twilio-signature")
    verify_twilio_signature(url, form(request.body), token, signature, status=401)


def _attachments(params: Mapping[str, str]) -> tuple[Attachment, ...]:
    count = params.get("NumMedia", "0")
    total = min(int(count), MAX_MEDIA) if count.isdigit() else 0
    return tuple(
        Attachment(
            filename=f"media-{index + 1}",
            content_type=params.get(f"MediaContentType{index}", "application/octet-stream")[:100],
            size=0,
        )
        for index in range(total)
    )


def parse(request: WebhookRequest, config: KindConfig) -> Parsed:
    """An incoming message (SMS or MMS) as one Inbound; Twilio is answered with empty TwiML."""
    del config
    params = dict(form(request.body))
    sid = params.get("MessageSid") or params.get("SmsSid")
    sender = params.get("From")
    if not sid or not sender:
        raise MalformedWebhook("an incoming message needs MessageSid and From")
    inbound = Inbound(
        delivery_id=sid,
        external_customer_id=sender[:64],
        text=params.get("Body", "")[:8000],
        thread_keys=(f"sms:{sender[:64]}",),
        reply_to={"to": sender[:64]},
        attachments=_attachments(params),
        metadata={"sms_to": params.get("To", "")[:64]},
    )
    return Parsed(messages=(inbound,), answer=EMPTY_TWIML)


WEBHOOK = Webhook(verify=verify, parse=parse)


class SmsSender(PlatformSender):
    """A message from the connection's number with the Messages API (basic auth)."""

    platform = "sms"

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        sms = config_of(config, SmsConfig)
        token = self.secret(secrets, "auth_token")
        to = str(self.target(message, "to", "no number to answer"))
        url = f"{base_url(sms.api_base_url)}/2010-04-01/Accounts/{sms.account_sid}/Messages.json"
        sent: str | None = None
        async with client(self.transport) as http:
            for piece in split_text(message.text, TEXT_LIMIT):
                data = {"To": to, "From": sms.from_number, "Body": piece}
                auth = (sms.account_sid, token)
                response = await request("sms", http, "POST", url, data=data, auth=auth)
                answer: dict[str, Any] = json_body(response)
                if response.status_code >= 400:
                    detail = f"{answer.get('code', '')}: {str(answer.get('message', ''))[:200]}"
                    raise status_failure("sms", response, detail)
                sid = answer.get("sid")
                sent = sid if isinstance(sid, str) else sent
        return sent
