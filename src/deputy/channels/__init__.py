"""Channel adapters: web chat widget, email, messaging platforms, voice, the OpenAI-compatible
endpoint and A2A. Each turns its protocol into conversation events and back, nothing else."""

from __future__ import annotations

from deputy.channels.base import DeliveryFailed, InboundRejected, Sender
from deputy.domain.channels import ChannelKind

__all__ = ["DeliveryFailed", "InboundRejected", "Sender", "default_senders"]


def default_senders() -> dict[ChannelKind, Sender]:
    """The outbound sender of each kind that has an outbox (voice answers live on the call)."""
    from deputy.channels.email.send import EmailSender
    from deputy.channels.messaging.slack import SlackSender
    from deputy.channels.messaging.sms import SmsSender
    from deputy.channels.messaging.telegram import TelegramSender
    from deputy.channels.messaging.whatsapp import WhatsAppSender

    return {
        "email": EmailSender(),
        "slack": SlackSender(),
        "telegram": TelegramSender(),
        "whatsapp": WhatsAppSender(),
        "sms": SmsSender(),
    }
