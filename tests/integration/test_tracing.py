"""Tracing is off unless configured; with DEPUTY_OTLP_ENDPOINT set, a real `deputy serve`
exports request spans (named by route template) to an OTLP/HTTP receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.processes import KEY, START_TIMEOUT, base_env, deputy_server

pytestmark = pytest.mark.integration


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[tuple[str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_reach_the_configured_otlp_endpoint(tmp_path: Path, receiver: Receiver) -> None:
    env = base_env(tmp_path)
    env["DEPUTY_DATA_DIR"] = str(tmp_path / "data")
    env["DEPUTY_OTLP_ENDPOINT"] = receiver.url
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    with deputy_server("serve", env, tmp_path / "serve.log") as server:
        key = server.read_until(KEY, START_TIMEOUT).group(0)
        server.wait_healthy()
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{server.url}/v1/agents/agt_unknown", headers=headers).status_code == 404
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            exported = b"".join(body for path, body in receiver.bodies if path == "/v1/traces")
            if b"GET /v1/agents/{agent_id}" in exported:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no span for the request was exported: {receiver.bodies!r}")
        assert b"GET /v1/agents/agt_unknown" not in exported  # named by template, not raw path
        assert b"deputy" in exported  # service.name resource attribute
