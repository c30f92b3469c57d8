"""Keeping model calls alive: per-call timeouts, retries with exponential backoff and jitter (only
on failures that waiting can fix, honouring Retry-After), a per-provider concurrency limit, a
circuit breaker per provider, and a fallback chain. Every wrapper is itself a `Model`.

Failures leave as `ModelUnavailable` (with `retry_after` when known) or the inner model's own
`ModelError`; a caller turns either into a handoff."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from deputy.domain.errors import DeputyError
from deputy.llm.errors import ModelError, ModelNotInstalled, ModelUnavailable
from deputy.llm.types import (
    Model,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
CircuitState = Literal["closed", "open", "half_open"]


class ProviderRefused(ModelUnavailable):
    """The provider refused us for a reason that waiting will not fix (credentials, quota, an
    unknown model or deployment). Never retried; a fallback chain moves on to its next model."""


class CircuitOpen(ModelUnavailable):
    """The provider's circuit is open after repeated failures; `retry_after`: the cool-down left."""


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later can succeed: timeouts, connection failures, 429, 5xx."""
    return isinstance(error, ModelUnavailable) and not isinstance(
        error, ProviderRefused | ModelNotInstalled | CircuitOpen
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first call. The delay before retry n (1-based) is drawn from
    [d/2, d] with d = min(max_delay, base_delay * 2**(n-1)), and is at least the provider's
    Retry-After. A Retry-After longer than `max_retry_after` is not waited for: the call fails at
    once with that `retry_after`, so the caller can fall back or hand off instead of hanging."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive transient failures; after `cool_down` seconds
    lets one trial call through (half-open): success closes it, failure opens it again."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cool_down: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cool_down:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Admit a call or raise CircuitOpen."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        assert self._opened_at is not None
        remaining = max(0.0, self.cool_down - (self._clock() - self._opened_at))
        raise CircuitOpen(
            f"circuit for {self.name} is open after {self._failures} consecutive failures",
            retry_after=remaining or self.cool_down,
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._trial_in_flight or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release_trial(self) -> None:
        """A trial call ended without saying anything about the provider's health."""
        self._trial_in_flight = False


class ConcurrencyLimiter:
    """At most `limit` calls in flight at once (per provider); others wait their turn."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self._semaphore = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1


class ResilientModel:
    """Timeout, retry, circuit breaker and concurrency limit around one model.

    The timeout bounds each attempt; for a stream it bounds each wait for the next chunk, so a
    long answer that keeps coming is never cut off. A stream is retried only if it failed before
    its first chunk."""

    def __init__(
        self,
        model: Model,
        *,
        timeout: float | None = 60.0,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: ConcurrencyLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = model
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.breaker = breaker
        self.limiter = limiter
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    async def request(self, request: ModelRequest) -> ModelResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                self._admit()
                try:
                    async with self._slot():
                        response = await self._with_timeout(self.inner.request(request))
                except BaseException as error:
                    self._record(error)
                    raise
            except DeputyError as error:
                await self._pause_or_raise(error, attempt)
                continue
            self._record(None)
            return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                self._admit()
                try:
                    async with self._slot():
                        async for chunk in self._timed_chunks(request):
                            started = True
                            yield chunk
                except BaseException as error:
                    self._record(error)
                    raise
            except DeputyError as error:
                if started:
                    raise
                await self._pause_or_raise(error, attempt)
                continue
            self._record(None)
            return

    async def _timed_chunks(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        chunks = aiter(self.inner.stream(request))
        try:
            while True:
                try:
                    async with asyncio.timeout(self.timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise self._timed_out() from None
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    def _admit(self) -> None:
        if self.breaker is not None:
            self.breaker.before_call()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.limiter is None:
            yield
        else:
            async with self.limiter.slot():
                yield

    async def _with_timeout(self, call: Awaitable[ModelResponse]) -> ModelResponse:
        if self.timeout is None:
            return await call
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError:
            raise self._timed_out() from None

    def _timed_out(self) -> ModelUnavailable:
        return ModelUnavailable(f"{self.name} did not answer within {self.timeout:g} seconds")

    def _record(self, error: BaseException | None) -> None:
        if self.breaker is None or isinstance(error, CircuitOpen):
            return
        if error is None:
            self.breaker.record_success()
        elif is_transient(error):
            self.breaker.record_failure()
        elif isinstance(error, DeputyError):  # the provider answered (4xx, bad output): healthy
            self.breaker.record_success()
        else:  # cancelled, or a bug: says nothing about the provider
            self.breaker.release_trial()

    async def _pause_or_raise(self, error: DeputyError, attempt: int) -> None:
        if not is_transient(error):
            raise error
        assert isinstance(error, ModelUnavailable)
        retry_after = error.retry_after
        out_of_attempts = attempt >= self.retry.max_attempts
        too_long = retry_after is not None and retry_after > self.retry.max_retry_after
        if out_of_attempts or too_long:
            raise ModelUnavailable(
                f"{self.name} unavailable after {attempt} attempt(s): {error.message}",
                retry_after=retry_after,
            ) from error
        delay = self.retry.backoff(attempt, self._rng)
        await self._sleep(max(delay, retry_after or 0.0))


class FallbackModel:
    """Tries each model in turn; the first answer wins. A model is skipped when it fails with one
    of `fallback_on` (by default: unavailable, refused, open circuit, or a model error such as a
    rejected request). A stream falls back only if it failed before its first chunk."""

    def __init__(
        self,
        models: Sequence[Model],
        *,
        fallback_on: tuple[type[DeputyError], ...] = (ModelUnavailable, ModelError),
    ) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = tuple(models)
        self.fallback_on = fallback_on

    @property
    def name(self) -> str:
        return "fallback(" + ",".join(model.name for model in self.models) + ")"

    @property
    def capabilities(self) -> ModelCapabilities:
        """What every model in the chain can do."""
        caps = [model.capabilities for model in self.models]
        return ModelCapabilities(
            native_tools=all(c.native_tools for c in caps),
            native_json_schema=all(c.native_json_schema for c in caps),
            context_tokens=min(c.context_tokens for c in caps),
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        failures: list[tuple[str, DeputyError]] = []
        for model in self.models:
            try:
                return await model.request(request)
            except self.fallback_on as error:
                failures.append((model.name, error))
        raise self._exhausted(failures)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        failures: list[tuple[str, DeputyError]] = []
        for model in self.models:
            started = False
            try:
                async for chunk in model.stream(request):
                    started = True
                    yield chunk
                return
            except self.fallback_on as error:
                if started:
                    raise
                failures.append((model.name, error))
        raise self._exhausted(failures)

    def _exhausted(self, failures: list[tuple[str, DeputyError]]) -> DeputyError:
        summary = "; ".join(f"{name}: {error.message}" for name, error in failures)
        last = failures[-1][1]
        if not all(isinstance(error, ModelUnavailable) for _, error in failures):
            return last
        waits = [
            error.retry_after
            for _, error in failures
            if isinstance(error, ModelUnavailable) and error.retry_after is not None
        ]
        exhausted = ModelUnavailable(
            f"every model in the chain failed: {summary}", retry_after=min(waits) if waits else None
        )
        exhausted.__cause__ = last
        return exhausted
