"""Usage events, cost from the price table, and GenAI-convention spans for every call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import Message, ModelRequest, Usage
from deputy.llm.usage import MeteredModel, Price, PriceTable, UsageEvent
from deputy.testing import CollectingUsageSink, ScriptedModel, reply

PRICES = PriceTable(
    prices={
        "openai:gpt-4o*": Price(
            input_per_million=Decimal("2.50"),
            output_per_million=Decimal("10"),
            cached_input_per_million=Decimal("1.25"),
        ),
        "openai:gpt-4o-mini*": Price(
            input_per_million=Decimal("0.15"), output_per_million=Decimal("0.60")
        ),
        "anthropic:claude-x": Price(input_per_million=Decimal(3), output_per_million=Decimal(15)),
    }
)
REQUEST = ModelRequest(
    messages=(Message.user("hello"),),
    max_tokens=50,
    temperature=0.2,
    metadata={"workspace_id": "ws_1", "agent_id": "agt_1", "conversation_id": "conv_1"},
)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_price_table_matches_exact_then_longest_pattern() -> None:
    assert PRICES.price_for("anthropic:claude-x") is PRICES.prices["anthropic:claude-x"]
    assert PRICES.price_for("openai:gpt-4o-mini-2024") is PRICES.prices["openai:gpt-4o-mini*"]
    assert PRICES.price_for("openai:gpt-4o-2024-08-06") is PRICES.prices["openai:gpt-4o*"]
    assert PRICES.price_for("openai:o3") is None


def test_cost_bills_cached_input_at_its_own_rate() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cached_tokens=400_000)
    # 600k fresh * 2.50 + 400k cached * 1.25 + 100k out * 10, per million
    assert PRICES.cost("openai:gpt-4o", "openai", usage) == Decimal("3.0")
    assert PRICES.cost("openai:o3", "openai", usage) is None  # unknown price, not zero
    assert PRICES.cost("local:qwen", "local", usage) == Decimal(0)


def test_price_table_loads_from_plain_data() -> None:
    table = PriceTable.model_validate(
        {"prices": {"openai:x": {"input_per_million": "1", "output_per_million": "2"}}}
    )
    assert table.cost("openai:x", "openai", Usage(1_000_000, 1_000_000)) == Decimal(3)


def test_each_call_records_one_event_with_metadata_and_cost(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    sink = CollectingUsageSink()
    inner = ScriptedModel([reply("hi", usage=Usage(100, 20, 40))], name="openai:gpt-4o")
    model = MeteredModel(
        inner, provider="openai", sink=sink, prices=PRICES, tracer_provider=provider
    )
    asyncio.run(model.request(REQUEST))

    (event,) = sink.events
    assert event.outcome == "ok"
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (100, 20, 40)
    assert event.model == "openai:gpt-4o"
    assert event.provider == "openai"
    assert event.cost == (60 * Decimal("2.50") + 40 * Decimal("1.25") + 20 * 10) / 1_000_000
    assert event.workspace_id == "ws_1"
    assert event.agent_id == "agt_1"
    assert event.conversation_id == "conv_1"
    assert event.event_id.startswith("use_")
    assert event.latency_seconds >= 0
    assert event.finish_reason == "stop"

    (span,) = exporter.get_finished_spans()
    attributes: dict[str, Any] = dict(span.attributes or {})
    assert span.name == "chat gpt-4o"
    assert span.kind == SpanKind.CLIENT
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == 100
    assert attributes["gen_ai.usage.output_tokens"] == 20
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["deputy.workspace_id"] == "ws_1"
    assert "gen_ai.input.messages" not in attributes  # no prompt contents by default
    assert "gen_ai.output.messages" not in attributes


def test_prompt_contents_are_recorded_only_when_asked(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    model = MeteredModel(
        ScriptedModel(["secret answer"]),
        provider="test",
        tracer_provider=provider,
        capture_content=True,
    )
    asyncio.run(model.request(REQUEST))
    attributes = dict(exporter.get_finished_spans()[0].attributes or {})
    assert "hello" in str(attributes["gen_ai.input.messages"])
    assert "secret answer" in str(attributes["gen_ai.output.messages"])


def test_failed_call_records_an_event_and_an_error_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    sink = CollectingUsageSink()
    model = MeteredModel(
        ScriptedModel([ModelUnavailable("down")], name="openai:gpt-4o"),
        provider="openai",
        sink=sink,
        tracer_provider=provider,
    )
    with pytest.raises(ModelUnavailable):
        asyncio.run(model.request(REQUEST))
    (event,) = sink.events
    assert event.outcome == "unavailable"
    assert event.error_code == "unavailable"
    assert event.cost is None
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "ModelUnavailable"


def test_streamed_call_records_one_event_when_the_stream_ends(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    sink = CollectingUsageSink()
    model = MeteredModel(
        ScriptedModel([reply("a b c", usage=Usage(5, 3))]),
        provider="test",
        sink=sink,
        tracer_provider=provider,
    )

    async def collect() -> str:
        return "".join([chunk.text async for chunk in model.stream(REQUEST)])

    assert asyncio.run(collect()) == "a b c"
    (event,) = sink.events
    assert event.streamed
    assert event.outcome == "ok"
    assert event.output_tokens == 3
    assert len(exporter.get_finished_spans()) == 1


def test_a_failing_sink_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def record(self, event: UsageEvent) -> None:
            raise RuntimeError("database down")

    model = MeteredModel(ScriptedModel(["fine"]), provider="test", sink=Broken())
    assert asyncio.run(model.request(REQUEST)).text == "fine"
    assert "usage sink failed" in caplog.text


def test_event_ids_are_unique_per_call() -> None:
    sink = CollectingUsageSink()
    model = MeteredModel(ScriptedModel(["a", "b"]), provider="test", sink=sink)
    asyncio.run(model.request(REQUEST))
    asyncio.run(model.request(REQUEST))
    assert len({e.event_id for e in sink.events}) == 2
