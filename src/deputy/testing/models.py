"""Fake models for tests, as public API: `ScriptedModel` answers from a queue, `FunctionModel`
lets a callable decide. Both implement `deputy.llm.types.Model`, streaming included, and record
every request they receive."""

from __future__ import annotations

import inspect
import json
import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeAlias

from deputy.llm.types import (
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    ToolCall,
    Usage,
)
from deputy.llm.usage import UsageEvent

FAKE_CAPABILITIES = ModelCapabilities(
    native_tools=True, native_json_schema=True, context_tokens=32_768
)

Scripted: TypeAlias = ModelResponse | str | BaseException
"""A scripted answer: a response, a text reply, or an error to raise."""
Answer: TypeAlias = ModelResponse | str
FunctionAnswer: TypeAlias = Callable[[ModelRequest], Answer | Awaitable[Answer]]


def reply(text: str, *, usage: Usage | None = None) -> ModelResponse:
    """A plain text answer."""
    return ModelResponse(model="", text=text, usage=usage or Usage())


def structured(value: Any, *, usage: Usage | None = None) -> ModelResponse:
    """A JSON answer (for requests with a response schema)."""
    return ModelResponse(model="", text=json.dumps(value), parsed=value, usage=usage or Usage())


def tool_call(
    name: str, arguments: Mapping[str, Any] | None = None, *, id: str | None = None
) -> ModelResponse:
    """An answer that calls one tool."""
    call = ToolCall(id=id or f"call_{name}", name=name, arguments=dict(arguments or {}))
    return ModelResponse(model="", tool_calls=(call,), finish_reason="tool_calls")


class _FakeModel(ABC):
    def __init__(self, name: str, capabilities: ModelCapabilities) -> None:
        self._name = name
        self._capabilities = capabilities
        self.requests: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._capabilities

    @property
    def last_request(self) -> ModelRequest:
        assert self.requests, f"{self._name} received no request"
        return self.requests[-1]

    def _finish(self, answer: Answer) -> ModelResponse:
        response = reply(answer) if isinstance(answer, str) else answer
        return response if response.model else replace(response, model=self._name)

    @abstractmethod
    async def _answer(self, request: ModelRequest) -> ModelResponse: ...

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return await self._answer(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        """The answer's text in word-sized chunks, then the final chunk with the response."""
        self.requests.append(request)
        response = await self._answer(request)
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            yield StreamChunk(text=piece)
        yield StreamChunk(response=response)


class ScriptedModel(_FakeModel):
    """Answers each request with the next scripted item: a `ModelResponse` (its `model` filled
    in when empty), a string (a text reply) or an exception (raised). Running out of answers is
    a test failure (AssertionError); `assert_all_used()` checks nothing was left over."""

    def __init__(
        self,
        answers: Iterable[Scripted] = (),
        *,
        name: str = "test:scripted",
        capabilities: ModelCapabilities = FAKE_CAPABILITIES,
    ) -> None:
        super().__init__(name, capabilities)
        self._queue: deque[Scripted] = deque(answers)

    def add(self, *answers: Scripted) -> ScriptedModel:
        self._queue.extend(answers)
        return self

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def assert_all_used(self) -> None:
        assert not self._queue, (
            f"{self.name} has {len(self._queue)} unused scripted answer(s): {list(self._queue)!r}"
        )

    async def _answer(self, request: ModelRequest) -> ModelResponse:
        if not self._queue:
            raise AssertionError(
                f"{self.name} has no scripted answer left for request #{len(self.requests)}: "
                f"{request.messages[-1] if request.messages else request!r}"
            )
        item = self._queue.popleft()
        if isinstance(item, BaseException):
            raise item
        return self._finish(item)


class FunctionModel(_FakeModel):
    """Answers each request with `function(request)`: a `ModelResponse` or a string, sync or
    async. The function may raise a model error to simulate a failure."""

    def __init__(
        self,
        function: FunctionAnswer,
        *,
        name: str = "test:function",
        capabilities: ModelCapabilities = FAKE_CAPABILITIES,
    ) -> None:
        super().__init__(name, capabilities)
        self._function = function

    async def _answer(self, request: ModelRequest) -> ModelResponse:
        answer = self._function(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return self._finish(answer)


class CollectingUsageSink:
    """A `UsageSink` that keeps every event, for assertions."""

    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)
