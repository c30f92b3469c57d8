"""What Twilio's webhooks share, for SMS and voice alike: the `X-Twilio-Signature` check.

Twilio signs each request with the account's auth token: HMAC-SHA1 over the full URL it
requested (as configured, query string included) followed by every POST parameter's name
and value, sorted by name, base64-encoded. See
https://www.twilio.com/docs/usage/webhooks/webhooks-security."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from deputy.channels.base import InboundRejected

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_PORTS = {"https": 443, "http": 80}

Params = Mapping[str, str] | Iterable[tuple[str, str]]


def _pairs(params: Params) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(name), str(value)) for name, value in items]


def twilio_signature(url: str, params: Params, token: str) -> str:
    """The signature Twilio sends for a POST of `params` to `url`. A repeated parameter (given
    as pairs) counts each distinct value once, in order of value, as Twilio's own validator
    does."""
    payload = url + "".join(name + value for name, value in sorted(set(_pairs(params))))
    digest = hmac.new(token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """The configured URL as Twilio may have signed it: as written, with and without the
    scheme's default port (a stored URL drops it), with and without a lone trailing slash."""
    parts = urlsplit(url)
    variants = [url]
    host = parts.hostname or ""
    default = DEFAULT_PORTS.get(parts.scheme)
    if parts.port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default:
        netloc = parts.netloc.rsplit(":", 1)[0] if host else parts.netloc
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    if parts.path == "/" and not parts.query:
        variants += [v.rstrip("/") for v in list(variants)]
    return variants


def verify_twilio_signature(
    url: str, params: Params, token: str, signature: str | None, *, status: int = 403
) -> None:
    """Raise `InboundRejected` (with `status`) unless `signature` is Twilio's for a request
    to `url` (or one of its `url_variants`)."""
    if not signature:
        raise InboundRejected(f"the request has no {SIGNATURE_HEADER} header", status=status)
    pairs = _pairs(params)
    given = signature.strip().encode("utf-8")
    if not any(
        hmac.compare_digest(twilio_signature(candidate, pairs, token).encode("ascii"), given)
        for candidate in url_variants(url)
    ):
        raise InboundRejected(f"the {SIGNATURE_HEADER} header does not match", status=status)
