"""`LocalModel`: the `Model` protocol on an embedded llama.cpp model.

Messages go through the model's own chat template (llama.cpp applies the template stored in the
GGUF). A `response_schema` becomes a grammar, so the model can only produce JSON that satisfies it;
the decoded value is `ModelResponse.parsed`. Local models have no reliable native tool calling:
the action adapter (`deputy.llm.actions`) turns tools into a schema and sends that instead, so a
request that still carries tools is refused with that advice. Unless asked otherwise the local
model decodes greedily (temperature 0): small models drift at higher temperatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from deputy.llm.errors import ModelError, ModelOutputInvalid
from deputy.llm.local.engine import Generation, LocalEngine, ModelSpec
from deputy.llm.local.grammar import grammar_for_schema
from deputy.llm.types import (
    FinishReason,
    Message,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    Usage,
)

DEFAULT_MAX_TOKENS = 1024
_DONE = object()


class LocalModel:
    """One local model. `prepare` (run in a worker thread) returns the verified weights to
    load, assembling, verifying or downloading them on first use."""

    def __init__(
        self,
        name: str,
        *,
        prepare: Callable[[], ModelSpec],
        engine: LocalEngine,
        context_tokens: int,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        default_temperature: float = 0.0,
    ) -> None:
        self._name = name
        self._prepare = prepare
        self._engine = engine
        self._capabilities = ModelCapabilities(
            native_tools=False, native_json_schema=True, context_tokens=context_tokens
        )
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._capabilities

    @property
    def engine(self) -> LocalEngine:
        return self._engine

    async def request(self, request: ModelRequest) -> ModelResponse:
        started = time.monotonic()
        body = self.chat_body(request)
        spec = await asyncio.to_thread(self._prepare)
        cancel = threading.Event()
        queued = time.monotonic()
        generation = await self._engine.call(
            lambda: self._engine.generate(spec, body, queued_at=queued, cancel=cancel), cancel
        )
        return self._response(request, body, generation, started)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        started = time.monotonic()
        body = self.chat_body(request)
        spec = await asyncio.to_thread(self._prepare)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def on_text(text: str) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, text)
            except RuntimeError:  # the caller's loop is gone: stop generating
                cancel.set()

        queued = time.monotonic()
        future = self._engine.submit(
            lambda: self._engine.generate(
                spec, body, queued_at=queued, cancel=cancel, on_text=on_text
            )
        )
        future.add_done_callback(lambda _: _signal_done(loop, pieces))
        try:
            while (item := await pieces.get()) is not _DONE:
                yield StreamChunk(text=str(item))
            generation = future.result()
            yield StreamChunk(response=self._response(request, body, generation, started))
        finally:
            if not future.done():  # the consumer stopped early or was cancelled
                cancel.set()
                future.cancel()

    # -- translation ---------------------------------------------------------------------------

    def chat_body(self, request: ModelRequest) -> dict[str, Any]:
        """The llama.cpp chat-completions body for `request` (validated before queueing)."""
        if request.tools and request.tool_choice != "none":
            raise ModelOutputInvalid(
                f"{self._name} has no reliable native tool calling; send the tools through the "
                "action adapter (a response schema of actions) instead"
            )
        if not request.messages:
            raise ModelError("a model request needs at least one message")
        max_tokens = request.max_tokens or self._default_max_tokens
        temperature = request.temperature
        body: dict[str, Any] = {
            "messages": [_message(message) for message in request.messages],
            "max_tokens": max(1, max_tokens),
            "temperature": self._default_temperature if temperature is None else temperature,
            "cache_prompt": True,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.response_schema is not None:
            body["grammar"] = grammar_for_schema(request.response_schema)
        return body

    def _response(
        self,
        request: ModelRequest,
        body: dict[str, Any],
        generation: Generation,
        started: float,
    ) -> ModelResponse:
        finish: FinishReason = "length" if generation.finish_reason == "length" else "stop"
        parsed: Any = None
        if request.response_schema is not None:
            parsed = _parse_json(
                self._name, generation.text, finish, request.schema_name, body["max_tokens"]
            )
        return ModelResponse(
            model=self._name,
            text=generation.text,
            parsed=parsed,
            usage=Usage(
                input_tokens=generation.prompt_tokens,
                output_tokens=generation.output_tokens,
                cached_tokens=generation.cached_tokens,
            ),
            finish_reason=finish,
            latency_seconds=time.monotonic() - started,
        )


def _signal_done(loop: asyncio.AbstractEventLoop, pieces: asyncio.Queue[object]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
        loop.call_soon_threadsafe(pieces.put_nowait, _DONE)


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _parse_json(
    name: str, text: str, finish: FinishReason, schema_name: str, max_tokens: int
) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if finish == "length":
            why = (
                f"it stopped at max_tokens={max_tokens} before the "
                "JSON was complete (raise max_tokens or cap string lengths in the schema)"
            )
        else:
            why = f"its output is not valid JSON ({exc})"
        raise ModelOutputInvalid(
            f"{name} could not produce a {schema_name!r} value: {why}",
            details={"finish_reason": finish, "text": text[:2000]},
        ) from exc
