"""What the messaging adapters share: the webhook request as received (raw bytes, because
signatures are computed over them), what parsing it yields, and the HTTP plumbing of senders
(one timeout policy, transport errors and platform statuses turned into `DeliveryFailed`
without ever echoing a URL that may carry a token, long replies split to a platform's limit)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx

from deputy.channels.base import DeliveryFailed
from deputy.channels.tls import client_tls_context
from deputy.domain.channels import Inbound, KindConfig, Outbound

SEND_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
C = TypeVar("C", bound=KindConfig)


class MalformedWebhook(ValueError):
    """A verified request whose body is not what the platform sends (answered 400)."""


@dataclass(frozen=True)
class WebhookRequest:
    """A platform's request as it arrived: header names lower-cased, the body untouched."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedWebhook("the body is not JSON") from None
        if not isinstance(data, dict):
            raise MalformedWebhook("the body is not a JSON object")
        return data


@dataclass(frozen=True)
class WebhookAnswer:
    """What the webhook answers the platform (a challenge, TwiML, or a plain ok)."""

    body: bytes = b'{"ok":true}'
    media_type: str = "application/json"
    status: int = 200


@dataclass(frozen=True)
class Parsed:
    """The customer messages a delivery carries (none for events that are not messages:
    `ignored` says why) and, when the platform expects one, a specific answer."""

    messages: tuple[Inbound, ...] = ()
    answer: WebhookAnswer | None = None
    ignored: str | None = None


def ignore(reason: str, answer: WebhookAnswer | None = None) -> Parsed:
    return Parsed(answer=answer, ignored=reason)


@dataclass(frozen=True)
class Webhook:
    """One platform's inbound side: `verify` raises `InboundRejected` for a request the
    platform did not sign; `parse` turns a verified request into messages."""

    verify: Callable[[WebhookRequest, KindConfig, Mapping[str, str]], None]
    parse: Callable[[WebhookRequest, KindConfig], Parsed]


def config_of(config: KindConfig, kind: type[C]) -> C:
    if not isinstance(config, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(config).__name__}")
    return config


def base_url(url: object) -> str:
    """A configured API base without its trailing slash."""
    return str(url).rstrip("/")


def mapping(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (payload fields may be absent)."""
    return value if isinstance(value, dict) else {}


def text_of(value: object, limit: int = 8000) -> str:
    return value[:limit] if isinstance(value, str) else ""


# ---- sending ------------------------------------------------------------------------------


def client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client for one send (`transport`: a test's stand-in for the network)."""
    if transport is not None:
        return httpx.AsyncClient(timeout=SEND_TIMEOUT, transport=transport)
    return httpx.AsyncClient(timeout=SEND_TIMEOUT, verify=client_tls_context())


async def request(
    platform: str, http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One API call; a transport failure is a transient `DeliveryFailed` whose message names
    only the platform and the error's type (URLs may carry a bot token)."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"{platform}: the API did not answer in time") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{platform}: transport error ({type(exc).__name__})") from None


def status_failure(platform: str, response: httpx.Response, detail: str) -> DeliveryFailed:
    """An HTTP error answer: 5xx, 429 and the like are worth retrying, other 4xx are not."""
    transient = response.status_code >= 500 or response.status_code in TRANSIENT_STATUSES
    return DeliveryFailed(
        f"{platform}: HTTP {response.status_code}: {detail}"[:500], permanent=not transient
    )


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at a paragraph, line or word
    boundary in the second half of a piece when there is one."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at >= limit // 2:
                cut = at
                break
        if cut < 0:
            pieces.append(window)
            text = text[limit:].lstrip()
        else:
            pieces.append(window[:cut].rstrip())
            text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


class PlatformSender:
    """What the platforms' senders share: an optional transport (a test's stand-in for the
    network) and the checks that fail a send for good when the connection or the
    conversation lacks what the platform needs."""

    platform: ClassVar[str]

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = transport

    def secret(self, secrets: Mapping[str, str], name: str) -> str:
        value = secrets.get(name)
        if not value:
            what = name.replace("_", " ")
            raise DeliveryFailed(f"{self.platform}: the connection has no {what}", permanent=True)
        return value

    def target(self, message: Outbound, key: str, missing: str) -> str | int:
        value = message.reply_to.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise DeliveryFailed(f"{self.platform}: {missing}", permanent=True)
        return value
