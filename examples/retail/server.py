"""Run an ASGI app (the REST app, or the MCP streamable-HTTP app) with uvicorn in a thread.

    with serve_rest(store, auth) as base_url:          # http://127.0.0.1:<free port>
        httpx.post(f"{base_url}/tools/get_order_details", json={"order_id": "#W2378156"})

Meant for tests and embedding; `python -m examples.retail` runs uvicorn in the foreground.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

from examples.retail.auth import AuthConfig
from examples.retail.store import RetailStore

START_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_app(
    app: Any,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    lifespan: Literal["on", "off"] = "on",
) -> Iterator[str]:
    """Serve `app` until the block ends; yields the base URL (no trailing slash). `lifespan`
    "off": the app's startup already ran elsewhere (e.g. in a TestClient)."""
    port = port if port is not None else free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)


@contextmanager
def serve_rest(
    store: RetailStore | None = None,
    auth: AuthConfig | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    honour_idempotency_keys: bool = False,
) -> Iterator[str]:
    """The REST backend on a free port; yields its base URL (OpenAPI at `<url>/openapi.json`)."""
    from examples.retail.rest import create_app

    app = create_app(store, auth, honour_idempotency_keys=honour_idempotency_keys)
    with serve_app(app, host, port) as url:
        yield url


@contextmanager
def serve_mcp_http(
    store: RetailStore | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    admin_tools: bool = False,
) -> Iterator[str]:
    """The MCP server over streamable HTTP on a free port; yields the endpoint URL (`.../mcp`)."""
    from examples.retail.mcp_server import MCP_PATH, create_mcp_http_app

    app = create_mcp_http_app(store, host=host, admin_tools=admin_tools)
    with serve_app(app, host, port) as url:
        yield url + MCP_PATH
