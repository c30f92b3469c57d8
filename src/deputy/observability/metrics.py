"""Prometheus metrics of the HTTP layer, on a registry per app so tests never share counters
(the agents' series: `deputy.observability.agent_metrics`; the page: `.exposition`)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class HttpMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    errors: Counter

    @classmethod
    def create(cls) -> HttpMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "deputy_http_requests",
                "HTTP requests served",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "deputy_http_request_duration_seconds",
                "HTTP request latency",
                ["method", "route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            errors=Counter(
                "deputy_http_errors",
                "HTTP error responses by stable error code",
                ["code"],
                registry=registry,
            ),
        )
