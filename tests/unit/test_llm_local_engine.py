"""The local inference queue and `LocalModel`, on a fake llama.cpp server that streams scripted
chunks: one generation at a time, cancellation, the LRU of loaded models, error mapping, and the
translation between `ModelRequest` and llama.cpp's chat-completions body."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deputy.llm.errors import ModelError, ModelOutputInvalid, ModelUnavailable
from deputy.llm.local import LocalEngine, LocalModel, ModelSpec
from deputy.llm.local.backend import LoadOptions
from deputy.llm.types import Message, Model, ModelRequest, ToolCall, ToolDefinition

pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")


@dataclass
class FakeServer:
    """Streams `pieces` one chunk at a time, like llama.cpp's chat completions with stream=True."""

    name: str
    world: World
    pieces: list[str] = field(default_factory=lambda: ["Hel", "lo", "!"])
    finish: str = "stop"
    pause: threading.Event | None = None  # wait on this before each chunk...
    pause_after: int = 0  # ...once this many chunks were sent
    bodies: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False

    def handle_chat_completions(
        self, body: dict[str, Any], callback: Callable[[Any], bool] | None = None
    ) -> Any:
        assert callback is not None and body["stream"] is True
        self.bodies.append(body)
        self.world.enter()
        try:
            if self.world.error is not None:
                callback({"error": self.world.error})
                return None
            if self.world.raise_value_error:
                raise ValueError(self.world.raise_value_error)
            callback({"choices": [{"delta": {"role": "assistant", "content": None}}]})
            for sent, piece in enumerate(self.pieces):
                if self.pause is not None and sent >= self.pause_after:
                    self.pause.wait(5)
                if callback({"choices": [{"delta": {"content": piece}, "finish_reason": None}]}):
                    self.stopped_early = True
                    return None
            callback({"choices": [{"delta": {}, "finish_reason": self.finish}]})
            callback(
                json.dumps(  # llama.cpp may hand over JSON text; both forms are handled
                    {
                        "choices": [],
                        "usage": {
                            "prompt_tokens": 12,
                            "completion_tokens": len(self.pieces),
                            "prompt_tokens_details": {"cached_tokens": 4},
                        },
                        "timings": {"prompt_ms": 30.0, "predicted_ms": 60.0},
                    }
                )
            )
            return None
        finally:
            self.world.leave()


@dataclass
class World:
    """Everything the fake servers share: which are alive, how many run at once."""

    servers: dict[str, FakeServer] = field(default_factory=dict)
    alive: set[str] = field(default_factory=set)
    loads: list[str] = field(default_factory=list)
    active: int = 0
    most_active: int = 0
    error: dict[str, Any] | None = None
    raise_value_error: str | None = None
    fail_load: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.01)  # give a second generation every chance to overlap, were it allowed

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def load(self, options: LoadOptions) -> FakeServer:
        if self.fail_load:
            raise RuntimeError("Failed to init server, please check the input params.")
        name = options.path.stem
        self.loads.append(name)
        self.alive.add(name)
        server = self.servers.setdefault(name, FakeServer(name, self))
        return _Tracked(server, self)  # type: ignore[return-value]


class _Tracked:
    """Marks its model dead when the engine drops it (as xllamacpp's destructor frees it)."""

    def __init__(self, server: FakeServer, world: World) -> None:
        self.server = server
        self.world = world

    def handle_chat_completions(
        self, body: dict[str, Any], callback: Callable[[Any], bool] | None = None
    ) -> Any:
        return self.server.handle_chat_completions(body, callback)

    def __del__(self) -> None:
        self.world.alive.discard(self.server.name)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def engine(world: World) -> Iterator[LocalEngine]:
    engine = LocalEngine(loader=world.load, max_loaded=2, memory_budget_bytes=10_000)
    yield engine
    engine.close()


def spec(name: str, size: int = 1000) -> ModelSpec:
    return ModelSpec(
        f"local:{name}",
        LoadOptions(path=Path(f"/models/{name}.gguf"), context_tokens=512, threads=1),
        estimated_bytes=size,
    )


def model(engine: LocalEngine, name: str = "fake", size: int = 1000) -> LocalModel:
    return LocalModel(
        f"local:{name}", prepare=lambda: spec(name, size), engine=engine, context_tokens=512
    )


def ask(text: str = "Hi", **options: Any) -> ModelRequest:
    return ModelRequest(messages=(Message.user(text),), **options)


def test_a_local_model_is_a_model_without_native_tools(engine: LocalEngine) -> None:
    local = model(engine)
    assert isinstance(local, Model)
    assert local.capabilities.native_tools is False
    assert local.capabilities.native_json_schema is True
    assert local.capabilities.context_tokens == 512


def test_a_request_returns_text_usage_and_finish_reason(engine: LocalEngine) -> None:
    response = asyncio.run(model(engine).request(ask()))
    assert response.model == "local:fake"
    assert response.text == "Hello!"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert response.usage.cached_tokens == 4
    assert response.finish_reason == "stop"
    assert response.latency_seconds > 0
    (record,) = engine.history()
    assert (record.outcome, record.prompt_seconds, record.generation_seconds) == ("ok", 0.03, 0.06)


def test_generations_never_overlap(engine: LocalEngine, world: World) -> None:
    async def many() -> None:
        await asyncio.gather(*(model(engine).request(ask(str(i))) for i in range(5)))

    asyncio.run(many())
    records = sorted(engine.history(), key=lambda r: r.started_at)
    assert len(records) == 5
    assert world.most_active == 1
    for earlier, later in itertools.pairwise(records):
        assert earlier.finished_at <= later.started_at
    assert max(r.queued_at for r in records) < records[-1].started_at  # they really queued


def test_a_caller_that_gives_up_stops_its_running_generation(
    engine: LocalEngine, world: World
) -> None:
    world.servers["fake"] = server = FakeServer("fake", world, pieces=["a"] * 50)
    server.pause = gate = threading.Event()

    async def give_up() -> None:
        task = asyncio.create_task(model(engine).request(ask()))
        while not server.bodies:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(give_up())
    gate.set()
    engine.loaded()  # a queue round trip: the cancelled job has finished
    assert server.stopped_early
    assert [r.outcome for r in engine.history()] == ["cancelled"]


def test_a_queued_caller_that_gives_up_never_runs(engine: LocalEngine, world: World) -> None:
    world.servers["fake"] = server = FakeServer("fake", world)
    server.pause = gate = threading.Event()

    async def scenario() -> str:
        first = asyncio.create_task(model(engine).request(ask("first")))
        while not server.bodies:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(model(engine).request(ask("second")))
        while engine.queue_depth == 0:
            await asyncio.sleep(0.01)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert engine.queue_depth == 0
        gate.set()
        return (await first).text

    assert asyncio.run(scenario()) == "Hello!"
    assert [body["messages"][0]["content"] for body in server.bodies] == ["first"]
    assert [r.outcome for r in engine.history()] == ["ok"]


def test_streaming_yields_text_then_the_final_response(engine: LocalEngine) -> None:
    async def collect() -> list[Any]:
        return [chunk async for chunk in model(engine).stream(ask(response_schema=None))]

    chunks = asyncio.run(collect())
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo", "!"]
    assert all(c.response is None for c in chunks[:-1])
    final = chunks[-1].response
    assert final is not None and final.text == "Hello!" and final.usage.output_tokens == 3


def test_a_consumer_that_stops_reading_stops_the_stream(engine: LocalEngine, world: World) -> None:
    world.servers["fake"] = server = FakeServer("fake", world, pieces=["x"] * 200)
    server.pause, server.pause_after = (gate := threading.Event()), 2

    async def first_two() -> list[str]:
        seen = []
        stream = model(engine).stream(ask())
        async for chunk in stream:
            seen.append(chunk.text)
            if len(seen) == 2:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return seen

    assert asyncio.run(first_two()) == ["x", "x"]
    gate.set()
    engine.loaded()  # a queue round trip: the stopped job has finished
    assert server.stopped_early
    assert [r.outcome for r in engine.history()] == ["cancelled"]


def test_schema_requests_get_a_compact_grammar_and_parsed_json(
    engine: LocalEngine, world: World
) -> None:
    world.servers["fake"] = server = FakeServer("fake", world, pieces=['{"ok":', "true}"])
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}

    response = asyncio.run(model(engine).request(ask(response_schema=schema)))

    assert response.parsed == {"ok": True}
    grammar = server.bodies[0]["grammar"]
    assert grammar.startswith("%llguidance")
    assert '"whitespace_flexible":false' in grammar


def test_json_cut_off_by_max_tokens_is_reported(engine: LocalEngine, world: World) -> None:
    world.servers["fake"] = FakeServer("fake", world, pieces=['{"ok":'], finish="length")
    request = ask(response_schema={"type": "object"}, max_tokens=3, schema_name="verdict")
    with pytest.raises(ModelOutputInvalid, match=r"'verdict'.*max_tokens=3") as caught:
        asyncio.run(model(engine).request(request))
    assert caught.value.details["finish_reason"] == "length"


def test_the_request_body_follows_the_request(engine: LocalEngine) -> None:
    call = ToolCall("c1", "get_order", {"order_id": "#W1"})
    request = ModelRequest(
        messages=(
            Message.system("Be brief."),
            Message.user("Where is #W1?"),
            Message.assistant("", (call,)),
            Message.tool_result("c1", '{"status": "shipped"}'),
        ),
        max_tokens=64,
        temperature=0.7,
        seed=11,
        stop=("\n\n",),
    )
    body = model(engine).chat_body(request)
    assert body["messages"][2]["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "get_order", "arguments": '{"order_id": "#W1"}'},
        }
    ]
    assert body["messages"][3] == {
        "role": "tool",
        "content": '{"status": "shipped"}',
        "tool_call_id": "c1",
    }
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (64, 0.7, ["\n\n"])
    assert body["seed"] == 11
    assert "grammar" not in body
    defaults = model(engine).chat_body(ask())
    assert (defaults["temperature"], defaults["max_tokens"]) == (0.0, 1024)
    assert "seed" not in defaults


def test_native_tools_are_refused_with_advice(engine: LocalEngine) -> None:
    tool = ToolDefinition("get_order", "Look up an order", {"type": "object"})
    with pytest.raises(ModelOutputInvalid, match="action adapter"):
        asyncio.run(model(engine).request(ask(tools=(tool,))))
    assert model(engine).chat_body(ask(tools=(tool,), tool_choice="none"))["messages"]
    assert engine.history() == []


def test_llama_cpp_errors_become_model_errors(engine: LocalEngine, world: World) -> None:
    world.error = {
        "code": 400,
        "message": "request (9000 tokens) exceeds the available context size (512 tokens)",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 9000,
        "n_ctx": 512,
    }
    with pytest.raises(ModelError, match="too long") as caught:
        asyncio.run(model(engine).request(ask()))
    assert caught.value.details == {"n_prompt_tokens": 9000, "n_ctx": 512}
    world.error = None
    world.raise_value_error = "Automatic parser generation failed: JSON schema error"
    with pytest.raises(ModelOutputInvalid, match="cannot decode under this schema"):
        asyncio.run(model(engine).request(ask()))
    assert [r.outcome for r in engine.history()] == ["error", "error"]


def test_a_model_that_cannot_load_is_unavailable(engine: LocalEngine, world: World) -> None:
    world.fail_load = True
    with pytest.raises(ModelUnavailable, match="could not load local:fake"):
        asyncio.run(model(engine).request(ask()))


def test_loaded_models_are_kept_in_a_small_lru(engine: LocalEngine, world: World) -> None:
    async def use(*names: str) -> None:
        for name in names:
            await model(engine, name).request(ask())

    asyncio.run(use("a", "b", "a"))
    assert world.loads == ["a", "b"]  # "a" stayed loaded
    asyncio.run(use("c"))  # max_loaded=2: the least recently used ("b") goes
    assert [s.name for s in engine.loaded()] == ["local:a", "local:c"]
    assert world.alive == {"a", "c"}
    asyncio.run(model(engine, "huge", size=9_500).request(ask()))  # over budget with others
    assert [s.name for s in engine.loaded()] == ["local:huge"]
    assert world.alive == {"huge"}
    assert [load.model for load in engine.loads()] == [
        "local:a",
        "local:b",
        "local:c",
        "local:huge",
    ]
    engine.unload({"local:huge"})
    assert engine.loaded() == [] and world.alive == set()


def test_a_closed_engine_refuses_work(world: World) -> None:
    engine = LocalEngine(loader=world.load)
    asyncio.run(model(engine).request(ask()))
    engine.close()
    assert world.alive == set()
    with pytest.raises(ModelUnavailable, match="shut down"):
        asyncio.run(model(engine).request(ask()))
    engine.close()  # idempotent


def test_the_shared_engine_is_one_per_process() -> None:
    assert LocalEngine.shared() is LocalEngine.shared()


def test_threads_default_to_physical_cores() -> None:
    from deputy.llm.local.hardware import physical_cores, total_memory_bytes, usable_cpus

    assert 1 <= physical_cores() <= usable_cpus()
    assert total_memory_bytes() > 0
    default = LocalEngine(loader=World().load)
    try:
        assert default.memory_budget_bytes == total_memory_bytes() // 2
    finally:
        default.close()
