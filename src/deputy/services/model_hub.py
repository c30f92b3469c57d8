"""The process-wide model hub: the local engine, the provider registry built from DEPUTY_*
settings, usage metering into the database, and a registry per workspace endpoint set."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError

from deputy.config import Settings
from deputy.domain.ids import new_id
from deputy.llm.local.provider import LocalModels
from deputy.llm.providers import ProviderSettings
from deputy.llm.registry import ModelRegistry
from deputy.llm.usage import UsageEvent, UsageSink
from deputy.observability.agent_metrics import AgentMetrics
from deputy.store import tables as t
from deputy.store.db import Database

log = logging.getLogger(__name__)
Credentials = Mapping[str, tuple[str, str | None]]


class DatabaseUsageSink:
    """Writes each model call as an immutable usage event, once (by its event id)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, event: UsageEvent) -> None:
        workspace_id = event.workspace_id
        if workspace_id is None:  # platform-internal calls (benchmarks) bill no workspace
            return
        row = t.UsageEventRow(
            id=new_id("use"),
            event_id=event.event_id,
            workspace_id=workspace_id,
            kind="model_call",
            quantity=str(event.input_tokens + event.output_tokens),
            unit="token",
            data={},
            agent_id=event.agent_id,
            conversation_id=event.conversation_id,
            model=event.model,
            provider=event.provider,
            outcome=event.outcome,
            error_code=event.error_code,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cached_tokens=event.cached_tokens,
            latency_ms=round(event.latency_seconds * 1000),
            cost_usd=None if event.cost is None else str(event.cost),
            occurred_at=event.occurred_at,
        )
        try:
            with self.db.tenant_session(workspace_id) as session:
                session.add(row)
        except IntegrityError:
            log.debug("usage event %s was already recorded", event.event_id)


class MetricsUsageSink:
    """Feeds each model call into the platform's Prometheus series (latency, tokens, errors)."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self.metrics = metrics

    def record(self, event: UsageEvent) -> None:
        self.metrics.model_call(
            workspace=event.workspace_id or "",
            agent=event.agent_id or "",
            model=event.model,
            provider=event.provider,
            seconds=event.latency_seconds,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            error=None if event.outcome == "ok" else event.error_code or event.outcome,
        )


class UsageSinks:
    """Hands each event to every sink in turn; one that fails does not keep it from the rest."""

    def __init__(self, *sinks: UsageSink) -> None:
        self.sinks = sinks

    def record(self, event: UsageEvent) -> None:
        for sink in self.sinks:
            try:
                sink.record(event)
            except Exception:
                log.exception("usage sink %s failed on event %s", sink, event.event_id)


def provider_settings(settings: Settings) -> ProviderSettings:
    """The platform-wide provider configuration from DEPUTY_* settings."""
    return ProviderSettings.model_validate(
        {
            "openai_api_key": settings.openai_api_key,
            "openai_base_url": settings.openai_base_url,
            "anthropic_api_key": settings.anthropic_api_key,
            "openai_compatible": settings.model_endpoints,
            "prices": {"prices": settings.model_prices},
            "capture_content": settings.trace_content,
        }
    )


class ModelHub:
    """One per process: the local models, the root registry, and a registry per distinct set of
    workspace endpoints (cached, sharing breakers, limiters and the HTTP client)."""

    def __init__(self, settings: Settings, db: Database, metrics: AgentMetrics) -> None:
        self.settings = settings
        self.local = LocalModels(
            settings.model_cache_dir,
            model_path=settings.local_model_path,
            threads=settings.local_threads,
        )
        self.base_settings = provider_settings(settings)
        self.root = ModelRegistry(
            self.base_settings,
            local=self.local,
            usage_sink=UsageSinks(DatabaseUsageSink(db), MetricsUsageSink(metrics)),
        )
        self._derived: dict[str, ModelRegistry] = {}
        self._lock = threading.Lock()

    def registry(self, endpoints: Credentials) -> ModelRegistry:
        if not endpoints:
            return self.root
        overlay = {
            "openai_compatible": {
                name: {"base_url": url, "api_key": key} for name, (url, key) in endpoints.items()
            }
        }
        fingerprint = hashlib.sha256(json.dumps(overlay, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if fingerprint not in self._derived:
                self._derived[fingerprint] = self.root.derive(self.base_settings.overlay(overlay))
            return self._derived[fingerprint]

    def chain(self, chosen: str | None) -> list[str]:
        """The chosen model (or the platform default), then the fallbacks, without repeats."""
        return list(
            dict.fromkeys([chosen or self.settings.default_model, *self.settings.fallback_models])
        )

    async def aclose(self) -> None:
        await self.root.aclose()
        self.local.close()
