"""OpenTelemetry tracing: wired everywhere, exporting only when an OTLP endpoint is configured.

Spans carry ids, names, counts and stable codes. Content (prompts, replies, customer text, tool
arguments and results) is recorded only with DEPUTY_TRACE_CONTENT=true, a process-wide switch
like the tracer provider itself; exception messages (which may quote content) likewise: by
default a failed span says only the exception's type.

Trace context crosses what runs later (an outbox row sent by a sweeper) as a W3C `traceparent`
carrier: `TURN_TRACES` keeps the context of each recent turn this process ran, by turn id, for
whoever queues its reply (`carried_context` reads it back)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode

from deputy import __version__

_configured = False
_content = False


def configure_tracing(otlp_endpoint: str | None, *, trace_content: bool = False) -> None:
    """Install an exporting tracer provider once per process when an endpoint is given, and set
    whether spans may carry content."""
    global _configured, _content
    _content = trace_content
    if _configured or not otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": "deputy", "service.version": __version__})
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces"))
    )
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("deputy")


def content_traced() -> bool:
    """True when spans may record content (DEPUTY_TRACE_CONTENT)."""
    return _content


def record_failure(span: Span, error: BaseException) -> None:
    """Mark `span` failed: the exception's type always, its message only when content is
    traced (messages may quote what a customer or a tool said)."""
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR))
    if _content:
        span.record_exception(error)


def trace_carrier() -> dict[str, str]:
    """The current span context as W3C headers (empty when nothing is traced)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class RecentTraces:
    """The trace context of recent work by key, in this process; the oldest are forgotten past
    `limit` (work whose follow-up never comes must not pile up)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._carriers: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: str) -> None:
        """Keep the current span context under `key` (nothing when nothing is traced)."""
        carrier = trace_carrier()
        if not carrier:
            return
        with self._lock:
            self._carriers[key] = carrier
            self._carriers.move_to_end(key)
            while len(self._carriers) > self._limit:
                self._carriers.popitem(last=False)

    def get(self, key: str | None) -> dict[str, str] | None:
        if key is None:
            return None
        with self._lock:
            return self._carriers.get(key)


TURN_TRACES = RecentTraces()
"""The `invoke_agent` span context of each recent turn, by turn id."""


def carried_context(carrier: Mapping[str, str] | None) -> Context | None:
    """The context a carrier (or request headers) holds, None when it holds none."""
    if not carrier:
        return None
    context = propagate.extract(dict(carrier))
    return context if trace.get_current_span(context).get_span_context().is_valid else None
