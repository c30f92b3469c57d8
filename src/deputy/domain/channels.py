"""Channel connections: how a deployed agent is reached on email, messaging platforms and the
phone, and what an adapter hands the platform when a customer writes.

A **connection** binds one agent to one external account (a mailbox, a Slack app, a Telegram
bot, a WhatsApp number, a Twilio number). Its non-secret settings (`config`) are validated per
kind below; its secrets (signing secrets, tokens, passwords) are write-only and encrypted at
rest. Web chat, the OpenAI-compatible endpoint and A2A need no connection: they use API keys.

Every adapter turns its protocol into an `Inbound` (one customer message, with the keys that
thread it to a conversation and the id that makes a repeated delivery harmless) and gets back
what the agent said as `Outbound` messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl

from deputy.domain.resources import Body, Resource

ChannelKind = Literal["email", "slack", "telegram", "whatsapp", "sms", "voice"]
"""What a connection speaks. `sms` and `voice` are Twilio (or a Twilio-compatible API)."""

Security = Literal["none", "starttls", "tls"]


class KindConfig(BaseModel):
    """A kind's non-secret settings; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailConfig(KindConfig):
    """A mailbox: inbound by the built-in SMTP listener (mail for `address` arriving at
    `DEPUTY_SMTP_LISTEN`) and/or by polling an IMAP mailbox; outbound by SMTP.
    Secrets: `smtp_password`, `imap_password`."""

    address: EmailStr
    display_name: str | None = Field(default=None, max_length=200)
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = Field(default=None, max_length=255)
    imap_host: str | None = Field(default=None, max_length=255)
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Security = "tls"
    imap_username: str | None = Field(default=None, max_length=255)
    imap_mailbox: str = Field(default="INBOX", min_length=1, max_length=200)
    poll_seconds: float = Field(default=30.0, ge=1, le=3600)


class SlackConfig(KindConfig):
    """A Slack app (Events API). Secrets: `signing_secret`, `bot_token`."""

    api_base_url: HttpUrl = HttpUrl("https://slack.com/api")


class TelegramConfig(KindConfig):
    """A Telegram bot (Bot API webhook). Secrets: `bot_token`, `secret_token` (the webhook's
    `X-Telegram-Bot-Api-Secret-Token`)."""

    api_base_url: HttpUrl = HttpUrl("https://api.telegram.org")


class WhatsAppConfig(KindConfig):
    """A WhatsApp Cloud API number. Secrets: `app_secret` (X-Hub-Signature-256),
    `access_token` (sending), `verify_token` (the subscription handshake)."""

    api_base_url: HttpUrl = HttpUrl("https://graph.facebook.com/v21.0")
    phone_number_id: str = Field(min_length=1, max_length=64)


class SmsConfig(KindConfig):
    """A Twilio number for SMS. Secrets: `auth_token` (request signatures and sending).
    `webhook_url`: the exact public URL Twilio posts to (Twilio signs it)."""

    api_base_url: HttpUrl = HttpUrl("https://api.twilio.com")
    account_sid: str = Field(min_length=1, max_length=64)
    from_number: str = Field(min_length=1, max_length=32)
    webhook_url: HttpUrl


class VoiceConfig(KindConfig):
    """A Twilio number for calls (Media Streams). Secrets: `auth_token` (the signature of the
    call webhook). `webhook_url`: the exact public URL of the call webhook; `stream_url`: the
    public wss:// URL of the media stream."""

    account_sid: str = Field(min_length=1, max_length=64)
    webhook_url: HttpUrl
    stream_url: str = Field(min_length=1, max_length=500, pattern=r"^wss?://")


KIND_CONFIGS: dict[ChannelKind, type[KindConfig]] = {
    "email": EmailConfig,
    "slack": SlackConfig,
    "telegram": TelegramConfig,
    "whatsapp": WhatsAppConfig,
    "sms": SmsConfig,
    "voice": VoiceConfig,
}

KIND_SECRETS: dict[ChannelKind, frozenset[str]] = {
    "email": frozenset({"smtp_password", "imap_password"}),
    "slack": frozenset({"signing_secret", "bot_token"}),
    "telegram": frozenset({"bot_token", "secret_token"}),
    "whatsapp": frozenset({"app_secret", "access_token", "verify_token"}),
    "sms": frozenset({"auth_token"}),
    "voice": frozenset({"auth_token"}),
}
"""The secrets each kind accepts; which of them are required is the adapter's business (a
webhook refuses requests it cannot verify)."""

REQUIRED_SECRETS: dict[ChannelKind, frozenset[str]] = {
    "email": frozenset(),
    "slack": frozenset({"signing_secret", "bot_token"}),
    "telegram": frozenset({"bot_token", "secret_token"}),
    "whatsapp": frozenset({"app_secret", "access_token", "verify_token"}),
    "sms": frozenset({"auth_token"}),
    "voice": frozenset({"auth_token"}),
}


class ChannelConnectionCreate(Body):
    agent_id: str
    kind: ChannelKind
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    config: dict[str, Any] = Field(description="The kind's settings (see the kind's schema).")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Write-only: encrypted at rest, never returned (only their names are).",
    )


class ChannelConnectionUpdate(Body):
    """Replace the settings and/or set secrets (an empty string removes one)."""

    config: dict[str, Any] | None = None
    secrets: dict[str, str] = Field(default_factory=dict)
    enabled: bool | None = None


class ChannelConnection(Resource):
    id: str
    workspace_id: str
    agent_id: str
    kind: ChannelKind
    name: str
    config: dict[str, Any]
    secrets_set: list[str] = Field(description="Names of the secrets that are set.")
    enabled: bool
    inbound_path: str = Field(
        description="Where the platform posts to (relative to the API's public URL); for "
        "voice, the call webhook (the media stream is `.../media`)."
    )
    created_at: datetime
    updated_at: datetime


class ChannelDelivery(Resource):
    """One outbound message on its way to a channel (retried until it is sent or gives up)."""

    id: str
    connection_id: str
    conversation_id: str
    entry_seq: int
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


# ---- what adapters exchange with the gateway --------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    blob_key: str | None = None  # where the platform stored it, once stored


@dataclass(frozen=True)
class Inbound:
    """One customer message from a channel.

    `delivery_id`: the platform's id of this delivery (Slack event id, Telegram update id,
    Message-ID, MessageSid...): a repeat is ignored. `thread_keys`: keys that tie the message
    to an existing conversation (the first that is known wins; all are remembered for the
    conversation). `reply_to`: what an outbound reply needs to go back to the right place
    (chat id, channel + thread ts, phone number, the email's From/Subject/Message-ID)."""

    delivery_id: str
    external_customer_id: str
    text: str
    thread_keys: tuple[str, ...]
    reply_to: dict[str, Any]
    display_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outbound:
    """What the agent (or a human colleague) said, to be sent on the channel."""

    conversation_id: str
    entry_seq: int
    text: str
    reply_to: dict[str, Any]
    author: Literal["agent", "human"] = "agent"
