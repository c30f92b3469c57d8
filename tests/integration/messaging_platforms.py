"""Fakes of Slack, Telegram, WhatsApp and Twilio for channel tests and benchmarks.

`fake_platforms()` serves, on 127.0.0.1, the four send APIs Deputy calls (Slack
`chat.postMessage`, Telegram `sendMessage`, WhatsApp `/{number}/messages`, Twilio
`Messages.json`), records every call and can be told to fail. `webhook()` builds a customer's
delivery to Deputy signed the way each platform signs it, computed here from the platforms'
documentation and independently of Deputy's verifiers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from examples.retail.server import serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KINDS = ("slack", "telegram", "whatsapp", "sms")
SMS_WEBHOOK_URL = "https://deputy.example.com/hooks/sms"
PHONE_NUMBER_ID = "106540352242922"
ACCOUNT_SID = "AC0123456789"
FROM_NUMBER = "+15550001111"
SECRETS: dict[str, dict[str, str]] = {
    "slack": {"signing_secret": "slack-signing-secret", "bot_token": "xoxb-bot-token"},
    "telegram": {"bot_token": "4242:bot-token", "secret_token": "tg-secret-token"},
    "whatsapp": {"app_secret": "wa-app-secret", "access_token": "EAA-token", "verify_token": "vt"},
    "sms": {"auth_token": "twilio-auth-token"},
}


@dataclass(frozen=True)
class Sent:
    """One call Deputy made to a platform's send API."""

    kind: str
    path: str
    authorization: str
    payload: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)
    """When it arrived (`time.perf_counter`), for latency measurements."""

    @property
    def text(self) -> str:
        """The message's text, wherever the platform keeps it."""
        if self.kind == "whatsapp":
            return str(self.payload["text"]["body"])
        return str(self.payload.get("Body" if self.kind == "sms" else "text", ""))

    @property
    def recipient(self) -> str:
        """The chat, channel or number it was sent to."""
        key = {"slack": "channel", "telegram": "chat_id", "whatsapp": "to", "sms": "To"}
        return str(self.payload[key[self.kind]])


@dataclass
class FakePlatforms:
    url: str = ""
    sent: list[Sent] = field(default_factory=list)
    """Calls answered with success, in order."""
    refused: list[Sent] = field(default_factory=list)
    """Calls answered with a scripted failure."""
    _failures: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def api_base_url(self, kind: str) -> str:
        return f"{self.url}/{'whatsapp/v21.0' if kind == 'whatsapp' else kind}"

    def fail(self, kind: str, status: int, body: dict[str, Any], times: int = 1) -> None:
        """Answer the next `times` sends of `kind` with this error."""
        with self._lock:
            self._failures.setdefault(kind, []).extend([(status, body)] * times)

    def texts(self, kind: str | None = None) -> list[str]:
        return [s.text for s in list(self.sent) if kind is None or s.kind == kind]

    def wait_for(self, check: Callable[[list[Sent]], bool], timeout: float = 30.0) -> list[Sent]:
        """Block until `check(sent)` holds; what was sent (a timeout fails the test)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not check(list(self.sent)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not sent in {timeout} s; sent: {self.sent}")
                self._arrived.wait(min(left, 0.2))
        return list(self.sent)

    def wait_for_text(self, text: str, timeout: float = 30.0) -> Sent:
        self.wait_for(lambda sent: any(s.text == text for s in sent), timeout)
        return next(s for s in self.sent if s.text == text)

    async def _record(self, kind: str, request: Request, ok: dict[str, Any]) -> JSONResponse:
        if kind == "sms":
            payload: dict[str, Any] = dict(parse_qsl((await request.body()).decode()))
        else:
            payload = await request.json()
        call = Sent(kind, request.url.path, request.headers.get("authorization", ""), payload)
        with self._lock:
            failures = self._failures.get(kind) or []
            failure = failures.pop(0) if failures else None
            if failure is None:
                self.sent.append(call)
            else:
                self.refused.append(call)
        with self._arrived:
            self._arrived.notify_all()
        if failure is not None:
            return JSONResponse(failure[1], status_code=failure[0])
        return JSONResponse(ok, status_code=201 if kind == "sms" else 200)

    def app(self) -> Starlette:
        async def slack(request: Request) -> JSONResponse:
            return await self._record("slack", request, {"ok": True, "ts": f"{time.time():.6f}"})

        async def telegram(request: Request) -> JSONResponse:
            result = {"message_id": len(self.sent) + 1}
            return await self._record("telegram", request, {"ok": True, "result": result})

        async def whatsapp(request: Request) -> JSONResponse:
            answer = {"messages": [{"id": f"wamid.out{len(self.sent) + 1}"}]}
            return await self._record("whatsapp", request, answer)

        async def twilio(request: Request) -> JSONResponse:
            answer = {"sid": f"SM{len(self.sent) + 1:032d}", "status": "queued"}
            return await self._record("sms", request, answer)

        return Starlette(
            routes=[
                Route("/slack/chat.postMessage", slack, methods=["POST"]),
                Route("/telegram/{bot}/sendMessage", telegram, methods=["POST"]),
                Route("/whatsapp/v21.0/{number}/messages", whatsapp, methods=["POST"]),
                Route("/sms/2010-04-01/Accounts/{sid}/Messages.json", twilio, methods=["POST"]),
            ]
        )


@contextmanager
def fake_platforms() -> Iterator[FakePlatforms]:
    platforms = FakePlatforms()
    with serve_app(platforms.app()) as url:
        platforms.url = url
        yield platforms


def connection_body(kind: str, agent_id: str, platforms: FakePlatforms) -> dict[str, Any]:
    """What `POST /v1/channel-connections` needs to connect `agent_id` on `kind`."""
    config: dict[str, Any] = {"api_base_url": platforms.api_base_url(kind)}
    if kind == "whatsapp":
        config["phone_number_id"] = PHONE_NUMBER_ID
    if kind == "sms":
        config.update(account_sid=ACCOUNT_SID, from_number=FROM_NUMBER, webhook_url=SMS_WEBHOOK_URL)
    return {
        "agent_id": agent_id,
        "kind": kind,
        "name": f"{kind}-test",
        "config": config,
        "secrets": SECRETS[kind],
    }


# ---- deliveries, signed as the platforms sign them ------------------------------------------


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    delivery_id: str
    """The id Deputy deduplicates by (event id, update id, message id, MessageSid)."""


def _hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def webhook(kind: str, text: str, thread: str, delivery_id: str) -> Delivery:
    """A customer's message on `kind`, in conversation thread `thread` (a Slack thread, a
    Telegram chat, a WhatsApp or SMS number), as the platform would post it."""
    secrets = SECRETS[kind]
    digits = str(int(hashlib.sha256(thread.encode()).hexdigest()[:10], 16))
    if kind == "slack":
        event = {
            "type": "message",
            "user": "U0CUSTOMER",
            "text": text,
            "channel": "C0SUPPORT",
            "channel_type": "channel",
            "ts": f"{time.time():.6f}",
            "thread_ts": f"{digits}.000100",
        }
        payload = {
            "type": "event_callback",
            "team_id": "T0TEAM",
            "event_id": delivery_id,
            "event": event,
            "authorizations": [{"user_id": "U0BOT", "is_bot": True}],
        }
        body = json.dumps(payload).encode()
        at = str(int(time.time()))
        signature = "v0=" + _hmac_hex(secrets["signing_secret"], f"v0:{at}:".encode() + body)
        headers = {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": at}
    elif kind == "telegram":
        message = {
            "message_id": int(hashlib.sha256(delivery_id.encode()).hexdigest()[:6], 16),
            "date": int(time.time()),
            "chat": {"id": int(digits), "type": "private"},
            "from": {"id": int(digits), "is_bot": False, "first_name": "Ada"},
            "text": text,
        }
        update_id = int(hashlib.sha256(delivery_id.encode()).hexdigest()[:12], 16)
        body = json.dumps({"update_id": update_id, "message": message}).encode()
        headers = {"X-Telegram-Bot-Api-Secret-Token": secrets["secret_token"]}
    elif kind == "whatsapp":
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Grace"}, "wa_id": digits}],
            "messages": [
                {"from": digits, "id": delivery_id, "type": "text", "text": {"body": text}}
            ],
        }
        change = {"field": "messages", "value": value}
        payload = {"object": "whatsapp_business_account", "entry": [{"changes": [change]}]}
        body = json.dumps(payload).encode()
        headers = {"X-Hub-Signature-256": "sha256=" + _hmac_hex(secrets["app_secret"], body)}
    elif kind == "sms":
        params = {
            "MessageSid": delivery_id,
            "AccountSid": ACCOUNT_SID,
            "From": f"+1{digits[:10]}",
            "To": FROM_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        signed = SMS_WEBHOOK_URL + "".join(k + params[k] for k in sorted(params))
        digest = hmac.new(secrets["auth_token"].encode(), signed.encode(), hashlib.sha1).digest()
        body = urlencode(params).encode()
        headers = {
            "X-Twilio-Signature": base64.b64encode(digest).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
    else:
        raise ValueError(kind)
    if kind != "sms":
        headers["Content-Type"] = "application/json"
    if kind == "telegram":
        delivery_id = str(update_id)  # Telegram's delivery id is the update's
    return Delivery(headers, body, delivery_id)


def recipient(kind: str, thread: str) -> str:
    """Where a reply in `thread` must go (the ids `webhook` used)."""
    digits = str(int(hashlib.sha256(thread.encode()).hexdigest()[:10], 16))
    return {"slack": "C0SUPPORT", "telegram": digits, "whatsapp": digits}.get(
        kind, f"+1{digits[:10]}"
    )


def expected_authorization(kind: str) -> str:
    secrets = SECRETS[kind]
    if kind == "sms":
        basic = base64.b64encode(f"{ACCOUNT_SID}:{secrets['auth_token']}".encode()).decode()
        return f"Basic {basic}"
    if kind == "telegram":
        return ""  # the bot token is in the path
    token = secrets["bot_token"] if kind == "slack" else secrets["access_token"]
    return f"Bearer {token}"
