"""The `api` fixture's app served by a real uvicorn on 127.0.0.1, for protocol clients (the
`openai` and `a2a-sdk` clients) that need a real HTTP server.

The TestClient of the `api` fixture already ran the app's lifespan (its background sweepers
run in the TestClient's loop), so uvicorn serves the same app without running it a second
time: two lifespans of one app in one process would share the sweepers' process-wide state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.integration.conftest import Api
from tests.processes import free_port

START_TIMEOUT = 30.0


@contextmanager
def serve_api(api: Api) -> Iterator[str]:
    """The app on a free port until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        api.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)
