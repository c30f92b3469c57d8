"""Resolve `"provider:model"` names to ready-to-use `Model`s.

Every resolved model is the provider's adapter behind the same stack:

    [ActionModel, without native tools] → StructuredModel → MeteredModel → ResilientModel → adapter

so each call is bounded (timeout, retries, concurrency, circuit breaker), metered (usage event and
trace span), schema-checked, and tool-capable. `chain([...])` puts resolved models in a fallback
chain. Provider health (circuit breakers, concurrency limits) and the HTTP connection pool live
in a `ProviderState` that registries built for different workspaces share (`derive`)."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx2
from opentelemetry.trace import TracerProvider
from pydantic import SecretStr

from deputy.llm.actions import ActionModel
from deputy.llm.errors import UnknownModel
from deputy.llm.providers.settings import ProviderLimits, ProviderSettings
from deputy.llm.resilience import (
    CircuitBreaker,
    Clock,
    ConcurrencyLimiter,
    FallbackModel,
    ResilientModel,
    RetryPolicy,
    Sleep,
)
from deputy.llm.structured import StructuredModel, StructuredPolicy
from deputy.llm.types import Model
from deputy.llm.usage import MeteredModel, UsageSink

BLOCK_REMOTE_ENV = "DEPUTY_BLOCK_REMOTE_MODELS"
NAME_FORMS = (
    "openai:<model>",
    "anthropic:<model>",
    "openai-compatible:<endpoint>/<model>",
    "local:<model>",
)
OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class LocalModelSource(Protocol):
    """The embedded models (`deputy.llm.local.LocalModels`): `get("local:<model>")`."""

    def get(self, name: str) -> Model: ...


class RemoteModelsBlocked(RuntimeError):
    """A test (or an offline deployment) asked for a provider that would leave this machine."""


@dataclass(frozen=True, slots=True)
class ModelName:
    provider: str  # openai | anthropic | openai-compatible | local
    model: str
    endpoint: str | None = None

    @property
    def provider_key(self) -> str:
        """Which provider's health and limits this model shares."""
        return f"{self.provider}:{self.endpoint}" if self.endpoint else self.provider

    def __str__(self) -> str:
        if self.endpoint:
            return f"{self.provider}:{self.endpoint}/{self.model}"
        return f"{self.provider}:{self.model}"

    @classmethod
    def parse(cls, name: str) -> ModelName:
        provider, sep, rest = name.strip().partition(":")
        if sep and rest:
            if provider in ("openai", "anthropic", "local"):
                return cls(provider, rest)
            if provider == "openai-compatible":
                endpoint, slash, model = rest.partition("/")
                if slash and endpoint and model:
                    return cls(provider, model, endpoint)
        raise UnknownModel(
            f"cannot resolve model {name!r}: expected one of {', '.join(NAME_FORMS)}",
            details={"name": name, "forms": list(NAME_FORMS)},
        )


class ProviderState:
    """What outlives one registry: the HTTP client, and per provider (and credential) one circuit
    breaker and one concurrency limiter."""

    def __init__(
        self, *, http_client: httpx2.AsyncClient | None = None, clock: Clock = time.monotonic
    ) -> None:
        self._own_client = http_client is None
        self.http_client = http_client
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._limiters: dict[str, ConcurrencyLimiter] = {}

    def client(self) -> httpx2.AsyncClient:
        if self.http_client is None:
            from pydantic_ai.models import create_async_httpx2_client

            self.http_client = create_async_httpx2_client()
        return self.http_client

    def breaker(self, key: str, limits: ProviderLimits) -> CircuitBreaker | None:
        if limits.breaker_failures is None:
            return None
        if key not in self._breakers:
            self._breakers[key] = CircuitBreaker(
                key,
                failure_threshold=limits.breaker_failures,
                cool_down=limits.breaker_cool_down_seconds,
                clock=self._clock,
            )
        return self._breakers[key]

    def limiter(self, key: str, limits: ProviderLimits) -> ConcurrencyLimiter | None:
        if limits.concurrency is None:
            return None
        if key not in self._limiters:
            self._limiters[key] = ConcurrencyLimiter(limits.concurrency)
        return self._limiters[key]

    async def aclose(self) -> None:
        if self._own_client and self.http_client is not None:
            await self.http_client.aclose()
            self.http_client = None


class ModelRegistry:
    """Resolves model names with one `ProviderSettings`. Build one per (workspace, agent)
    settings with `derive`, which shares provider state, sink and tracing.

    `served` maps names to ready models (fakes in tests, a custom provider) that get the same
    stack as resolved ones; any `provider:model` name works there."""

    def __init__(
        self,
        settings: ProviderSettings | None = None,
        *,
        local: LocalModelSource | None = None,
        usage_sink: UsageSink | None = None,
        tracer_provider: TracerProvider | None = None,
        state: ProviderState | None = None,
        sleep: Sleep = asyncio.sleep,
        served: Mapping[str, Model] | None = None,
    ) -> None:
        self.settings = settings or ProviderSettings()
        self.local = local
        self.served = dict(served or {})
        self.usage_sink = usage_sink
        self.tracer_provider = tracer_provider
        self.state = state or ProviderState()
        self._sleep = sleep
        self._models: dict[str, Model] = {}

    def derive(self, settings: ProviderSettings) -> ModelRegistry:
        """A registry with other settings that shares this one's provider state and sinks."""
        return ModelRegistry(
            settings,
            local=self.local,
            usage_sink=self.usage_sink,
            tracer_provider=self.tracer_provider,
            state=self.state,
            sleep=self._sleep,
            served=self.served,
        )

    def get(self, name: str) -> Model:
        """The model for one name; UnknownModel if no provider resolves it."""
        name = name.strip()
        if name in self.served:
            if name not in self._models:
                provider, _, model = name.partition(":")
                served = ModelName(provider, model or provider)
                self._models[name] = self._stack(served, self.served[name], f"served:{name}")
            return self._models[name]
        parsed = ModelName.parse(name)
        key = str(parsed)
        if key not in self._models:
            limits = self.settings.limits_for(parsed.provider_key)
            base = self._adapter(parsed, limits)
            self._models[key] = self._stack(parsed, base, self._credential_key(parsed))
        return self._models[key]

    def chain(self, names: Sequence[str]) -> Model:
        """A fallback chain over the named models, in order (one name: that model)."""
        models = [self.get(name) for name in names]
        if not models:
            raise UnknownModel("an empty list of models", details={"forms": list(NAME_FORMS)})
        return models[0] if len(models) == 1 else FallbackModel(models)

    def resolve(self, spec: str | Sequence[str]) -> Model:
        return self.get(spec) if isinstance(spec, str) else self.chain(spec)

    async def aclose(self) -> None:
        """Close the shared HTTP client (at shutdown: registries derived from this one share it).
        Models resolved afterwards get a new client."""
        self._models.clear()
        await self.state.aclose()

    def _stack(self, name: ModelName, base: Model, credential_key: str) -> Model:
        limits = self.settings.limits_for(name.provider_key)
        resilient = ResilientModel(
            base,
            timeout=limits.timeout_seconds,
            retry=RetryPolicy(
                max_attempts=limits.max_attempts,
                base_delay=limits.backoff_base_seconds,
                max_delay=limits.backoff_max_seconds,
                max_retry_after=limits.max_retry_after_seconds,
            ),
            breaker=self.state.breaker(credential_key, limits),
            limiter=self.state.limiter(credential_key, limits),
            sleep=self._sleep,
        )
        metered = MeteredModel(
            resilient,
            provider=name.provider_key,
            sink=self.usage_sink,
            prices=self.settings.prices,
            tracer_provider=self.tracer_provider,
            capture_content=self.settings.capture_content,
        )
        policy = self.settings.structured
        structured = StructuredModel(
            metered,
            StructuredPolicy(
                max_attempts=policy.max_attempts,
                max_string_length=policy.max_string_length,
                max_tokens=policy.max_tokens,
            ),
        )
        return structured if base.capabilities.native_tools else ActionModel(structured)

    def _adapter(self, name: ModelName, limits: ProviderLimits) -> Model:
        if name.provider == "local":
            if self.local is None:
                raise UnknownModel(
                    f"cannot resolve {name}: no local models are available in this process",
                    details={"name": str(name)},
                )
            return self.local.get(str(name))
        base_url = self._base_url(name)
        self._check_remote_allowed(name, base_url)
        from deputy.llm.providers import factory

        timeout = limits.timeout_seconds
        if name.provider == "openai":
            key = self._key(name, self.settings.openai_api_key, "openai_api_key")
            return factory.openai_model(
                name.model,
                api_key=key,
                base_url=self.settings.openai_base_url,
                http_client=self.state.client(),
                timeout=timeout,
            )
        if name.provider == "anthropic":
            key = self._key(name, self.settings.anthropic_api_key, "anthropic_api_key")
            return factory.anthropic_model(
                name.model,
                api_key=key,
                base_url=self.settings.anthropic_base_url,
                http_client=self.state.client(),
                timeout=timeout,
            )
        assert name.endpoint is not None
        endpoint = self.settings.openai_compatible[name.endpoint]
        return factory.compatible_model(
            name.endpoint, endpoint, name.model, http_client=self.state.client(), timeout=timeout
        )

    def _base_url(self, name: ModelName) -> str:
        if name.provider == "openai":
            return self.settings.openai_base_url or OPENAI_BASE_URL
        if name.provider == "anthropic":
            return self.settings.anthropic_base_url or ANTHROPIC_BASE_URL
        assert name.endpoint is not None
        endpoint = self.settings.openai_compatible.get(name.endpoint)
        if endpoint is None:
            configured = ", ".join(sorted(self.settings.openai_compatible)) or "none"
            raise UnknownModel(
                f"cannot resolve {name}: no OpenAI-compatible endpoint named "
                f"{name.endpoint!r} is configured (configured: {configured})",
                details={"name": str(name), "endpoints": sorted(self.settings.openai_compatible)},
            )
        return endpoint.base_url

    def _check_remote_allowed(self, name: ModelName, base_url: str) -> None:
        env = os.environ.get(BLOCK_REMOTE_ENV, "")
        blocked = self.settings.block_remote or env not in ("", "0")
        if blocked and not _is_loopback(base_url):
            raise RemoteModelsBlocked(
                f"{name} would call {base_url}, but remote models are blocked here "
                f"({BLOCK_REMOTE_ENV}=1 or block_remote): use deputy.testing.ScriptedModel or "
                "FunctionModel, a local: model, or a server on 127.0.0.1"
            )

    @staticmethod
    def _key(name: ModelName, secret: SecretStr | None, setting: str) -> str:
        value = secret.get_secret_value() if secret is not None else ""
        if not value:
            raise UnknownModel(
                f"cannot resolve {name}: {name.provider} has no API key "
                f"(set {setting} in the provider settings, e.g. DEPUTY_{setting.upper()})",
                details={"name": str(name), "missing": setting},
            )
        return value

    def _credential_key(self, name: ModelName) -> str:
        """Provider health is shared per provider, base URL and key: one workspace's exhausted
        key must not open the circuit for another's."""
        if name.provider == "local":
            return "local"
        secret = {
            "openai": self.settings.openai_api_key,
            "anthropic": self.settings.anthropic_api_key,
        }.get(name.provider)
        if name.endpoint is not None:
            secret = self.settings.openai_compatible[name.endpoint].api_key
        raw = secret.get_secret_value() if secret is not None else ""
        digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
        return f"{name.provider_key}@{self._base_url(name)}#{digest}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
