"""The quickstart's background server says why it did not come up."""

from __future__ import annotations

import socket
from typing import Any

from deputy.cli.server import BackgroundServer


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def test_a_taken_port_is_named_as_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = BackgroundServer(_app, "127.0.0.1", port).start(timeout=30)
    assert problem is not None and "port in use" in problem


def test_a_free_port_serves() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = BackgroundServer(_app, "127.0.0.1", port)
    assert server.start(timeout=30) is None
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    server.stop()
