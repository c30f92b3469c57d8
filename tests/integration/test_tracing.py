"""Tracing is off unless configured; with DEPUTY_OTLP_ENDPOINT set, a real `deputy serve`
exports request spans (named by route template) to an OTLP/HTTP receiver, and one customer
message on a channel is one trace: the webhook's request span, the agent's `invoke_agent` span,
its `chat` and `execute_tool` spans and the reply's `send` span, with the GenAI attributes and no
content unless DEPUTY_TRACE_CONTENT=true; the log line written inside the turn carries the
trace and the workspace."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.retail.server import serve_app
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.integration.messaging_platforms import connection_body, fake_platforms, webhook
from tests.integration.scripted_openai import scripted_openai
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
        workspace = httpx.get(f"{server.url}/v1/workspace", headers=headers).json()["id"]
    request = one(exported_spans(receiver), "GET /v1/agents/{agent_id}")
    assert request.attributes["deputy.workspace.id"] == workspace
    assert request.attributes["http.response.status_code"] == 404


# ---- one customer message, one trace ---------------------------------------------------------

CUSTOMER = "CUSTOMERMARK where is my parcel?"
ARGUMENT = "ARGMARK-77"
RESULT = "RESULTMARK shipped on Monday"
REPLY = "REPLYMARK: your parcel has shipped."
CONTENT = ("CUSTOMERMARK", "ARGMARK", "RESULTMARK", "REPLYMARK")
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def decide(messages: list[dict[str, Any]], tools: list[str]) -> Any:
    if any(message["role"] == "tool" for message in messages):
        return REPLY
    return ("lookup_order", {"order_id": ARGUMENT})


@contextmanager
def order_service() -> Iterator[str]:
    async def lookup(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"order_id": body.get("order_id"), "status": RESULT})

    with serve_app(Starlette(routes=[Route("/orders", lookup, methods=["POST"])])) as url:
        yield url


def spec(orders_url: str) -> dict[str, Any]:
    return {
        "name": "Parcel helper",
        "goal": "Tell customers where their parcels are.",
        "mode": "reasoning",
        "guardrails": {"preset": "minimal"},
        "tools": [
            {
                "name": "lookup_order",
                "description": "Find an order by its id.",
                "effect": "read",
                "binding": {"kind": "http", "method": "POST", "url": f"{orders_url}/orders"},
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            }
        ],
    }


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class Exported:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    error: bool


def exported_spans(receiver: Receiver) -> list[Exported]:
    found: list[Exported] = []
    for path, body in list(receiver.bodies):
        if path != "/v1/traces":
            continue
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    found.append(
                        Exported(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            error=span.status.code == span.status.STATUS_CODE_ERROR,
                        )
                    )
    return found


def one(spans: list[Exported], name: str) -> Exported:
    named = [span for span in spans if span.name == name]
    assert len(named) == 1, f"{name}: {[span.name for span in spans]}"
    return named[0]


@pytest.mark.parametrize("content", [False, True], ids=["redacted", "with-content"])
def test_a_channel_message_is_one_trace_from_webhook_to_send(
    tmp_path: Path, receiver: Receiver, content: bool
) -> None:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        DEPUTY_TRACE_CONTENT="true" if content else "false",
    )
    with (
        contextlib.ExitStack() as stack,
        order_service() as orders_url,
        scripted_openai(decide) as (model_url, _model),
        fake_platforms() as platforms,
        deputy_server("serve", env, tmp_path / "serve.log") as server,
    ):
        key = server.read_until(KEY, START_TIMEOUT).group(0)
        server.wait_healthy()
        api = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        stack.callback(api.close)

        def call(method: str, path: str, body: Any) -> Any:
            response = api.request(method, path, json=body)
            assert response.status_code in (200, 201), response.text
            return response.json()

        call("POST", "/v1/model-endpoints", {"name": "scripted", "base_url": model_url})
        agent = call("POST", "/v1/agents", {"name": "parcels"})["id"]
        call("POST", f"/v1/agents/{agent}/versions", {"spec": spec(orders_url)})
        call("PATCH", f"/v1/agents/{agent}", {"model": "openai-compatible:scripted/m"})
        call("POST", f"/v1/agents/{agent}/deployments", {"version": 1})
        body = connection_body("telegram", agent, platforms)
        connection = call("POST", "/v1/channel-connections", body)
        delivery = webhook("telegram", CUSTOMER, thread="ada", delivery_id="d-1")
        delivered = httpx.post(
            f"{server.url}/v1/channels/{connection['id']}/webhook",
            content=delivery.body,
            headers={**delivery.headers, "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert delivered.status_code == 200, delivered.text
        platforms.wait_for_text(REPLY, timeout=60)
        workspace = api.get("/v1/workspace").json()["id"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            spans = exported_spans(receiver)
            if any(span.name == "send telegram" for span in spans):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no send span: {[span.name for span in exported_spans(receiver)]}")
        log_lines = (tmp_path / "serve.log").read_text().splitlines()

    request = one(spans, "POST /v1/channels/{connection_id}/webhook")
    agent_span = one(spans, "invoke_agent Parcel helper")
    tool = one(spans, "execute_tool lookup_order")
    send = one(spans, "send telegram")
    chats = [span for span in spans if span.name == "chat scripted/m"]
    assert len(chats) == 2
    assert request.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert (request.trace_id, request.parent_id) == (CALLER_TRACE, CALLER_SPAN)  # continued
    trace = {span.trace_id for span in (request, agent_span, tool, send, *chats)}
    assert trace == {CALLER_TRACE}
    assert agent_span.parent_id == request.span_id
    assert {span.parent_id for span in (tool, send, *chats)} == {agent_span.span_id}

    conversation = agent_span.attributes["gen_ai.conversation.id"]
    assert conversation.startswith("cnv_")
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.id"] == agent
    assert agent_span.attributes["gen_ai.agent.name"] == "Parcel helper"
    assert agent_span.attributes["gen_ai.request.model"] == "openai-compatible:scripted/m"
    assert agent_span.attributes["gen_ai.usage.input_tokens"] == 20
    assert not agent_span.error
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "lookup_order"
    assert tool.attributes["gen_ai.tool.call.id"].startswith("tcall_")
    assert tool.attributes["deputy.tool.status"] == "succeeded"
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.usage.output_tokens"] == 5
    assert send.attributes["gen_ai.conversation.id"] == conversation
    # (the signed webhook names no workspace until its connection is loaded: its span has none)
    for span in (agent_span, tool, send):
        assert span.attributes["deputy.workspace.id"] == workspace

    exported = b"".join(body for _, body in receiver.bodies)
    if content:
        assert "CUSTOMERMARK" in agent_span.attributes["gen_ai.input.messages"]
        assert "REPLYMARK" in agent_span.attributes["gen_ai.output.messages"]
        assert ARGUMENT in tool.attributes["gen_ai.tool.call.arguments"]
        assert "RESULTMARK" in tool.attributes["gen_ai.tool.call.result"]
        assert "CUSTOMERMARK" in chats[0].attributes["gen_ai.input.messages"]
    else:
        for mark in CONTENT:
            assert mark.encode() not in exported, mark

    answered = [json.loads(line) for line in log_lines if '"agent answered"' in line]
    assert answered, "no log line from inside the turn"
    assert answered[0]["trace_id"] == agent_span.trace_id
    assert answered[0]["workspace_id"] == workspace
