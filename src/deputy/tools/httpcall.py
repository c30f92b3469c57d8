"""One HTTP call for a tool source, shared by the OpenAPI and webhook clients: sign it, send it
with the invocation's timeout and idempotency key, map the outcome, and record it redacted.

Outcome mapping:

- 2xx → `InvocationResult(ok=True)`; 3xx and 4xx (except 408 and 429) → `ok=False` with the body,
  which the model may read and react to;
- 5xx, 408, timeouts and connection errors → `ToolTransportError`, `retryable=True`;
  `maybe_delivered` is false only when no connection to the server was ever established
  (connect errors and timeouts, pool timeouts, a failed token fetch) and for 429, where the server
  says it did not act;
- a 401 under OAuth2 client credentials refreshes the token and re-sends once (a 401 means the
  request was refused, so re-sending cannot repeat an action)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from deputy.tools.auth import AuthConfig, Authenticator, Credentials
from deputy.tools.base import InvocationResult, JsonObject, ToolTransportError
from deputy.tools.redaction import Redactor

DEFAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
_CONNECTED_EVENTS = ("connect_tcp.complete", "start_tls.complete", "send_request_headers.started")


@dataclass(frozen=True)
class HTTPRequestSpec:
    """A request before signing: what the OpenAPI operation or the webhook built from the
    arguments."""

    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    has_json_body: bool = False
    form_body: dict[str, str] | None = None


class HTTPCaller:
    """Sends `HTTPRequestSpec`s. Owns its `httpx.AsyncClient` unless one is given."""

    def __init__(
        self,
        auth: AuthConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        idempotency_header: str = IDEMPOTENCY_HEADER,
    ) -> None:
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(follow_redirects=False)
        self.authenticator = Authenticator(auth, http=self._http)
        self.max_response_bytes = max_response_bytes
        self.idempotency_header = idempotency_header

    async def call(
        self, spec: HTTPRequestSpec, *, timeout: float, idempotency_key: str | None
    ) -> InvocationResult:
        connected = _ConnectionProbe()
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                return await self._call(spec, timeout, idempotency_key, connected, started)
        except TimeoutError:
            raise ToolTransportError(
                f"{spec.method} {self._redactor().url(spec.url)} timed out after {timeout:g}s",
                retryable=True,
                maybe_delivered=connected.value,
            ) from None

    def _redactor(self) -> Redactor:
        return self.authenticator.redactor()

    async def _call(
        self,
        spec: HTTPRequestSpec,
        timeout: float,
        idempotency_key: str | None,
        connected: _ConnectionProbe,
        started: float,
    ) -> InvocationResult:
        for attempt in (1, 2):
            request = self._build(spec, timeout, idempotency_key, connected)
            credentials = await self.authenticator.apply(request)
            response = await self._send(request, connected)
            try:
                body = await self._read(response, request)
            finally:
                await response.aclose()
            if response.status_code == 401 and attempt == 1 and self.authenticator.can_refresh:
                self.authenticator.invalidate(credentials.token)
                continue
            return self._result(request, response, body, credentials, started)
        raise AssertionError("unreachable")  # pragma: no cover

    def _build(
        self,
        spec: HTTPRequestSpec,
        timeout: float,
        idempotency_key: str | None,
        connected: _ConnectionProbe,
    ) -> httpx.Request:
        headers = {"Accept": "application/json", **spec.headers}
        if idempotency_key is not None:
            headers[self.idempotency_header] = idempotency_key
        content: bytes | None = None
        if spec.has_json_body:
            content = json.dumps(spec.json_body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            url = httpx.URL(spec.url)
            if spec.params:  # merged: a query already in the URL (a webhook's) is kept
                url = url.copy_merge_params(tuple(spec.params))
            return self._http.build_request(
                spec.method,
                url,
                headers=headers,
                content=content,
                data=spec.form_body,
                timeout=timeout,
                extensions={"trace": connected.trace},
            )
        except httpx.InvalidURL as exc:
            raise ToolTransportError(
                f"{spec.method} {self._redactor().url(spec.url)}: invalid URL ({exc})",
                retryable=False,
                maybe_delivered=False,
            ) from None

    async def _send(self, request: httpx.Request, connected: _ConnectionProbe) -> httpx.Response:
        where = f"{request.method} {self._redactor().url(str(request.url))}"
        try:
            return await self._http.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ToolTransportError(
                f"{where}: cannot connect ({_describe(exc, self._redactor())})",
                retryable=True,
                maybe_delivered=False,
            ) from None
        except httpx.TimeoutException as exc:
            raise ToolTransportError(
                f"{where}: timed out ({_describe(exc, self._redactor())})",
                retryable=True,
                maybe_delivered=True,
            ) from None
        except httpx.TransportError as exc:
            refused_locally = isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)
            after_connect = isinstance(
                exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError
            )
            raise ToolTransportError(
                f"{where}: {_describe(exc, self._redactor())}",
                retryable=not refused_locally,
                maybe_delivered=connected.value or after_connect,
            ) from None

    async def _read(self, response: httpx.Response, request: httpx.Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise ToolTransportError(
                        f"{request.method} {self._redactor().url(str(request.url))}: the "
                        f"response exceeds {self.max_response_bytes} bytes",
                        retryable=False,
                        maybe_delivered=True,
                    )
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ToolTransportError(
                f"{request.method} {self._redactor().url(str(request.url))}: reading the "
                f"response failed ({_describe(exc, self._redactor())})",
                retryable=True,
                maybe_delivered=True,
            ) from None
        return b"".join(chunks)

    def _result(
        self,
        request: httpx.Request,
        response: httpx.Response,
        body: bytes,
        credentials: Credentials,
        started: float,
    ) -> InvocationResult:
        redactor = self._redactor()
        status = response.status_code
        output = redactor.values(_parse_body(body, response.headers.get("content-type", "")))
        request_record = _request_record(request, redactor)
        response_record: JsonObject = {
            "status": status,
            "headers": redactor.headers(response.headers.multi_items()),
            "body": redactor.json(output),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }
        where = f"{request.method} {request_record['url']}"
        if status >= 500 or status == 408:
            raise ToolTransportError(
                f"{where} answered {status}: {_excerpt(output)}",
                retryable=True,
                maybe_delivered=True,
            )
        if status == 429:
            raise ToolTransportError(
                f"{where} answered 429 (rate limited): {_excerpt(output)}",
                retryable=True,
                maybe_delivered=False,
            )
        return InvocationResult(
            ok=200 <= status < 300,
            output=output,
            status=status,
            request=request_record,
            response=response_record,
        )

    async def aclose(self) -> None:
        await self.authenticator.aclose()
        if self._owns_http:
            await self._http.aclose()


class _ConnectionProbe:
    """Set once httpx reports a connection to the server (from its trace extension)."""

    def __init__(self) -> None:
        self.value = False

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(_CONNECTED_EVENTS):
            self.value = True


def _request_record(request: httpx.Request, redactor: Redactor) -> JsonObject:
    record: JsonObject = {
        "method": request.method,
        "url": redactor.url(str(request.url)),
        "headers": redactor.headers(request.headers.multi_items()),
    }
    content = request.content
    if content:
        content_type = request.headers.get("content-type", "")
        record["body"] = redactor.json(_parse_body(content, content_type))
    return record


def _parse_body(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type.lower() or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "x-www-form-urlencoded" in content_type.lower():
        return dict(httpx.QueryParams(text).multi_items())
    return text


def _excerpt(output: Any, limit: int = 300) -> str:
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def _describe(exc: Exception, redactor: Redactor) -> str:
    return redactor.text(str(exc)) or type(exc).__name__
