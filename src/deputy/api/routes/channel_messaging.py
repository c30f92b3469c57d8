"""Messaging webhooks: where Slack, Telegram, WhatsApp and Twilio (SMS) post customer messages.

No API key here: each request proves itself with its platform's signature (or secret token),
checked over the raw body before anything in it is read. A verified delivery is stored and
acknowledged at once; the agent answers in the background and the outbox sends the reply with
the platform's API (platforms retry webhooks that answer slowly, and a retry is a duplicate).
An unknown, disabled or non-messaging connection is 404; a request that fails verification is
401 (403 for a refused WhatsApp handshake) and is never processed."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from deputy.api.deps import PlatformDep
from deputy.api.errors import error_response
from deputy.channels.base import InboundRejected
from deputy.channels.messaging import MESSAGING_KINDS, WEBHOOKS, whatsapp
from deputy.channels.messaging.webhook import MalformedWebhook, WebhookAnswer, WebhookRequest
from deputy.domain.errors import ErrorCode
from deputy.domain.resources import ErrorBody
from deputy.services import channel_gateway as gateway
from deputy.services.channel_connections import load_connection

router = APIRouter(tags=["channels"])
log = logging.getLogger("deputy.channels")

_TEXT = {"schema": {"type": "string"}}
_WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": 'Accepted (or ignored): `{"ok": true}`, Slack\'s URL challenge, or an '
        "empty TwiML `<Response/>` for Twilio",
        "content": {"application/json": {"schema": {"type": "object"}}, "application/xml": _TEXT},
    },
    401: {"model": ErrorBody, "description": "The platform's signature is missing or wrong"},
}
_HANDSHAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "`hub.challenge`, echoed", "content": {"text/plain": _TEXT}},
    403: {"model": ErrorBody, "description": "Not a subscription, or the wrong verify token"},
}


def _answer(answer: WebhookAnswer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


def _rejected(connection_id: str, exc: InboundRejected) -> Response:
    log.info("channel %s: a webhook request was refused: %s", connection_id, exc)
    code: ErrorCode = "permission_denied" if exc.status == 403 else "unauthenticated"
    return error_response(
        code, "the request could not be verified as the platform's", {"reason": str(exc)}
    )


@router.post(
    "/channels/{connection_id}/webhook",
    response_class=Response,
    responses=_WEBHOOK_RESPONSES,
)
async def messaging_webhook(
    connection_id: str, request: Request, platform: PlatformDep
) -> Response:
    """A Slack, Telegram, WhatsApp or Twilio SMS delivery for the connection (the body as the
    platform sends it: JSON, or a form for Twilio). Signed by the platform, not by an API key."""
    connection = await platform.db.run(load_connection, platform, connection_id, MESSAGING_KINDS)
    webhook = WEBHOOKS[connection.kind]
    received = WebhookRequest(
        headers={name.lower(): value for name, value in request.headers.items()},
        body=await request.body(),
        query=dict(request.query_params),
    )
    try:
        webhook.verify(received, connection.config, connection.secrets)
    except InboundRejected as exc:
        return _rejected(connection_id, exc)
    try:
        parsed = webhook.parse(received, connection.config)
    except MalformedWebhook as exc:
        return error_response("invalid_request", f"not a {connection.kind} delivery: {exc}")
    for inbound in parsed.messages:
        await gateway.receive_in_background(platform, connection, inbound)
    return _answer(parsed.answer or WebhookAnswer())


@router.get(
    "/channels/{connection_id}/webhook",
    response_class=Response,
    responses=_HANDSHAKE_RESPONSES,
)
async def whatsapp_handshake(
    connection_id: str, request: Request, platform: PlatformDep
) -> Response:
    """WhatsApp's subscription check: `hub.challenge` echoed when `hub.mode` is `subscribe`
    and `hub.verify_token` is the connection's verify token."""
    connection = await platform.db.run(load_connection, platform, connection_id, "whatsapp")
    try:
        answer = whatsapp.handshake(dict(request.query_params), connection.secrets)
    except InboundRejected as exc:
        return _rejected(connection_id, exc)
    return _answer(answer)
