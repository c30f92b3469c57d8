"""Slack (Events API): requests signed with the app's signing secret, customer messages
threaded by channel and thread, replies posted with `chat.postMessage` in the same thread.

Signature: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` keyed
by the signing secret; `X-Slack-Request-Timestamp` must be within five minutes (a replayed
request is refused). Slack's retries (`X-Slack-Retry-Num`) carry the same `event_id`, which
is the delivery id, so they are duplicates."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
    request,
    split_text,
    status_failure,
    text_of,
)
from deputy.domain.channels import Attachment, Inbound, KindConfig, Outbound, SlackConfig

MAX_SKEW_SECONDS = 300
TEXT_LIMIT = 40_000
ACCEPTED_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
# Errors worth retrying; any other `ok: false` (invalid_auth, channel_not_found,
# not_in_channel, is_archived, token_revoked...) is a refusal that retrying cannot change.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout"}
)  # fmt: skip


def signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def verify(
    request: WebhookRequest,
    config: KindConfig,
    secrets: Mapping[str, str],
    *,
    now: float | None = None,
) -> None:
    del config
    secret = secrets.get("signing_secret")
    given = request.header("x-slack-signature")
    timestamp = request.header("x-slack-request-timestamp")
    if not secret:
        raise InboundRejected("the connection has no signing secret")
    if not given or not timestamp:
        raise InboundRejected("missing X-Slack-Signature or X-Slack-Request-Timestamp")
    if not timestamp.isdigit():
        raise InboundRejected("X-Slack-Request-Timestamp is not a number")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_SKEW_SECONDS:
        raise InboundRejected("the request is too old (or from the future): a replay?")
    if not hmac.compare_digest(signature(secret, timestamp, request.body), given):
        raise InboundRejected("the Slack signature does not match")


def _bot_users(payload: Mapping[str, Any]) -> set[str]:
    users = {a.get("user_id") for a in payload.get("authorizations") or () if isinstance(a, dict)}
    return {u for u in users if isinstance(u, str)}


def _attachments(event: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found = []
    for item in event.get("files") or ():
        if isinstance(item, dict):
            size = item.get("size")
            found.append(
                Attachment(
                    filename=text_of(item.get("name"), 255) or "file",
                    content_type=text_of(item.get("mimetype"), 100) or "application/octet-stream",
                    size=size if isinstance(size, int) else 0,
                )
            )
    return tuple(found)


def parse(request: WebhookRequest, config: KindConfig) -> Parsed:
    """A `url_verification` challenge is answered; an `event_callback` carrying a person's
    message becomes one Inbound; everything else (bots, edits, deletions, joins) is ignored."""
    del config
    payload = request.json()
    kind = payload.get("type")
    if kind == "url_verification":
        challenge = text_of(payload.get("challenge"), 500)
        answer = json.dumps({"challenge": challenge}).encode()
        return ignore("url_verification", WebhookAnswer(body=answer))
    if kind != "event_callback":
        return ignore(f"event envelope {kind!r}")
    event = payload.get("event")
    event_id = payload.get("event_id")
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        raise MalformedWebhook("an event_callback needs an event and an event_id")
    if event.get("type") != "message":
        return ignore(f"event {event.get('type')!r}")
    subtype = event.get("subtype")
    if subtype is not None and subtype not in ACCEPTED_SUBTYPES:
        return ignore(f"message subtype {subtype!r}")
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if event.get("bot_id") or event.get("bot_profile") or not isinstance(user, str):
        return ignore("a bot's message")
    if user in _bot_users(payload):
        return ignore("the app's own message")
    if not isinstance(channel, str) or not isinstance(ts, str):
        raise MalformedWebhook("a message event needs a channel and a ts")
    thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else ts
    team = text_of(payload.get("team_id"), 40)
    keys = [f"slack:{channel}:{thread_ts}"]
    if event.get("channel_type") == "im":
        keys.append(f"slack:{channel}")  # a direct message channel is one conversation
    inbound = Inbound(
        delivery_id=event_id,
        external_customer_id=f"{team}:{user}" if team else user,
        text=text_of(event.get("text")),
        thread_keys=tuple(keys),
        reply_to={"channel": channel, "thread_ts": thread_ts},
        attachments=_attachments(event),
        metadata={"slack_team": team, "slack_channel": channel},
    )
    return Parsed(messages=(inbound,))


WEBHOOK = Webhook(verify=verify, parse=parse)


class SlackSender(PlatformSender):
    """`chat.postMessage` in the customer's thread, with the bot token."""

    platform = "slack"

    async def send(
        self, config: KindConfig, secrets: Mapping[str, str], message: Outbound
    ) -> str | None:
        slack = config_of(config, SlackConfig)
        token = self.secret(secrets, "bot_token")
        channel = str(self.target(message, "channel", "no channel to answer in"))
        thread_ts = message.reply_to.get("thread_ts")
        url = f"{base_url(slack.api_base_url)}/chat.postMessage"
        headers = {"Authorization": f"Bearer {token}"}
        sent: str | None = None
        async with client(self.transport) as http:
            for piece in split_text(message.text, TEXT_LIMIT):
                body: dict[str, Any] = {"channel": channel, "text": piece}
                if isinstance(thread_ts, str):
                    body["thread_ts"] = thread_ts
                response = await request("slack", http, "POST", url, json=body, headers=headers)
                answer = json_body(response)
                if response.status_code >= 400:
                    raise status_failure("slack", response, str(answer.get("error", "")))
                if answer.get("ok") is not True:
                    error = str(answer.get("error") or "unknown_error")[:100]
                    raise DeliveryFailed(f"slack: {error}", permanent=error not in TRANSIENT_ERRORS)
                ts = answer.get("ts")
                sent = ts if isinstance(ts, str) else sent
        return sent
