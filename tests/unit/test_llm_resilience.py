"""Timeouts, retries with backoff, circuit breaker, concurrency limit and fallback chains."""

from __future__ import annotations

import asyncio
import random

import pytest

from deputy.llm.errors import ModelError, ModelNotInstalled, ModelUnavailable
from deputy.llm.resilience import (
    CircuitBreaker,
    CircuitOpen,
    ConcurrencyLimiter,
    FallbackModel,
    ProviderRefused,
    ResilientModel,
    RetryPolicy,
    is_transient,
)
from deputy.llm.types import Message, Model, ModelRequest, StreamChunk
from deputy.testing import FunctionModel, ScriptedModel

REQUEST = ModelRequest(messages=(Message.user("hi"),))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _resilient(model: Model, **kwargs: object) -> tuple[ResilientModel, Sleeps]:
    sleeps = Sleeps()
    return ResilientModel(model, sleep=sleeps, rng=random.Random(7), **kwargs), sleeps  # type: ignore[arg-type]


def test_transient_failures_are_retried_with_backoff_until_success() -> None:
    inner = ScriptedModel([ModelUnavailable("503"), ModelUnavailable("conn reset"), "ok"])
    model, sleeps = _resilient(inner, retry=RetryPolicy(max_attempts=3, base_delay=1, max_delay=8))
    assert asyncio.run(model.request(REQUEST)).text == "ok"
    inner.assert_all_used()
    assert len(sleeps.delays) == 2
    assert 0.5 <= sleeps.delays[0] <= 1.0  # retry 1: d = 1, drawn from [d/2, d]
    assert 1.0 <= sleeps.delays[1] <= 2.0  # retry 2: d = 2


def test_retry_after_is_honoured() -> None:
    inner = ScriptedModel([ModelUnavailable("429", retry_after=5.0), "ok"])
    model, sleeps = _resilient(inner)
    assert asyncio.run(model.request(REQUEST)).text == "ok"
    assert sleeps.delays == [5.0]


def test_a_retry_after_longer_than_allowed_fails_fast_with_it() -> None:
    inner = ScriptedModel([ModelUnavailable("429", retry_after=120.0)])
    model, sleeps = _resilient(inner, retry=RetryPolicy(max_retry_after=30))
    with pytest.raises(ModelUnavailable) as caught:
        asyncio.run(model.request(REQUEST))
    assert caught.value.retry_after == 120.0
    assert sleeps.delays == []


def test_gives_up_after_max_attempts_with_model_unavailable() -> None:
    inner = ScriptedModel([ModelUnavailable("down")] * 3)
    model, sleeps = _resilient(inner, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ModelUnavailable, match="after 3 attempt"):
        asyncio.run(model.request(REQUEST))
    inner.assert_all_used()
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    "error",
    [
        ModelError("400 bad request"),
        ProviderRefused("401 bad key"),
        ModelNotInstalled("weights missing"),
    ],
)
def test_non_transient_failures_are_not_retried(error: Exception) -> None:
    inner = ScriptedModel([error, "never"])
    model, sleeps = _resilient(inner)
    with pytest.raises(type(error)):
        asyncio.run(model.request(REQUEST))
    assert inner.remaining == 1
    assert sleeps.delays == []


def test_is_transient_classification() -> None:
    assert is_transient(ModelUnavailable("x"))
    assert not is_transient(ProviderRefused("x"))
    assert not is_transient(CircuitOpen("x"))
    assert not is_transient(ModelError("x"))
    assert not is_transient(ValueError("x"))


def test_an_attempt_that_takes_too_long_times_out_and_is_retried() -> None:
    calls = 0

    async def slow_then_fast(request: ModelRequest) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return "fast"

    model, sleeps = _resilient(FunctionModel(slow_then_fast), timeout=0.05)
    assert asyncio.run(model.request(REQUEST)).text == "fast"
    assert calls == 2
    assert len(sleeps.delays) == 1


def test_timeout_surfaces_as_model_unavailable() -> None:
    async def hang(request: ModelRequest) -> str:
        await asyncio.sleep(5)
        return "late"

    model, _ = _resilient(FunctionModel(hang), timeout=0.02, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ModelUnavailable, match="did not answer within"):
        asyncio.run(model.request(REQUEST))


def test_circuit_opens_after_consecutive_failures_then_half_opens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("prov", failure_threshold=2, cool_down=30, clock=clock)
    inner = ScriptedModel([ModelUnavailable("a"), ModelUnavailable("b"), "recovered"])
    model, _ = _resilient(inner, breaker=breaker, retry=RetryPolicy(max_attempts=1))

    for _ in range(2):
        with pytest.raises(ModelUnavailable):
            asyncio.run(model.request(REQUEST))
    assert breaker.state == "open"

    with pytest.raises(CircuitOpen) as caught:
        asyncio.run(model.request(REQUEST))
    assert caught.value.retry_after == pytest.approx(30)
    assert inner.remaining == 1  # the open circuit never reached the model

    clock.now += 31
    assert breaker.state == "half_open"
    assert asyncio.run(model.request(REQUEST)).text == "recovered"
    assert breaker.state == "closed"


def test_a_failed_half_open_trial_reopens_the_circuit() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("prov", failure_threshold=1, cool_down=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits for the trial
    breaker.record_failure()
    assert breaker.state == "open"


def test_non_transient_errors_do_not_open_the_circuit() -> None:
    breaker = CircuitBreaker("prov", failure_threshold=1)
    inner = ScriptedModel([ModelError("bad request"), "ok"])
    model, _ = _resilient(inner, breaker=breaker)
    with pytest.raises(ModelError):
        asyncio.run(model.request(REQUEST))
    assert breaker.state == "closed"
    assert asyncio.run(model.request(REQUEST)).text == "ok"


def test_concurrency_limit_caps_calls_in_flight() -> None:
    limiter = ConcurrencyLimiter(2)
    peak = 0
    running = 0

    async def work(request: ModelRequest) -> str:
        nonlocal peak, running
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return "done"

    model, _ = _resilient(FunctionModel(work), limiter=limiter)

    async def scenario() -> list[str]:
        results = await asyncio.gather(*(model.request(REQUEST) for _ in range(6)))
        return [r.text for r in results]

    assert asyncio.run(scenario()) == ["done"] * 6
    assert peak == 2
    assert limiter.in_flight == 0


def test_stream_is_retried_only_before_its_first_chunk() -> None:
    inner = ScriptedModel([ModelUnavailable("503"), "streamed words"])
    model, sleeps = _resilient(inner)

    async def collect(m: Model) -> list[StreamChunk]:
        return [c async for c in m.stream(REQUEST)]

    chunks = asyncio.run(collect(model))
    assert chunks[-1].response is not None
    assert chunks[-1].response.text == "streamed words"
    assert len(sleeps.delays) == 1

    class BreaksMidStream(ScriptedModel):
        async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def,override]
            yield StreamChunk(text="partial")
            raise ModelUnavailable("connection dropped")

    broken, sleeps = _resilient(BreaksMidStream())
    with pytest.raises(ModelUnavailable, match="connection dropped"):
        asyncio.run(collect(broken))
    assert sleeps.delays == []


def test_stream_times_out_waiting_for_a_chunk() -> None:
    class Stalls(ScriptedModel):
        async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def,override]
            yield StreamChunk(text="a")
            await asyncio.sleep(5)
            yield StreamChunk(text="b")

    model, _ = _resilient(Stalls(), timeout=0.05)

    async def collect() -> list[str]:
        return [c.text async for c in model.stream(REQUEST)]

    with pytest.raises(ModelUnavailable, match="did not answer"):
        asyncio.run(collect())


def test_fallback_chain_moves_to_the_next_model() -> None:
    hosted = ScriptedModel([ModelUnavailable("429", retry_after=3)], name="openai:gpt")
    local = ScriptedModel(["from local"], name="local:small")
    chain = FallbackModel([hosted, local])
    response = asyncio.run(chain.request(REQUEST))
    assert response.text == "from local"
    assert response.model == "local:small"
    assert chain.name == "fallback(openai:gpt,local:small)"


def test_fallback_chain_exhausted_raises_unavailable_with_the_shortest_wait() -> None:
    chain = FallbackModel(
        [
            ScriptedModel([ModelUnavailable("a", retry_after=9)], name="m1"),
            ScriptedModel([ProviderRefused("bad key")], name="m2"),
            ScriptedModel([ModelUnavailable("c", retry_after=4)], name="m3"),
        ]
    )
    with pytest.raises(ModelUnavailable, match="every model in the chain failed") as caught:
        asyncio.run(chain.request(REQUEST))
    assert caught.value.retry_after == 4
    assert "m2: bad key" in caught.value.message


def test_fallback_chain_streams_from_the_first_model_that_answers() -> None:
    chain = FallbackModel([ScriptedModel([ModelUnavailable("down")]), ScriptedModel(["b c"])])

    async def collect() -> str:
        return "".join([c.text async for c in chain.stream(REQUEST)])

    assert asyncio.run(collect()) == "b c"


def test_fallback_capabilities_are_what_every_model_can_do() -> None:
    from deputy.llm.types import ModelCapabilities

    weak = ModelCapabilities(native_tools=False, native_json_schema=True, context_tokens=4096)
    chain = FallbackModel([ScriptedModel(), ScriptedModel(capabilities=weak)])
    assert chain.capabilities == weak


def test_a_stream_that_keeps_coming_is_not_cut_off() -> None:
    class Steady(ScriptedModel):
        async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def,override]
            for word in ("a", "b", "c", "d", "e"):
                await asyncio.sleep(0.03)
                yield StreamChunk(text=word)

    model, _ = _resilient(Steady(), timeout=0.1)  # the whole stream takes longer than that

    async def collect() -> str:
        return "".join([c.text async for c in model.stream(REQUEST)])

    assert asyncio.run(collect()) == "abcde"
