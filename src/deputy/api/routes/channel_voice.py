"""The voice channel (Twilio Programmable Voice + Media Streams).

- `POST /v1/channels/{connection_id}/voice`: Twilio's call webhook (form-encoded, signed with
  `X-Twilio-Signature`); answers TwiML connecting the call to the media stream. 403 for a
  bad or missing signature, 404 for an unknown or disabled voice connection.
- `WS /v1/channels/{connection_id}/media`: the bidirectional media stream. Close codes: 4403
  a missing, forged, foreign or expired stream token; 4404 no such voice connection (before
  the handshake completes); 4400 a peer that does not speak the Media Streams protocol or
  never sends `start`; 1011 when this server has no text-to-speech engine; 1000 when the
  call ends."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from deputy.api.deps import PlatformDep
from deputy.channels.twilio import SIGNATURE_HEADER
from deputy.channels.voice.protocol import ProtocolError
from deputy.domain.errors import DeputyError, InvalidRequest, PayloadTooLarge
from deputy.services.channel_connections import load_connection
from deputy.services.channel_voice import answer_call, serve_media_stream
from deputy.services.platform import Platform

log = logging.getLogger("deputy.channels.voice")
router = APIRouter(tags=["channels"])

MAX_WEBHOOK_BYTES: Final = 64 * 1024
TWIML_MEDIA_TYPE: Final = "application/xml"
CLOSE_CODES: Final[dict[str, int]] = {
    "permission_denied": 4403,
    "not_found": 4404,
    "unavailable": 1011,
}
BAD_PEER_CLOSE: Final = 4400


@router.post(
    "/channels/{connection_id}/voice",
    summary="Twilio's call webhook: answers TwiML that connects the call's media stream",
    response_class=Response,
    responses={
        200: {
            "description": "TwiML: `<Connect><Stream>` to the media stream, with its token",
            "content": {TWIML_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
    openapi_extra={
        "requestBody": {
            "description": "Twilio's call parameters (CallSid, From, To, ...), signed with "
            f"`{SIGNATURE_HEADER}`",
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            },
        }
    },
)
async def call_webhook(connection_id: str, request: Request, platform: PlatformDep) -> Response:
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(f"a call webhook is at most {MAX_WEBHOOK_BYTES} bytes")
    content_type = request.headers.get("content-type", "")
    if body and not content_type.startswith("application/x-www-form-urlencoded"):
        raise InvalidRequest("the call webhook must be application/x-www-form-urlencoded")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the call webhook's form is not valid") from None
    twiml = await answer_call(platform, connection_id, form, request.headers.get(SIGNATURE_HEADER))
    return Response(content=twiml, media_type=TWIML_MEDIA_TYPE)


@router.websocket("/channels/{connection_id}/media")
async def media_stream(websocket: WebSocket, connection_id: str) -> None:
    platform: Platform = websocket.app.state.platform
    try:
        await platform.db.run(load_connection, platform, connection_id, "voice")
    except DeputyError:
        await websocket.close(code=CLOSE_CODES["not_found"])
        return
    await websocket.accept()

    async def receive() -> str | None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return str(message["text"])
        return bytes(message.get("bytes") or b"").decode("utf-8", "replace")

    async def send(payload: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(payload, separators=(",", ":")))

    code = 1000
    try:
        await serve_media_stream(platform, connection_id, receive, send)
    except DeputyError as refused:
        log.warning("voice: media stream refused: %s", refused.message)
        code = CLOSE_CODES.get(refused.code, BAD_PEER_CLOSE)
    except (ProtocolError, TimeoutError) as bad:
        log.warning("voice: media stream closed: %s", bad or "no start message")
        code = BAD_PEER_CLOSE
    except WebSocketDisconnect:
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the peer may have gone
        await websocket.close(code=code)
