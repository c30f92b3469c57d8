"""Model wrappers of a sandbox run: a per-model concurrency limit shared by every conversation of
the process (`ModelLimits`), a tally of what one role (agent, customer, judge) used in one trial
(`TalliedModel`), and the metering attribution of a run's calls (`AttributedModel`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace

from deputy.llm.types import (
    Model,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    Usage,
)


class _Wrapper:
    """A model that passes its name and capabilities through from `inner`."""

    def __init__(self, model: Model) -> None:
        self.inner = model

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities


class LimitedModel(_Wrapper):
    """`model` behind a semaphore: at most the limit's number of requests at once."""

    def __init__(self, model: Model, gate: asyncio.Semaphore) -> None:
        super().__init__(model)
        self._gate = gate

    async def request(self, request: ModelRequest) -> ModelResponse:
        async with self._gate:
            return await self.inner.request(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        async with self._gate:
            async for chunk in self.inner.stream(request):
                yield chunk


class ModelLimits:
    """How many requests each model may have in flight, across every run of this process.
    `per_model` maps a model name (or its provider, e.g. `local`) to a limit; others get
    `default`. A local model on this machine's CPU answers one request at a time anyway, so a
    limit of 1 for `local` keeps the conversations from queueing inside the engine."""

    def __init__(self, default: int = 4, per_model: Mapping[str, int] | None = None) -> None:
        if default < 1 or any(limit < 1 for limit in (per_model or {}).values()):
            raise ValueError("model concurrency limits must be at least 1")
        self.default = default
        self.per_model = dict(per_model or {})
        self._gates: dict[str, asyncio.Semaphore] = {}

    def limit_for(self, name: str) -> int:
        provider = name.split(":", 1)[0]
        return self.per_model.get(name, self.per_model.get(provider, self.default))

    def wrap(self, model: Model) -> Model:
        gate = self._gates.get(model.name)
        if gate is None:
            gate = self._gates[model.name] = asyncio.Semaphore(self.limit_for(model.name))
        return LimitedModel(model, gate)


@dataclass
class Tally:
    calls: int = 0
    usage: Usage = field(default_factory=Usage)


class TalliedModel(_Wrapper):
    """Counts the calls and tokens of one role in one trial; a call that failed counts as a
    call (its tokens are unknown)."""

    def __init__(self, model: Model) -> None:
        super().__init__(model)
        self.tally = Tally()

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.tally.calls += 1
        response = await self.inner.request(request)
        self.tally.usage = self.tally.usage + response.usage
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        self.tally.calls += 1
        async for chunk in self.inner.stream(request):
            if chunk.response is not None:
                self.tally.usage = self.tally.usage + chunk.response.usage
            yield chunk


class AttributedModel(_Wrapper):
    """`model` with `metadata` on every request: a sandbox run's model calls are metered to its
    workspace and agent, the run standing for the conversation (a trial's own conversation is
    in memory only)."""

    def __init__(self, model: Model, metadata: Mapping[str, str]) -> None:
        super().__init__(model)
        self._metadata = dict(metadata)

    def _attributed(self, request: ModelRequest) -> ModelRequest:
        return replace(request, metadata={**request.metadata, **self._metadata})

    async def request(self, request: ModelRequest) -> ModelResponse:
        return await self.inner.request(self._attributed(request))

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        async for chunk in self.inner.stream(self._attributed(request)):
            yield chunk
