"""The answer to Twilio's call webhook, and the token that lets that call, and only that
call, open the media stream.

The webhook is signed by Twilio; the media WebSocket is not (Twilio sends no signature on it).
So the TwiML we answer carries a short-lived token as a custom stream parameter, which Twilio
hands back in the stream's `start` message: HMAC-SHA256 over (connection, call SID, caller,
expiry), keyed by a key derived from the connection's auth token. A stranger who finds the
stream URL cannot open a call on it, a token cannot be moved to another connection or
another call, and it expires within minutes. The caller's number travels inside the token, so
who the customer is comes from the signed webhook, never from the unauthenticated socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from deputy.channels.base import InboundRejected

STREAM_TOKEN_SECONDS = 120.0
TOKEN_PARAMETER = "token"  # noqa: S105 (a parameter name)
MAX_TOKEN_CHARS = 1000
_KEY_LABEL = b"deputy/voice/media-stream/v1"


@dataclass(frozen=True)
class StreamGrant:
    """What a valid stream token vouches for."""

    connection_id: str
    call_sid: str
    caller: str
    expires_at: float


def _key(auth_token: str) -> bytes:
    return hmac.new(auth_token.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_stream_token(
    auth_token: str,
    grant: StreamGrant,
) -> str:
    payload = json.dumps(
        {
            "c": grant.connection_id,
            "s": grant.call_sid,
            "f": grant.caller,
            "e": round(grant.expires_at, 3),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    mac = hmac.new(_key(auth_token), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def read_stream_token(
    auth_token: str, token: str | None, *, connection_id: str, call_sid: str, now: float
) -> StreamGrant:
    """The grant in `token` if it is genuine, for this connection and call, and not expired;
    otherwise `InboundRejected` (403), saying which without echoing the token."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InboundRejected("the media stream has no valid token", status=403)
    body, _, signature = token.partition(".")
    try:
        payload, mac = _unb64(body), _unb64(signature)
    except ValueError:
        raise InboundRejected("the media stream has no valid token", status=403) from None
    expected = hmac.new(_key(auth_token), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise InboundRejected("the media stream token is not genuine", status=403)
    data = json.loads(payload)
    grant = StreamGrant(
        connection_id=str(data["c"]),
        call_sid=str(data["s"]),
        caller=str(data["f"]),
        expires_at=float(data["e"]),
    )
    if grant.connection_id != connection_id or grant.call_sid != call_sid:
        raise InboundRejected("the media stream token is for another call", status=403)
    if now > grant.expires_at:
        raise InboundRejected("the media stream token has expired", status=403)
    return grant


def connect_stream_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """TwiML that connects the call to a bidirectional media stream at `stream_url`, with
    `parameters` as the stream's custom parameters."""
    inner = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
        for name, value in parameters.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{inner}</Stream></Connect>"
        "</Response>"
    )
