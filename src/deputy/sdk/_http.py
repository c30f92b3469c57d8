"""Sending `Call`s: headers, retries, error mapping. One sync and one async executor with the
same loop; everything they decide is in `retry.RetryPolicy` and `errors`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import anyio
import httpx
from httpx import USE_CLIENT_DEFAULT
from pydantic import ValidationError

from deputy import __version__
from deputy.sdk._calls import Call
from deputy.sdk.errors import (
    DeputyConnectionError,
    DeputyTimeoutError,
    UnexpectedResponse,
    error_from_response,
)
from deputy.sdk.retry import RetryPolicy, may_have_reached_server

T = TypeVar("T")
USER_AGENT = f"deputy-sdk/{__version__} httpx/{httpx.__version__}"


def default_headers(api_key: str) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _request_headers(call: Call[Any]) -> dict[str, str]:
    headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
    if call.accept:
        headers["Accept"] = call.accept
    return headers


def _connection_error(exc: httpx.TransportError, base_url: str) -> DeputyConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return DeputyTimeoutError(
            f"Deputy at {base_url} did not answer in time ({type(exc).__name__})"
        )
    reason = str(exc) or type(exc).__name__
    return DeputyConnectionError(f"cannot reach Deputy at {base_url}: {reason}")


def _parse(call: Call[T], response: httpx.Response) -> T:
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as exc:
        raise UnexpectedResponse(
            f"unexpected answer to {call.method} {call.path} (HTTP {response.status_code}); "
            "is the URL a Deputy server?",
            details={"status": response.status_code},
        ) from exc


class _Attempts:
    """The bookkeeping of one call's attempts."""

    def __init__(self, call: Call[Any], policy: RetryPolicy, base_url: str) -> None:
        self.call = call
        self.policy = policy
        self.base_url = base_url
        self.number = 0
        self.answer_lost = False

    def after_exception(self, exc: httpx.TransportError) -> float:
        delay = self.policy.retry_exception(
            exc, self.number, idempotent=self.call.idempotent, allowed=self.call.retry
        )
        if delay is None:
            raise _connection_error(exc, self.base_url) from exc
        self.answer_lost = self.answer_lost or may_have_reached_server(exc)
        self.number += 1
        return delay

    def accepts(self, response: httpx.Response) -> bool:
        if response.is_success or response.status_code in self.call.accept_statuses:
            return True
        # A retried DELETE that finds nothing: the earlier attempt deleted it.
        return self.call.gone_is_done and self.answer_lost and response.status_code == 404

    def after_error_response(self, response: httpx.Response) -> float:
        """Call with the error body read: the delay before retrying, or raises the error."""
        final = response.headers.get("x-error-code") in self.call.final_codes
        delay = self.policy.retry_response(
            response, self.number, allowed=self.call.retry and not final
        )
        if delay is None:
            raise error_from_response(response)
        self.number += 1
        return delay


def _build_request(client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    """The HTTP request for one attempt of `call` (the same for both clients)."""
    return client.build_request(
        call.method,
        call.path,
        params=call.params,
        json=call.json,
        files=call.files,
        headers=_request_headers(call),
        timeout=USE_CLIENT_DEFAULT if call.timeout is None else call.timeout,
    )


class SyncHTTP:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self.client = httpx.Client(
            base_url=base_url,
            headers=default_headers(api_key),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def run(self, call: Call[T]) -> T:
        return _parse(call, self._send(call, stream=False))

    @contextmanager
    def stream(self, call: Call[Any]) -> Iterator[httpx.Response]:
        response = self._send(call, stream=True)
        try:
            yield response
        finally:
            response.close()

    def _send(self, call: Call[T], *, stream: bool) -> httpx.Response:
        attempts = _Attempts(call, self.retry, self.base_url)
        while True:
            request = _build_request(self.client, call)
            try:
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                time.sleep(attempts.after_exception(exc))
                continue
            if attempts.accepts(response):
                return response
            try:
                response.read()
            except httpx.TransportError as exc:
                time.sleep(attempts.after_exception(exc))
                continue
            finally:
                response.close()
            time.sleep(attempts.after_error_response(response))

    def close(self) -> None:
        self.client.close()


class AsyncHTTP:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers=default_headers(api_key),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def run(self, call: Call[T]) -> T:
        return _parse(call, await self._send(call, stream=False))

    @asynccontextmanager
    async def stream(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._send(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def _send(self, call: Call[T], *, stream: bool) -> httpx.Response:
        attempts = _Attempts(call, self.retry, self.base_url)
        while True:
            request = _build_request(self.client, call)
            try:
                response = await self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                await anyio.sleep(attempts.after_exception(exc))
                continue
            if attempts.accepts(response):
                return response
            try:
                await response.aread()
            except httpx.TransportError as exc:
                await anyio.sleep(attempts.after_exception(exc))
                continue
            finally:
                await response.aclose()
            await anyio.sleep(attempts.after_error_response(response))

    async def aclose(self) -> None:
        await self.client.aclose()
