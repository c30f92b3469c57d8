"""The Anthropic adapter (pydantic-ai's AnthropicModel under our registry stack) against a fake
Messages API on an httpx2 MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx2
import pytest

from deputy.llm.errors import ModelUnavailable
from deputy.llm.providers import ProviderLimits, ProviderSettings
from deputy.llm.registry import ModelRegistry, ProviderState
from deputy.llm.resilience import ProviderRefused
from deputy.llm.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)
from deputy.testing import CollectingUsageSink

MODEL = "anthropic:claude-test-1"
LOOKUP = ToolDefinition(
    "find_order",
    "Find an order",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)


def message(content: Sequence[dict[str, Any]], stop_reason: str = "end_turn") -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test-1",
            "content": list(content),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 6, "cache_read_input_tokens": 10},
        },
    )


def failure(status: int, kind: str, **headers: str) -> httpx2.Response:
    body = {"type": "error", "error": {"type": kind, "message": kind}}
    return httpx2.Response(status, json=body, headers=headers)


def sse(events: Sequence[dict[str, Any]]) -> httpx2.Response:
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return httpx2.Response(
        200, content=text.encode(), headers={"content-type": "text/event-stream"}
    )


class FakeAnthropic:
    def __init__(self, *replies: httpx2.Response) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/messages"
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        return self.replies.pop(0)


def run(
    server: FakeAnthropic,
    scenario: Callable[[ModelRegistry], Awaitable[Any]],
    sleeps: list[float] | None = None,
    sink: CollectingUsageSink | None = None,
) -> Any:
    async def sleep(seconds: float) -> None:
        (sleeps if sleeps is not None else []).append(seconds)

    async def main() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(server)) as client:
            settings = ProviderSettings(
                anthropic_api_key="sk-ant-test",  # type: ignore[arg-type]
                anthropic_base_url="http://127.0.0.1:9",
                limits={"anthropic": ProviderLimits(max_attempts=3)},
            )
            registry = ModelRegistry(
                settings, state=ProviderState(http_client=client), sleep=sleep, usage_sink=sink
            )
            return await scenario(registry)

    return asyncio.run(main())


def test_text_and_tool_use_come_back_translated() -> None:
    server = FakeAnthropic(
        message(
            [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "find_order",
                    "input": {"order_id": "#W1"},
                },
            ],
            stop_reason="tool_use",
        )
    )
    sink = CollectingUsageSink()

    async def scenario(registry: ModelRegistry) -> ModelResponse:
        request = ModelRequest(
            messages=(Message.system("You help shoppers."), Message.user("Where is #W1?")),
            tools=(LOOKUP,),
            max_tokens=100,
        )
        return await registry.get(MODEL).request(request)

    response = run(server, scenario, sink=sink)
    assert response.text == "Let me look."
    assert response.tool_calls == (ToolCall("toolu_1", "find_order", {"order_id": "#W1"}),)
    assert response.finish_reason == "tool_calls"
    assert response.usage.input_tokens == 30  # 20 fresh + 10 read from the cache
    assert response.usage.cached_tokens == 10
    (body,) = server.bodies
    assert body["model"] == "claude-test-1"
    assert body["max_tokens"] == 100
    assert "You help shoppers." in json.dumps(body["system"])
    assert body["tools"][0]["name"] == "find_order"
    assert body["tools"][0]["input_schema"]["required"] == ["order_id"]
    sent = server.headers[0]
    assert "sk-ant-test" in sent.get("x-api-key", "") + sent.get("authorization", "")
    assert sink.events[0].provider == "anthropic"


def test_tool_results_are_sent_as_tool_result_blocks() -> None:
    server = FakeAnthropic(message([{"type": "text", "text": "It shipped."}]))
    call = ToolCall("toolu_1", "find_order", {"order_id": "#W1"})

    async def scenario(registry: ModelRegistry) -> ModelResponse:
        request = ModelRequest(
            messages=(
                Message.user("Where is #W1?"),
                Message.assistant(tool_calls=(call,)),
                Message.tool_result("toolu_1", "shipped yesterday"),
            ),
            tools=(LOOKUP,),
        )
        return await registry.get(MODEL).request(request)

    assert run(server, scenario).text == "It shipped."
    messages = server.bodies[0]["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"][0] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "find_order",
        "input": {"order_id": "#W1"},
    }
    result = messages[2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == "toolu_1"
    assert "shipped yesterday" in json.dumps(result["content"])


def test_overloaded_and_rate_limited_are_retried() -> None:
    server = FakeAnthropic(
        failure(529, "overloaded_error"),
        failure(429, "rate_limit_error", **{"retry-after": "4"}),
        message([{"type": "text", "text": "ok"}]),
    )
    sleeps: list[float] = []

    async def scenario(registry: ModelRegistry) -> ModelResponse:
        return await registry.get(MODEL).request(ModelRequest(messages=(Message.user("hi"),)))

    assert run(server, scenario, sleeps=sleeps).text == "ok"
    assert len(server.bodies) == 3
    assert sleeps[1] == 4.0


def test_authentication_failure_is_refused_without_retry() -> None:
    server = FakeAnthropic(failure(401, "authentication_error"))

    async def scenario(registry: ModelRegistry) -> ModelResponse:
        return await registry.get(MODEL).request(ModelRequest(messages=(Message.user("hi"),)))

    with pytest.raises(ProviderRefused):
        run(server, scenario)
    assert len(server.bodies) == 1


def test_server_errors_run_out_into_model_unavailable() -> None:
    server = FakeAnthropic(*(failure(500, "api_error") for _ in range(3)))

    async def scenario(registry: ModelRegistry) -> ModelResponse:
        return await registry.get(MODEL).request(ModelRequest(messages=(Message.user("hi"),)))

    with pytest.raises(ModelUnavailable):
        run(server, scenario)
    assert len(server.bodies) == 3


def test_streaming() -> None:
    server = FakeAnthropic(
        sse(
            [
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "model": "claude-test-1",
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 9, "output_tokens": 1},
                    },
                },
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hel"},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "lo"},
                },
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 4},
                },
                {"type": "message_stop"},
            ]
        )
    )

    async def scenario(registry: ModelRegistry) -> list[StreamChunk]:
        request = ModelRequest(messages=(Message.user("hi"),))
        return [chunk async for chunk in registry.get(MODEL).stream(request)]

    chunks = run(server, scenario)
    assert "".join(c.text for c in chunks) == "Hello"
    final = chunks[-1].response
    assert final is not None
    assert final.text == "Hello"
    assert final.usage.output_tokens == 4
    assert final.finish_reason == "stop"
    assert server.bodies[0]["stream"] is True
