"""The /metrics page: the operator sees every series, a workspace only its own (and none of the
platform-wide HTTP series); the SLO gauges name the histogram bucket rules must pick, in the
exact form the histogram writes it; queue depths fold channels like the counters do."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from deputy.observability.agent_metrics import AgentMetrics
from deputy.observability.exposition import (
    AgentObjectives,
    QueueDepths,
    queue_families,
    render,
    slo_families,
)
from deputy.observability.metrics import HttpMetrics


def samples(page: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.decode())
        for sample in family.samples
    }


def page_for(workspace: str | None) -> bytes:
    http, agents = HttpMetrics.create(), AgentMetrics.create()
    http.requests.labels(method="GET", route="/v1/agents", status="200").inc()
    agents.turn_ended("wsp_a", "agt_a", "api", "completed", 0.2)
    agents.turn_ended("wsp_b", "agt_b", "chat", "failed", 0.3)
    objectives = [
        AgentObjectives("wsp_a", "agt_a", 0.999, 5.0, 0.9),
        AgentObjectives("wsp_b", "agt_b", 0.99, 4.0, 0.8),
    ]
    depths = QueueDepths(notifications_pending=[("wsp_a", 2), ("wsp_b", 5)])
    return render(
        platform_wide=[http.registry],
        per_workspace=[agents.registry],
        read_now=queue_families(depths) + slo_families(objectives),
        workspace=workspace,
    )


def test_the_operator_sees_every_workspace_and_the_http_layer() -> None:
    found = samples(page_for(None))
    workspaces = {dict(labels).get("workspace") for _, labels in found} - {None}
    assert workspaces == {"wsp_a", "wsp_b"}
    assert any(name == "deputy_http_requests_total" for name, _ in found)


def test_a_workspace_sees_only_its_own_series() -> None:
    text = page_for("wsp_b").decode()
    found = samples(text.encode())
    assert found
    assert {dict(labels)["workspace"] for _, labels in found} == {"wsp_b"}
    assert "wsp_a" not in text and "agt_a" not in text
    assert "deputy_http_requests_total" not in text
    notifications = (("workspace", "wsp_b"),)
    assert found[("deputy_alert_notifications_pending", notifications)] == 5


def test_slo_gauges_name_the_bucket_exactly_as_the_histogram_writes_it() -> None:
    agents = AgentMetrics.create()
    agents.turn_ended("wsp_a", "agt_a", "api", "completed", 1.0)
    agents.turn_ended("wsp_a", "agt_b", "api", "completed", 1.0)
    objectives = [
        AgentObjectives("wsp_a", "agt_a", 0.995, 5.0, 0.85),
        AgentObjectives("wsp_a", "agt_b", 0.99, 4.0, 0.9),
    ]
    text = render(
        platform_wide=[],
        per_workspace=[agents.registry],
        read_now=slo_families(objectives),
        workspace=None,
    ).decode()
    bucket_les = set(re.findall(r'deputy_turn_duration_seconds_bucket\{[^}]*le="([^"]+)"', text))
    found = samples(text.encode())
    thresholds = {
        dict(labels)["agent"]: (dict(labels)["le"], number)
        for (name, labels), number in found.items()
        if name == "deputy_slo_latency_threshold_seconds"
    }
    assert thresholds == {"agt_a": ("5.0", 5.0), "agt_b": ("3.0", 4.0)}
    assert {le for le, _ in thresholds.values()} <= bucket_les
    objective = {
        (dict(labels)["agent"], dict(labels)["slo"]): number
        for (name, labels), number in found.items()
        if name == "deputy_slo_objective"
    }
    assert objective == {
        ("agt_a", "availability"): 0.995,
        ("agt_a", "latency"): 0.95,
        ("agt_a", "accuracy"): 0.85,
        ("agt_b", "availability"): 0.99,
        ("agt_b", "latency"): 0.95,
        ("agt_b", "accuracy"): 0.9,
    }


def test_queue_depths_fold_channels_and_keep_agents_and_queues() -> None:
    depths = QueueDepths(
        waiting_for_human=[("wsp_a", "agt_a", "billing", 3)],
        open_turns=[("wsp_a", "agt_a", "pending", 2), ("wsp_a", "agt_a", "running", 1)],
        outbox_pending=[("wsp_a", "email", 4), ("wsp_a", "fax", 1), ("wsp_a", "pager", 2)],
        inbound_unprocessed=[("wsp_a", "slack", 6)],
    )
    found = samples(
        render(
            platform_wide=[],
            per_workspace=[],
            read_now=queue_families(depths),
            workspace="wsp_a",
        )
    )
    ws = ("workspace", "wsp_a")
    waiting = ("deputy_conversations_waiting", (("agent", "agt_a"), ("queue", "billing"), ws))
    assert found[waiting] == 3
    assert found[("deputy_turns_open", (("agent", "agt_a"), ("status", "pending"), ws))] == 2
    assert found[("deputy_channel_outbox_pending", (("channel", "email"), ws))] == 4
    assert found[("deputy_channel_outbox_pending", (("channel", "other"), ws))] == 3
    assert found[("deputy_channel_inbound_unprocessed", (("channel", "slack"), ws))] == 6
