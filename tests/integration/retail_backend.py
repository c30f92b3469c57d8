"""The retail REST backend (examples/retail) behind a thin ASGI layer that records what reaches it
and what it answered, so tests can tell a request that ran from one the backend replayed for its
`Idempotency-Key` (`Idempotent-Replayed: true`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from examples.retail.auth import AuthConfig
from examples.retail.rest import create_app
from examples.retail.server import serve_app
from examples.retail.store import RetailStore
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Exchange:
    path: str
    key: str | None
    status: int
    replayed: bool
    body: bytes


@dataclass
class CountingBackend:
    app: ASGIApp
    exchanges: list[Exchange] = field(default_factory=list)
    """Every tool request that arrived, with the backend's answer."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return [(e.path, e.key) for e in self.exchanges]

    def arrived(self, tool: str) -> int:
        return sum(1 for e in self.exchanges if e.path == f"/tools/{tool}")

    def ran(self, tool: str) -> int:
        """Requests the backend executed (not answered from its idempotency cache)."""
        return sum(1 for e in self.exchanges if e.path == f"/tools/{tool}" and not e.replayed)

    def first_answer(self, key: str) -> bytes:
        return next(e.body for e in self.exchanges if e.key == key and not e.replayed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/tools/"):
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get("idempotency-key")
        captured: dict[str, Any] = {"body": b"", "status": 0, "replayed": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                headers = Headers(raw=list(message.get("headers", [])))
                captured["replayed"] = headers.get("idempotent-replayed") == "true"
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, capture)
        exchange = Exchange(path, key, captured["status"], captured["replayed"], captured["body"])
        with self._lock:
            self.exchanges.append(exchange)


@dataclass
class RetailServer:
    url: str
    store: RetailStore
    backend: CountingBackend
    document: dict[str, Any]

    def order(self, order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = self.store.snapshot()["orders"][order_id]
        return order


@contextmanager
def retail_server(
    *, honour_idempotency_keys: bool = False, auth: AuthConfig | None = None
) -> Iterator[RetailServer]:
    """A fresh store served on a free port of 127.0.0.1."""
    store = RetailStore()
    app = create_app(store, auth, honour_idempotency_keys=honour_idempotency_keys)
    document = app.openapi()
    backend = CountingBackend(app)
    with serve_app(backend) as url:
        yield RetailServer(url, store, backend, document)
