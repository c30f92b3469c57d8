"""Usage and cost of every model call: one immutable `UsageEvent` per call to a `UsageSink`
(consumption billing, cost dashboards) and one OpenTelemetry span following the GenAI semantic
conventions. `MeteredModel` wraps any `Model`, so every provider gets both.

Token counts: `input_tokens` includes `cached_tokens` (the part of the prompt served from the
provider's cache, usually billed at a lower rate)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from pydantic import BaseModel, ConfigDict, Field

from deputy.domain.errors import DeputyError
from deputy.llm.errors import ModelOutputInvalid, ModelUnavailable
from deputy.llm.types import (
    FinishReason,
    Model,
    ModelCapabilities,
    ModelRequest,
    ModelResponse,
    StreamChunk,
    Usage,
)

log = logging.getLogger(__name__)

Outcome = Literal["ok", "unavailable", "invalid_output", "error", "cancelled"]
MILLION = Decimal(1_000_000)
FREE_PROVIDERS = frozenset({"local"})


class Price(BaseModel):
    """Prices in `currency` per one million tokens. Cached input defaults to the input price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_million: Decimal = Field(ge=0)
    output_per_million: Decimal = Field(ge=0)
    cached_input_per_million: Decimal | None = Field(default=None, ge=0)

    def cost(self, usage: Usage) -> Decimal:
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = (
            self.input_per_million
            if self.cached_input_per_million is None
            else self.cached_input_per_million
        )
        total = (
            (usage.input_tokens - cached) * self.input_per_million
            + cached * cached_price
            + usage.output_tokens * self.output_per_million
        )
        return total / MILLION


class PriceTable(BaseModel):
    """Prices by `"provider:model"`. A key ending in `*` matches every name it prefixes
    (`"openai:gpt-4o*"`); an exact key wins over a pattern, a longer pattern over a shorter one.
    Models of `local` cost nothing unless priced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prices: Mapping[str, Price] = Field(default_factory=dict)
    currency: str = "USD"

    def price_for(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        patterns = [key for key in self.prices if key.endswith("*") and model.startswith(key[:-1])]
        if patterns:
            return self.prices[max(patterns, key=len)]
        return None

    def cost(self, model: str, provider: str, usage: Usage) -> Decimal | None:
        price = self.price_for(model)
        if price is not None:
            return price.cost(usage)
        if provider in FREE_PROVIDERS:
            return Decimal(0)
        return None


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One model call, as it finished. `event_id` is unique per call: a sink writes it with an
    insert-if-absent to record each call exactly once."""

    event_id: str
    occurred_at: datetime  # when the call started (UTC)
    model: str  # the "provider:model" that was called
    provider: str  # "openai", "anthropic", "openai-compatible:<endpoint>", "local", ...
    outcome: Outcome
    streamed: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency_seconds: float = 0.0
    cost: Decimal | None = None  # None: no price known for this model
    currency: str = "USD"
    finish_reason: FinishReason | None = None
    error_code: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def workspace_id(self) -> str | None:
        return self.metadata.get("workspace_id")

    @property
    def agent_id(self) -> str | None:
        return self.metadata.get("agent_id")

    @property
    def conversation_id(self) -> str | None:
        return self.metadata.get("conversation_id")


class UsageSink(Protocol):
    """Receives one event per model call. Must not block for long; failures are logged and
    swallowed so that metering never fails a conversation."""

    def record(self, event: UsageEvent) -> None: ...


def new_usage_event_id() -> str:
    return f"use_{uuid.uuid4().hex}"


class MeteredModel:
    """Records a `UsageEvent` and an OpenTelemetry client span for each call to `model`.

    Span attributes follow the GenAI semantic conventions; prompt and completion contents are
    recorded only with `capture_content=True`."""

    def __init__(
        self,
        model: Model,
        *,
        provider: str,
        sink: UsageSink | None = None,
        prices: PriceTable | None = None,
        tracer_provider: TracerProvider | None = None,
        capture_content: bool = False,
        id_factory: Callable[[], str] = new_usage_event_id,
    ) -> None:
        self.inner = model
        self.provider = provider
        self.sink = sink
        self.prices = prices or PriceTable()
        self.capture_content = capture_content
        self._tracer: Tracer = trace.get_tracer("deputy.llm", tracer_provider=tracer_provider)
        self._id_factory = id_factory

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> ModelCapabilities:
        return self.inner.capabilities

    async def request(self, request: ModelRequest) -> ModelResponse:
        with _Call(self, request, streamed=False) as call:
            try:
                with trace.use_span(
                    call.span,
                    end_on_exit=False,
                    record_exception=False,
                    set_status_on_exception=False,
                ):
                    response = await self.inner.request(request)
            except BaseException as error:
                call.fail(error)
                raise
            call.succeed(response)
            return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        # The span is not made current across yields: the consumer may resume this generator
        # from another context.
        with _Call(self, request, streamed=True) as call:
            try:
                async for chunk in self.inner.stream(request):
                    if chunk.response is not None:
                        call.succeed(chunk.response)
                    yield chunk
            except BaseException as error:
                call.fail(error)
                raise
            if not call.finished:
                call.fail(ModelOutputInvalid(f"{self.name} ended its stream without a response"))

    def _emit(self, event: UsageEvent) -> None:
        if self.sink is None:
            return
        try:
            self.sink.record(event)
        except Exception:  # metering must never fail the call
            log.exception("usage sink failed to record event %s", event.event_id)


class _Call:
    """One metered call: the span, the clock, and exactly one usage event at the end."""

    def __init__(self, owner: MeteredModel, request: ModelRequest, streamed: bool) -> None:
        self.owner = owner
        self.request = request
        self.streamed = streamed
        self.finished = False
        self._started_at = datetime.now(UTC)
        self._start = time.perf_counter()
        self.span: Span = trace.INVALID_SPAN

    def __enter__(self) -> _Call:
        provider_model = _model_id(self.owner.name)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.owner.provider,
            "gen_ai.system": self.owner.provider,
            "gen_ai.request.model": provider_model,
            "deputy.llm.model": self.owner.name,
            "deputy.llm.streamed": self.streamed,
        }
        if self.request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = self.request.max_tokens
        if self.request.temperature is not None:
            attributes["gen_ai.request.temperature"] = self.request.temperature
        if self.request.stop:
            attributes["gen_ai.request.stop_sequences"] = list(self.request.stop)
        if self.request.response_schema is not None:
            attributes["gen_ai.output.type"] = "json"
        for key in ("workspace_id", "agent_id", "conversation_id"):
            if key in self.request.metadata:
                attributes[f"deputy.{key}"] = self.request.metadata[key]
        if self.owner.capture_content:
            attributes["gen_ai.input.messages"] = json.dumps(
                [{"role": m.role, "content": m.content} for m in self.request.messages]
            )
        self.span = self.owner._tracer.start_span(
            f"chat {provider_model}", kind=SpanKind.CLIENT, attributes=attributes
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.finished:  # e.g. the consumer stopped reading a stream
            self.fail(None)
        self.span.end()

    def succeed(self, response: ModelResponse) -> None:
        if self.finished:
            return
        span = self.span
        usage = response.usage
        span.set_attribute("gen_ai.response.model", _model_id(response.model or self.owner.name))
        span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens)
        if self.owner.capture_content:
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    {"text": response.text, "tool_calls": [c.name for c in response.tool_calls]}
                ),
            )
        cost = self.owner.prices.cost(self.owner.name, self.owner.provider, usage)
        if cost is not None:
            span.set_attribute("deputy.llm.cost", str(cost))
        self._finish("ok", usage=usage, cost=cost, finish_reason=response.finish_reason)

    def fail(self, error: BaseException | None) -> None:
        if self.finished:
            return
        span = self.span
        outcome: Outcome
        if isinstance(error, ModelUnavailable):
            outcome = "unavailable"
        elif isinstance(error, ModelOutputInvalid):
            outcome = "invalid_output"
        elif error is None or not isinstance(error, Exception):
            outcome = "cancelled"
        else:
            outcome = "error"
        error_type = type(error).__name__ if error is not None else "cancelled"
        span.set_attribute("error.type", error_type)
        # The type only: a provider's error text can quote the prompt.
        span.set_status(Status(StatusCode.ERROR))
        code = error.code if isinstance(error, DeputyError) else None
        self._finish(outcome, usage=Usage(), cost=None, finish_reason=None, error_code=code)

    def _finish(
        self,
        outcome: Outcome,
        *,
        usage: Usage,
        cost: Decimal | None,
        finish_reason: FinishReason | None,
        error_code: str | None = None,
    ) -> None:
        self.finished = True
        self.owner._emit(
            UsageEvent(
                event_id=self.owner._id_factory(),
                occurred_at=self._started_at,
                model=self.owner.name,
                provider=self.owner.provider,
                outcome=outcome,
                streamed=self.streamed,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                latency_seconds=time.perf_counter() - self._start,
                cost=cost,
                currency=self.owner.prices.currency,
                finish_reason=finish_reason,
                error_code=error_code,
                metadata=dict(self.request.metadata),
            )
        )


def _model_id(name: str) -> str:
    """The model part of "provider:model" (and of "openai-compatible:endpoint/model")."""
    _, _, model = name.partition(":")
    return model or name
