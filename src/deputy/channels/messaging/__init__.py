"""Messaging platforms: Slack, Telegram, WhatsApp (Cloud API) and SMS (Twilio). Each module
verifies and parses its platform's webhook (pure functions over the raw request) and sends
replies with the platform's HTTP API."""

from __future__ import annotations

from deputy.channels.messaging import slack, sms, telegram, whatsapp
from deputy.channels.messaging.webhook import Webhook
from deputy.domain.channels import ChannelKind

WEBHOOKS: dict[ChannelKind, Webhook] = {
    "slack": slack.WEBHOOK,
    "telegram": telegram.WEBHOOK,
    "whatsapp": whatsapp.WEBHOOK,
    "sms": sms.WEBHOOK,
}
MESSAGING_KINDS: tuple[ChannelKind, ...] = ("slack", "telegram", "whatsapp", "sms")

__all__ = ["MESSAGING_KINDS", "WEBHOOKS", "Webhook"]
