"""The agents' Prometheus series move when their events happen: turns (both statuses exist from
the first turn), entries recorded by a turn (tool calls, guardrail stops), model calls through
the usage sinks, escalations and outcomes; labels stay bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deputy.llm.usage import UsageEvent
from deputy.observability.agent_metrics import TURN_BUCKETS, AgentMetrics, slo_bucket
from deputy.services.model_hub import MetricsUsageSink, UsageSinks

WHERE = {"workspace": "wsp_1", "agent": "agt_1", "channel": "api"}


def value(metrics: AgentMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_turn_counts_by_status_and_observes_its_latency() -> None:
    metrics = AgentMetrics.create()
    metrics.turn_ended("wsp_1", "agt_1", "api", "completed", 0.7)
    assert value(metrics, "deputy_turns_total", **WHERE, status="completed") == 1
    assert value(metrics, "deputy_turns_total", **WHERE, status="failed") == 0
    metrics.turn_ended("wsp_1", "agt_1", "api", "failed", 6.0)
    assert value(metrics, "deputy_turns_total", **WHERE, status="failed") == 1
    buckets = {
        le: value(metrics, "deputy_turn_duration_seconds_bucket", **WHERE, le=le)
        for le in ("1.0", "5.0", "8.0")
    }
    assert buckets == {"1.0": 1, "5.0": 1, "8.0": 2}
    assert value(metrics, "deputy_turn_duration_seconds_count", **WHERE) == 2


def test_channels_outside_the_platforms_own_are_folded_into_other() -> None:
    metrics = AgentMetrics.create()
    metrics.conversation_started("wsp_1", "agt_1", "kiosk-42")
    metrics.conversation_started("wsp_1", "agt_1", "telegram")
    labels = {"workspace": "wsp_1", "agent": "agt_1"}
    assert value(metrics, "deputy_conversations_started_total", **labels, channel="other") == 1
    assert value(metrics, "deputy_conversations_started_total", **labels, channel="telegram") == 1
    assert (
        value(metrics, "deputy_conversations_started_total", **labels, channel="kiosk-42") is None
    )


def test_tool_call_entries_count_by_status_and_time_the_call() -> None:
    metrics = AgentMetrics.create()
    ok = {"tool": "lookup_order", "status": "succeeded", "code": None, "duration_ms": 120.0}
    failed = {"tool": "lookup_order", "status": "failed", "code": "tool_error", "duration_ms": 40}
    invented = {"tool": "made_up_by_the_model", "status": "refused", "code": "unknown_tool"}
    for data in (ok, failed, invented):
        metrics.entry_recorded("wsp_1", "agt_1", "api", "tool_call", data)
    where = {"workspace": "wsp_1", "agent": "agt_1"}
    calls = "deputy_tool_calls_total"
    assert value(metrics, calls, **where, tool="lookup_order", status="succeeded") == 1
    assert value(metrics, calls, **where, tool="lookup_order", status="failed") == 1
    assert value(metrics, calls, **where, tool="unknown", status="refused") == 1
    assert value(metrics, calls, **where, tool="made_up_by_the_model", status="refused") is None
    duration = "deputy_tool_call_duration_seconds"
    assert value(metrics, f"{duration}_count", **where, tool="lookup_order") == 2
    assert value(metrics, f"{duration}_sum", **where, tool="lookup_order") == pytest.approx(0.16)
    assert value(metrics, f"{duration}_bucket", **where, tool="lookup_order", le="0.05") == 1


def test_only_guardrail_stages_that_stopped_something_count() -> None:
    metrics = AgentMetrics.create()
    for stage, action in (
        ("input", "block"),
        ("output", "escalate"),
        ("output", "mask"),
        ("input", "allow"),
        ("tool", "flag"),
        ("weird", "block"),
    ):
        metrics.entry_recorded(
            "wsp_1", "agt_1", "chat", "guardrail", {"stage": stage, "action": action}
        )
    metrics.entry_recorded("wsp_1", "agt_1", "chat", "agent_message", {"action": "block"})
    where = {**WHERE, "channel": "chat"}
    stops = "deputy_guardrail_blocks_total"
    assert value(metrics, stops, **where, stage="input", action="block") == 1
    assert value(metrics, stops, **where, stage="output", action="escalate") == 1
    assert value(metrics, stops, **where, stage="other", action="block") == 1
    total = sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "deputy_guardrail_blocks"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    assert total == 3


def test_escalations_and_outcomes() -> None:
    metrics = AgentMetrics.create()
    metrics.escalated("wsp_1", "agt_1", "email", "customer_request")
    metrics.closed("wsp_1", "agt_1", "email", "resolved")
    metrics.closed("wsp_1", "agt_1", "email", "resolved")
    where = {**WHERE, "channel": "email"}
    assert value(metrics, "deputy_escalations_total", **where, trigger="customer_request") == 1
    assert value(metrics, "deputy_outcomes_total", **where, outcome="resolved") == 2


def event(outcome: str = "ok", **changes: object) -> UsageEvent:
    fields: dict[str, object] = {
        "event_id": "use_1",
        "occurred_at": datetime.now(UTC),
        "model": "openai-compatible:vllm/qwen",
        "provider": "openai-compatible:vllm",
        "outcome": outcome,
        "input_tokens": 120,
        "output_tokens": 30,
        "latency_seconds": 0.4,
        "metadata": {"workspace_id": "wsp_1", "agent_id": "agt_1", "conversation_id": "cnv_1"},
    }
    fields.update(changes)
    return UsageEvent(**fields)  # type: ignore[arg-type]


def test_model_calls_reach_the_series_through_the_usage_sinks() -> None:
    metrics = AgentMetrics.create()

    class Broken:
        def record(self, event: UsageEvent) -> None:
            raise RuntimeError("the database is down")

    sinks = UsageSinks(Broken(), MetricsUsageSink(metrics))
    sinks.record(event())
    sinks.record(event("unavailable", input_tokens=0, output_tokens=0, error_code="unavailable"))
    sinks.record(event("invalid_output", input_tokens=0, output_tokens=0))
    model = {"workspace": "wsp_1", "agent": "agt_1", "model": "openai-compatible:vllm/qwen"}
    assert value(metrics, "deputy_model_tokens_total", **model, direction="input") == 120
    assert value(metrics, "deputy_model_tokens_total", **model, direction="output") == 30
    assert value(metrics, "deputy_model_errors_total", **model, code="unavailable") == 1
    assert value(metrics, "deputy_model_errors_total", **model, code="invalid_output") == 1
    timed = {k: v for k, v in model.items()}
    timed["provider"] = "openai-compatible:vllm"
    assert value(metrics, "deputy_model_request_duration_seconds_count", **timed) == 3


def test_calls_outside_any_workspace_or_agent_are_labelled_empty() -> None:
    metrics = AgentMetrics.create()
    MetricsUsageSink(metrics).record(event(metadata={}))
    labels = {"workspace": "", "agent": "", "model": "openai-compatible:vllm/qwen"}
    assert value(metrics, "deputy_model_tokens_total", **labels, direction="input") == 120


@pytest.mark.parametrize(
    ("threshold", "bucket"), [(5.0, 5.0), (4.0, 3.0), (7.9, 5.0), (0.05, 0.1), (600.0, 120.0)]
)
def test_a_latency_threshold_is_measured_at_the_largest_bound_not_above_it(
    threshold: float, bucket: float
) -> None:
    assert slo_bucket(threshold) == bucket
    assert bucket in TURN_BUCKETS
