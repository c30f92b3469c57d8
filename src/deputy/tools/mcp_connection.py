"""One live MCP session, owned by a dedicated background task.

The SDK's `Client` (like every anyio task group and cancel scope) must be entered and exited in
the same task; a tool executor calls from many tasks. So one task per connection enters the
`Client`, publishes it, and waits for a stop signal; callers send requests through the published
client from their own tasks (the SDK correlates responses over memory streams, which any task may
use), and `close()` tells the owner to leave the `Client` — shutting the subprocess or HTTP
session down — and waits for it.

The transport is wrapped to observe two facts the SDK does not expose: whether the connection
has ended (the read stream reached its end), and whether a given request was handed to the
transport at all. A call that fails on a closed connection before its request was written can
safely be re-sent on a new connection; one that may have reached the server cannot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import httpx2
import mcp.types as mcp_types
from mcp import Client
from mcp.client import Transport
from mcp.client._transport import ReadStream, TransportStreams, WriteStream
from mcp.shared.message import SessionMessage

from deputy.tools.auth import Authenticator, Credentials
from deputy.tools.base import ToolTransportError

logger = logging.getLogger(__name__)

CALL_ID_META = "dev.deputy/call-id"
"""`_meta` key carrying a per-attempt id, so a call's delivery can be told from the wire."""
CLOSE_TIMEOUT_SECONDS = 10.0

TransportFactory = Callable[[AsyncExitStack], Awaitable[Transport]]


class WireTracker:
    """What the wrapped transport saw."""

    def __init__(self) -> None:
        self.closed = False
        self._written: set[str] = set()

    def written(self, call_id: str) -> bool:
        return call_id in self._written

    def record(self, message: SessionMessage) -> None:
        request = message.message
        if isinstance(request, mcp_types.JSONRPCRequest) and isinstance(request.params, dict):
            meta = request.params.get("_meta")
            if isinstance(meta, dict) and isinstance(meta.get(CALL_ID_META), str):
                self._written.add(meta[CALL_ID_META])


class _TrackedRead:
    def __init__(self, inner: ReadStream[SessionMessage | Exception], tracker: WireTracker):
        self._inner = inner
        self._tracker = tracker

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._tracker.closed = True
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _TrackedRead:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._tracker.closed = True
            raise

    async def __aenter__(self) -> _TrackedRead:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tracker.closed = True
        await self._inner.aclose()


class _TrackedWrite:
    def __init__(self, inner: WriteStream[SessionMessage], tracker: WireTracker):
        self._inner = inner
        self._tracker = tracker

    async def send(self, item: SessionMessage, /) -> None:
        try:
            await self._inner.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._tracker.closed = True
            raise
        self._tracker.record(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _TrackedWrite:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.aclose()


class _TrackedTransport:
    def __init__(self, inner: Transport, tracker: WireTracker) -> None:
        self._inner = inner
        self._tracker = tracker

    async def __aenter__(self) -> TransportStreams:
        read, write = await self._inner.__aenter__()
        return _TrackedRead(read, self._tracker), _TrackedWrite(write, self._tracker)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._tracker.closed = True
        return await self._inner.__aexit__(exc_type, exc, tb)


class MCPConnection:
    """A `Client` entered and exited by its own task. Bound to the event loop it was opened on."""

    def __init__(self, make_transport: TransportFactory, client_info: mcp_types.Implementation):
        self._make_transport = make_transport
        self._client_info = client_info
        self.tracker = WireTracker()
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    @property
    def broken(self) -> bool:
        return self.tracker.closed or self._task is None or self._task.done()

    @property
    def client(self) -> Client:
        return self._ready.result()

    async def open(self, timeout: float) -> Client:
        self._task = asyncio.create_task(self._own(), name="deputy-mcp-connection")
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            await self.close()
            raise ToolTransportError(
                f"connecting to the MCP server timed out after {timeout:g}s",
                retryable=True,
                maybe_delivered=False,
            ) from None
        except ToolTransportError:
            await self.close()
            raise
        except BaseException:
            await self.close()
            raise

    async def _own(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                transport = await self._make_transport(stack)
                client = Client(
                    _TrackedTransport(transport, self.tracker),
                    cache=None,
                    client_info=self._client_info,
                )
                await stack.enter_async_context(client)
                self._ready.set_result(client)
                await self._stop.wait()
        except Exception as exc:
            self.failure = exc
            if not self._ready.done():
                self._ready.set_exception(
                    ToolTransportError(
                        f"cannot connect to the MCP server: {_describe(exc)}",
                        retryable=True,
                        maybe_delivered=False,
                    )
                )
            else:
                logger.warning("MCP connection ended: %s", _describe(exc))
        except asyncio.CancelledError:
            if not self._ready.done():
                self._ready.cancel()
            raise
        finally:
            self.tracker.closed = True

    async def close(self) -> None:
        """Leave the session (stopping the server process or HTTP session); idempotent."""
        self._stop.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            raise
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: no "never retrieved" warning


class BridgedAuth(httpx2.Auth):
    """Signs the MCP SDK's httpx2 requests with a Deputy `Authenticator` (API key, bearer or
    OAuth2 client credentials); a 401 under OAuth2 refreshes the token and re-sends once."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.refused: int | None = None
        """401 or 403 when the server's last answer refused the credentials."""

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        credentials = await self.authenticator.credentials()
        _sign(request, credentials)
        response = yield request
        if response.status_code == 401 and self.authenticator.can_refresh:
            self.authenticator.invalidate(credentials.token)
            _sign(request, await self.authenticator.credentials())
            response = yield request
        self.refused = response.status_code if response.status_code in (401, 403) else None


def _sign(request: httpx2.Request, credentials: Credentials) -> None:
    request.headers.update(credentials.headers)
    if credentials.params:
        request.url = request.url.copy_merge_params(credentials.params)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return str(exc) or type(exc).__name__
