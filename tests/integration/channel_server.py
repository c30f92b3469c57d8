"""The `api` fixture's app served by a real uvicorn on 127.0.0.1, for protocol clients (the
`openai` and `a2a-sdk` clients) that need a real HTTP server.

The TestClient of the `api` fixture already ran the app's lifespan (its background sweepers
run in the TestClient's loop), so uvicorn serves the same app without running it a second
time: two lifespans of one app in one process would share the sweepers' process-wide state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from examples.retail.server import serve_app

from tests.integration.conftest import Api


@contextmanager
def serve_api(api: Api) -> Iterator[str]:
    """The app on a free port until the block ends; yields its base URL."""
    with serve_app(api.client.app, lifespan="off") as url:
        yield url
