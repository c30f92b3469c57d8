"""The `/metrics` page: the HTTP and agent registries plus what is read at scrape time (queue
depths, SLO objectives), rendered in Prometheus's text format for one viewer.

The platform's operator (a public scrape, or a key that may create workspaces) sees every
series; a workspace's key sees only the series labelled with its workspace (the HTTP layer's
series, which count every tenant's requests, are the operator's alone)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from deputy.observability.agent_metrics import channel_label, slo_bucket

LATENCY_OBJECTIVE = 0.95
"""A spec's latency SLO is a p95 target: 95% of turns within `latency_p95_ms`."""


@dataclass(frozen=True)
class AgentObjectives:
    """The SLOs of an agent's live spec (`deputy.domain.spec.operations.SLOs`)."""

    workspace: str
    agent: str
    availability: float
    latency_seconds: float
    accuracy: float


@dataclass(frozen=True)
class QueueDepths:
    """Counts read at scrape time, one grouped query each; rows are labels then the count."""

    waiting_for_human: Sequence[tuple[str, str, str, int]] = ()
    """(workspace, agent, queue, conversations queued for a person)"""
    open_turns: Sequence[tuple[str, str, str, int]] = ()
    """(workspace, agent, status pending|running, turns)"""
    outbox_pending: Sequence[tuple[str, str, int]] = ()
    """(workspace, channel kind, messages waiting to be sent)"""
    inbound_unprocessed: Sequence[tuple[str, str, int]] = ()
    """(workspace, channel kind, deliveries received and not processed yet)"""
    notifications_pending: Sequence[tuple[str, int]] = ()
    """(workspace, alert notifications waiting to be sent)"""


@dataclass(frozen=True)
class _Families:
    families: Sequence[Metric] = field(default_factory=tuple)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _gauge(
    name: str, help_text: str, labels: list[str], rows: Iterable[Sequence[object]]
) -> Metric:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for row in rows:
        *values, count = row
        family.add_metric([str(value) for value in values], float(str(count)))
    return family


def queue_families(depths: QueueDepths) -> list[Metric]:
    outbox: dict[tuple[str, str], int] = {}
    for workspace, kind, count in depths.outbox_pending:
        key = (workspace, channel_label(kind))
        outbox[key] = outbox.get(key, 0) + count
    inbound: dict[tuple[str, str], int] = {}
    for workspace, kind, count in depths.inbound_unprocessed:
        key = (workspace, channel_label(kind))
        inbound[key] = inbound.get(key, 0) + count
    return [
        _gauge(
            "deputy_conversations_waiting",
            "Conversations handed off and waiting in a queue for a person",
            ["workspace", "agent", "queue"],
            depths.waiting_for_human,
        ),
        _gauge(
            "deputy_turns_open",
            "Turns acknowledged and not finished (pending or running)",
            ["workspace", "agent", "status"],
            depths.open_turns,
        ),
        _gauge(
            "deputy_channel_outbox_pending",
            "Replies waiting to be sent on a channel",
            ["workspace", "channel"],
            [(*key, count) for key, count in outbox.items()],
        ),
        _gauge(
            "deputy_channel_inbound_unprocessed",
            "Channel deliveries stored and not processed yet",
            ["workspace", "channel"],
            [(*key, count) for key, count in inbound.items()],
        ),
        _gauge(
            "deputy_alert_notifications_pending",
            "Alert notifications waiting to be sent",
            ["workspace"],
            depths.notifications_pending,
        ),
    ]


def slo_families(objectives: Iterable[AgentObjectives]) -> list[Metric]:
    """`deputy_slo_objective{slo}` per agent, and the latency threshold labelled with the
    `deputy_turn_duration_seconds` bucket bound (`le`) it is measured at, so rules can pick
    that bucket by label matching."""
    objective = GaugeMetricFamily(
        "deputy_slo_objective",
        "The SLO objectives of each deployed agent's live spec (good events / all events)",
        labels=["workspace", "agent", "slo"],
    )
    threshold = GaugeMetricFamily(
        "deputy_slo_latency_threshold_seconds",
        "Each deployed agent's latency threshold; `le` is the turn-duration bucket it is "
        "measured at (the largest bound not above it)",
        labels=["workspace", "agent", "le"],
    )
    for slo in objectives:
        where = [slo.workspace, slo.agent]
        objective.add_metric([*where, "availability"], slo.availability)
        objective.add_metric([*where, "latency"], LATENCY_OBJECTIVE)
        objective.add_metric([*where, "accuracy"], slo.accuracy)
        bucket = floatToGoString(slo_bucket(slo.latency_seconds))  # type: ignore[no-untyped-call]
        threshold.add_metric([*where, bucket], slo.latency_seconds)
    return [objective, threshold]


def _only(family: Metric, workspace: str) -> Metric:
    kept = Metric(family.name, family.documentation, family.type, family.unit)
    kept.samples = [s for s in family.samples if s.labels.get("workspace") == workspace]
    return kept


def render(
    *,
    platform_wide: Sequence[Collector],
    per_workspace: Sequence[Collector],
    read_now: Sequence[Metric],
    workspace: str | None,
) -> bytes:
    """The page for one viewer: everything for the operator (`workspace` None), else only the
    series of that workspace among `per_workspace` and `read_now`."""
    families: list[Metric] = []
    for collector in [*per_workspace, _Families(read_now)]:
        for family in collector.collect():
            families.append(family if workspace is None else _only(family, workspace))
    if workspace is None:
        for collector in platform_wide:
            families.extend(collector.collect())
    return generate_latest(_Families(families))
