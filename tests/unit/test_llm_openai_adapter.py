"""The OpenAI adapter (pydantic-ai's OpenAIChatModel under our registry stack) against a fake
OpenAI server on an httpx2 MockTransport: translation both ways, streaming, retries, circuit
breaker, concurrency limit, usage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from deputy.llm.errors import ModelError, ModelOutputInvalid, ModelUnavailable
from deputy.llm.providers import ProviderLimits, ProviderSettings
from deputy.llm.registry import ModelRegistry, ProviderState
from deputy.llm.resilience import CircuitOpen, ProviderRefused
from deputy.llm.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
    ToolDefinition,
)
from deputy.llm.usage import Price, PriceTable
from deputy.testing import CollectingUsageSink

BASE_URL = "http://127.0.0.1:9/v1"
WEATHER = ToolDefinition(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

Reply = httpx2.Response | Callable[[httpx2.Request], Awaitable[httpx2.Response]]


def completion(
    content: str | None = "Hello!",
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    finish_reason: str = "stop",
    usage: tuple[int, int, int] = (12, 5, 0),
) -> httpx2.Response:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    prompt, completion_tokens, cached = usage
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    )


def error(status: int, message: str = "error", **headers: str) -> httpx2.Response:
    body = {"error": {"message": message, "type": "server_error", "code": None}}
    return httpx2.Response(status, json=body, headers=headers)


def sse(chunks: Sequence[dict[str, Any]]) -> httpx2.Response:
    text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return httpx2.Response(
        200, content=text.encode(), headers={"content-type": "text/event-stream"}
    )


class FakeOpenAI:
    """Answers /chat/completions from a queue and keeps every request body."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/chat/completions"
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        assert self.replies, "the fake server has no reply left"
        reply = self.replies.pop(0)
        if isinstance(reply, httpx2.Response):
            return reply
        return await reply(request)


class Harness:
    def __init__(self, server: FakeOpenAI, **limits: Any) -> None:
        self.server = server
        self.sleeps: list[float] = []
        self.sink = CollectingUsageSink()
        self.client = httpx2.AsyncClient(transport=httpx2.MockTransport(server))
        settings = ProviderSettings(
            openai_api_key="sk-test",  # type: ignore[arg-type]
            openai_base_url=BASE_URL,
            limits={"openai": ProviderLimits(**limits)},
            prices=PriceTable(
                prices={
                    "openai:gpt-4o": Price(
                        input_per_million=Decimal(2), output_per_million=Decimal(8)
                    )
                }
            ),
        )
        self.registry = ModelRegistry(
            settings,
            usage_sink=self.sink,
            state=ProviderState(http_client=self.client),
            sleep=self._sleep,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def run(self, scenario: Callable[[ModelRegistry], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            try:
                return await scenario(self.registry)
            finally:
                await self.registry.aclose()
                await self.client.aclose()

        return asyncio.run(main())

    def request(self, request: ModelRequest, name: str = "openai:gpt-4o") -> ModelResponse:
        async def go(registry: ModelRegistry) -> ModelResponse:
            return await registry.get(name).request(request)

        result: ModelResponse = self.run(go)
        return result


def ask(text: str = "Hi", **kwargs: Any) -> ModelRequest:
    return ModelRequest(messages=(Message.system("Be brief."), Message.user(text)), **kwargs)


def test_free_text_request_and_response() -> None:
    server = FakeOpenAI(completion("Hello!", usage=(12, 5, 4)))
    harness = Harness(server)
    response = harness.request(ask(max_tokens=20, temperature=0.5, seed=7, stop=("END",)))
    assert response.text == "Hello!"
    assert response.model == "openai:gpt-4o"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 5)
    assert response.usage.cached_tokens == 4
    assert response.finish_reason == "stop"
    (body,) = server.bodies
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert body["max_completion_tokens"] == 20
    assert body["temperature"] == 0.5
    assert body["seed"] == 7
    assert body["stop"] == ["END"]
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    (event,) = harness.sink.events
    assert event.cost == (12 * Decimal(2) + 5 * Decimal(8)) / 1_000_000


def test_tool_calls_translate_both_ways() -> None:
    server = FakeOpenAI(
        completion(
            None,
            tool_calls=[
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
            finish_reason="tool_calls",
        ),
        completion("It is sunny in Paris."),
    )
    harness = Harness(server)

    async def scenario(registry: ModelRegistry) -> tuple[ModelResponse, ModelResponse]:
        model = registry.get("openai:gpt-4o")
        first = await model.request(ask("Weather in Paris?", tools=(WEATHER,)))
        history = (
            *ask("Weather in Paris?").messages,
            Message.assistant(tool_calls=first.tool_calls),
            Message.tool_result(first.tool_calls[0].id, "sunny, 21C"),
        )
        second = await model.request(ModelRequest(messages=history, tools=(WEATHER,)))
        return first, second

    first, second = harness.run(scenario)
    assert first.tool_calls == (ToolCall("call_abc", "get_weather", {"city": "Paris"}),)
    assert first.finish_reason == "tool_calls"
    assert second.text == "It is sunny in Paris."

    sent_tools = server.bodies[0]["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"
    assert sent_tools[0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert server.bodies[0]["tool_choice"] == "auto"
    assistant, tool = server.bodies[1]["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "call_abc"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert tool == {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"}


def test_required_tool_choice_is_sent() -> None:
    server = FakeOpenAI(
        completion(
            None,
            tool_calls=[
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        )
    )
    Harness(server).request(ask(tools=(WEATHER,), tool_choice="required"))
    assert server.bodies[0]["tool_choice"] == "required"


def test_native_json_schema_output() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    server = FakeOpenAI(completion('{"city": "Paris"}'))
    response = Harness(server).request(
        ask("Capital of France?", response_schema=schema, schema_name="capital")
    )
    assert response.parsed == {"city": "Paris"}
    response_format = server.bodies[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "capital"
    sent_schema = response_format["json_schema"]["schema"]
    assert sent_schema["properties"]["city"]["maxLength"] == 2000  # capped
    assert server.bodies[0]["max_completion_tokens"] == 1024  # default token cap


def test_invalid_structured_reply_is_repaired_through_the_adapter() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    server = FakeOpenAI(completion('{"n": "three"}'), completion('{"n": 3}'))
    harness = Harness(server)
    response = harness.request(ask(response_schema=schema))
    assert response.parsed == {"n": 3}
    repair = server.bodies[1]["messages"][-1]
    assert repair["role"] == "user"
    assert "$.n" in repair["content"]
    assert len(harness.sink.events) == 2  # each provider call is metered


def test_streaming_text_and_final_usage() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    server = FakeOpenAI(
        sse(
            [
                chunk({"role": "assistant", "content": "Hel"}),
                chunk({"content": "lo"}, "stop"),
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "gpt-4o",
                    "choices": [],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
                },
            ]
        )
    )
    harness = Harness(server)

    async def scenario(registry: ModelRegistry) -> list[StreamChunk]:
        return [c async for c in registry.get("openai:gpt-4o").stream(ask())]

    chunks = harness.run(scenario)
    assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
    final = chunks[-1].response
    assert final is not None
    assert final.text == "Hello"
    assert final.usage.input_tokens == 7
    assert server.bodies[0]["stream"] is True
    (event,) = harness.sink.events
    assert event.streamed
    assert event.output_tokens == 2


def test_429_is_retried_after_the_retry_after_header() -> None:
    server = FakeOpenAI(error(429, "rate limited", **{"retry-after": "3"}), completion("ok"))
    harness = Harness(server)
    assert harness.request(ask()).text == "ok"
    assert len(server.bodies) == 2
    assert harness.sleeps == [3.0]
    (event,) = harness.sink.events
    assert event.outcome == "ok"


def test_5xx_and_connection_errors_are_retried_with_backoff() -> None:
    async def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    server = FakeOpenAI(error(500), refuse, error(503), completion("ok"))
    harness = Harness(server, max_attempts=4, backoff_base_seconds=1, backoff_max_seconds=8)
    assert harness.request(ask()).text == "ok"
    assert len(server.bodies) == 4
    # retry n waits between d/2 and d, d = 1s * 2**(n-1)
    for delay, ceiling in zip(harness.sleeps, (1, 2, 4), strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_retries_run_out_into_model_unavailable() -> None:
    server = FakeOpenAI(error(502), error(502), error(502))
    harness = Harness(server, max_attempts=3)
    with pytest.raises(ModelUnavailable, match="after 3 attempt"):
        harness.request(ask())
    (event,) = harness.sink.events
    assert event.outcome == "unavailable"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, ProviderRefused), (404, ProviderRefused), (400, ModelError), (422, ModelError)],
)
def test_4xx_is_never_retried(status: int, expected: type[Exception]) -> None:
    server = FakeOpenAI(error(status, "nope"))
    harness = Harness(server)
    with pytest.raises(expected):
        harness.request(ask())
    assert len(server.bodies) == 1
    assert harness.sleeps == []


def test_circuit_opens_after_consecutive_failures() -> None:
    server = FakeOpenAI(error(503), error(503))
    harness = Harness(server, max_attempts=1, breaker_failures=2, breaker_cool_down_seconds=60)

    async def scenario(registry: ModelRegistry) -> list[str]:
        outcomes = []
        for _ in range(3):
            try:
                await registry.get("openai:gpt-4o").request(ask())
            except ModelUnavailable as failure:
                outcomes.append(type(failure).__name__)
        return outcomes

    assert harness.run(scenario) == ["ModelUnavailable", "ModelUnavailable", "CircuitOpen"]
    assert len(server.bodies) == 2  # the open circuit sent nothing


def test_circuit_is_shared_by_registries_derived_for_other_workspaces() -> None:
    server = FakeOpenAI(error(503))
    harness = Harness(server, max_attempts=1, breaker_failures=1)

    async def scenario(registry: ModelRegistry) -> None:
        with pytest.raises(ModelUnavailable):
            await registry.get("openai:gpt-4o").request(ask())
        other = registry.derive(registry.settings.overlay({"capture_content": True}))
        with pytest.raises(CircuitOpen):
            await other.get("openai:gpt-4o").request(ask())
        # another key is another account: its circuit is its own
        third = registry.derive(registry.settings.overlay({"openai_api_key": "sk-other"}))
        server.replies.append(completion("fine"))
        assert (await third.get("openai:gpt-4o").request(ask())).text == "fine"

    harness.run(scenario)


def test_concurrency_limit_per_provider() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return completion("ok")

    server = FakeOpenAI(*([slow] * 5))
    harness = Harness(server, concurrency=2)

    async def scenario(registry: ModelRegistry) -> list[str]:
        models = [registry.get("openai:gpt-4o"), registry.get("openai:gpt-4o-mini")]
        calls = [models[i % 2].request(ask()) for i in range(5)]
        return [r.text for r in await asyncio.gather(*calls)]

    assert harness.run(scenario) == ["ok"] * 5
    assert peak == 2


def test_tool_arguments_that_are_not_json_are_invalid_output() -> None:
    bad = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{not json"},
    }
    server = FakeOpenAI(completion(None, tool_calls=[bad]))
    with pytest.raises(ModelOutputInvalid, match="get_weather"):
        Harness(server).request(ask(tools=(WEATHER,)))
