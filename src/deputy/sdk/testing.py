"""Run the SDK against an ASGI app in this process, without a network or a server.

`httpx.ASGITransport` serves `AsyncDeputyClient`; `SyncASGITransport` gives the synchronous
`DeputyClient` the same, by running the app on an event loop in a helper thread:

    with SyncASGITransport(create_app(platform)) as transport:
        client = DeputyClient("http://deputy.test", key, transport=transport)
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp


class SyncASGITransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app. Bodies are buffered both ways."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._portal_context = start_blocking_portal()
        self._portal: BlockingPortal | None = self._portal_context.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._portal is None:
            raise RuntimeError("the transport is closed")
        body = request.read()
        buffered = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=body,
            extensions=request.extensions,
        )

        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._inner.handle_async_request(buffered)
            content = await response.aread()
            return response.status_code, response.headers, content

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._portal is not None:
            self._portal = None
            self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> SyncASGITransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
        *_: Any,
    ) -> None:
        self.close()
