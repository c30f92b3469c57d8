"""Pure-ASGI middleware: request context (id, access log, metrics, trace span), body limits and
idempotent POSTs. Pure ASGI so uploads stream through without being buffered here."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deputy.api.errors import STATUS_BY_CODE, error_body
from deputy.domain.errors import ErrorCode
from deputy.observability.context import RequestInfo, current_request
from deputy.observability.metrics import HttpMetrics
from deputy.observability.tracing import carried_context, record_failure, tracer
from deputy.services import idempotency
from deputy.store.db import Database

access_log = logging.getLogger("deputy.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
IDEMPOTENCY_KEY_MAX = 255


async def send_error(
    send: Send, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> None:
    body = json.dumps(error_body(code, message, details)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": STATUS_BY_CODE[code],
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-error-code", code.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Outermost: assigns the request id, records metrics and a span, writes the access line,
    and turns anything that escaped the app into the standard 500 body."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        token = current_request.set(RequestInfo(request_id=request_id))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
                for name, value in headers:
                    if name.lower() == b"x-error-code":
                        self.metrics.errors.labels(code=value.decode()).inc()
            await send(message)

        method = scope["method"]
        headers = Headers(scope=scope)
        with tracer().start_as_current_span(
            f"{method} {scope['path']}",
            context=carried_context(headers),
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as error:
                record_failure(span, error)
                access_log.exception("unhandled error")
                if not response_started:
                    await send_error(
                        send_with_id,
                        "internal_error",
                        "an internal error occurred; quote the request id",
                    )
            finally:
                route_path = route_template(scope)
                elapsed = time.perf_counter() - started
                span.update_name(f"{method} {route_path}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route_path)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                info = current_request.get()
                if info is not None and info.workspace_id is not None:
                    span.set_attribute("deputy.workspace.id", info.workspace_id)
                self.metrics.requests.labels(
                    method=method, route=route_path, status=str(status)
                ).inc()
                self.metrics.latency.labels(method=method, route=route_path).observe(elapsed)
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route_path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
                current_request.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route as a template (`/v1/agents/{agent_id}`), for low-cardinality labels."""
    if "route" not in scope:
        return "unmatched"
    segments = str(scope["path"]).split("/")
    for name, value in dict(scope.get("path_params") or {}).items():
        for index in range(len(segments) - 1, -1, -1):
            if segments[index] == str(value):
                segments[index] = "{" + name + "}"
                break
    return "/".join(segments)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over the limit, by Content-Length up front or by counting as they stream."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await send_error(
                send,
                "payload_too_large",
                f"the request body exceeds {limit} bytes",
                {"limit": limit},
            )
            return
        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks may turn a failed body read into their own 400: answer 413 instead.
            nonlocal response_started
            if too_large:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await send_error(
                        send,
                        "payload_too_large",
                        f"the request body exceeds {limit} bytes",
                        {"limit": limit},
                    )
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not response_started:
                await send_error(
                    send,
                    "payload_too_large",
                    f"the request body exceeds {limit} bytes",
                    {"limit": limit},
                )


class IdempotencyMiddleware:
    """Honour `Idempotency-Key` on every POST: replay the stored response for a repeated key,
    refuse a key reused with a different request, and refuse a key whose first request is still
    running. JSON bodies are part of the fingerprint; uploads by route, type and size."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if (
            key is None
            or "text/event-stream" in headers.get("accept", "")
            or "authorization" not in headers
        ):
            # A streamed answer cannot be held back and replayed; streamed messages are
            # deduplicated by their `client_message_id` instead. Requests without a key
            # (signed channel webhooks) are deduplicated by their platform's delivery id.
            await self.app(scope, receive, send)
            return
        if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
            await send_error(
                send,
                "invalid_request",
                f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable characters",
            )
            return
        credential = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()
        fingerprint = hashlib.sha256()
        fingerprint.update(f"{scope['path']}?{scope.get('query_string', b'').decode()}".encode())
        buffered: list[Message] = []
        content_type = headers.get("content-type", "")
        if not content_type.startswith("application/json"):
            # Uploads stream through unread: their size stands in for their bytes, so reusing a
            # key for a different file of another size is caught.
            fingerprint.update(
                f"|{content_type.split(';')[0]}|{headers.get('content-length')}".encode()
            )
        else:
            # JSON bodies are small (bounded by BodyLimitMiddleware): read them to fingerprint.
            while True:
                message = await receive()
                buffered.append(message)
                fingerprint.update(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        claim = await _run_sync(
            idempotency.claim, self.db, credential, key, fingerprint.hexdigest()
        )
        if claim.outcome == "mismatch":
            await send_error(
                send,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            return
        if claim.outcome == "in_progress":
            await send_error(
                send,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            return
        if claim.outcome == "replay":
            assert claim.response is not None
            await _send_stored(send, claim.response)
            return
        assert claim.record_id is not None
        await self._run_and_store(scope, _replaying(buffered, receive), send, claim.record_id)

    async def _run_and_store(
        self, scope: Scope, receive: Receive, send: Send, record_id: int
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        try:

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.app(scope, receive, capture)
        except BaseException:
            await _run_sync(idempotency.release, self.db, record_id)
            raise
        if start is None:
            await _run_sync(idempotency.release, self.db, record_id)
            return
        status = int(start["status"])
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        stored = idempotency.StoredResponse(status=status, headers=headers, body=body)
        if (
            status >= 500
            or status in (401, 429)
            or headers.get("x-error-code") == "idempotency_in_progress"
        ):
            await _run_sync(idempotency.release, self.db, record_id)
        else:
            await _run_sync(
                idempotency.complete, self.db, record_id, stored
            )  # persist, then answer
        await send({**start, "headers": list(start.get("headers", []))})
        await send({"type": "http.response.body", "body": body})


def _replaying(buffered: list[Message], receive: Receive) -> Receive:
    pending = list(buffered)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _send_stored(send: Send, response: idempotency.StoredResponse) -> None:
    headers = [(k.encode(), v.encode()) for k, v in response.headers.items() if k != "x-request-id"]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
