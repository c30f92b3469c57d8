"""Twilio Media Streams messages (bidirectional `<Connect><Stream>`), as typed values.

Twilio sends `connected`, then `start` (stream and call SIDs, the custom parameters of the
TwiML, the media format), `media` (base64 mu-law, 8 kHz mono, 20 ms a message), `mark` (a
mark we sent has been played, or was cleared), `dtmf` and `stop`. We send `media`, `mark`
(after each sentence, to learn when the caller has heard it) and `clear` (drop whatever is
still buffered: the caller barged in). https://www.twilio.com/docs/voice/media-streams"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

EventName = Literal["connected", "start", "media", "mark", "dtmf", "stop"]
MAX_MESSAGE_CHARS = 64 * 1024


class ProtocolError(ValueError):
    """A message that is not a Media Streams message we understand."""


@dataclass(frozen=True)
class StreamMessage:
    event: EventName
    stream_sid: str | None = None
    call_sid: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""
    mark: str | None = None
    media_format: dict[str, Any] = field(default_factory=dict)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ProtocolError(f"`{name}` must be a short string")
    return value


def parse_message(raw: str) -> StreamMessage:
    """One message from Twilio; `ProtocolError` for anything else."""
    if len(raw) > MAX_MESSAGE_CHARS:
        raise ProtocolError("message too large")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError("not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    event = data.get("event")
    stream_sid = data.get("streamSid") if isinstance(data.get("streamSid"), str) else None
    if event == "connected":
        return StreamMessage("connected")
    if event == "start":
        start = data.get("start")
        if not isinstance(start, dict):
            raise ProtocolError("`start` message without a `start` object")
        custom = start.get("customParameters") or {}
        if not isinstance(custom, dict):
            raise ProtocolError("`customParameters` must be an object")
        fmt = start.get("mediaFormat") or {}
        return StreamMessage(
            "start",
            stream_sid=_text(start.get("streamSid") or stream_sid, "streamSid"),
            call_sid=_text(start.get("callSid"), "callSid"),
            parameters={str(k): str(v) for k, v in list(custom.items())[:20]},
            media_format=fmt if isinstance(fmt, dict) else {},
        )
    if event == "media":
        media = data.get("media")
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            raise ProtocolError("`media` message without a payload")
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return StreamMessage("media", stream_sid=stream_sid)  # not the caller's audio
        try:
            payload = base64.b64decode(media["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("`media` payload is not base64") from None
        return StreamMessage("media", stream_sid=stream_sid, payload=payload)
    if event == "mark":
        mark = data.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        return StreamMessage("mark", stream_sid=stream_sid, mark=_text(name, "mark.name"))
    if event in ("dtmf", "stop"):
        return StreamMessage(event, stream_sid=stream_sid)
    raise ProtocolError(f"unknown event {str(event)[:40]!r}")


def media_message(stream_sid: str, audio: bytes) -> dict[str, Any]:
    return {
        "event": "media",
        "streamSid": stream_sid,
        "media": {"payload": base64.b64encode(audio).decode("ascii")},
    }


def mark_message(stream_sid: str, name: str) -> dict[str, Any]:
    return {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}


def clear_message(stream_sid: str) -> dict[str, Any]:
    return {"event": "clear", "streamSid": stream_sid}
