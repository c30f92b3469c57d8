"""Provider configuration as plain, frozen data: keys and endpoints, and per-provider timeouts,
retries, concurrency and circuit-breaker limits; prices; structured-output caps.

One `ProviderSettings` comes from the process settings; per-workspace and per-agent overrides
(stored as JSON) are laid over it with `overlay`, field by field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from deputy.llm.usage import Price, PriceTable

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Endpoint(BaseModel):
    """A server that speaks the OpenAI chat-completions protocol: vLLM, Ollama, llama.cpp's
    server, OpenRouter, Azure OpenAI (`kind="azure"`, `base_url` the resource endpoint and
    `api_version` set), … Capabilities say what its models can be trusted with: a model without
    reliable native tool calls gets the action adapter, one without native JSON-Schema output
    gets the schema in its instructions."""

    model_config = _FROZEN

    base_url: str
    api_key: SecretStr | None = None
    kind: Literal["openai-compatible", "azure"] = "openai-compatible"
    api_version: str | None = None
    native_tools: bool = True
    native_json_schema: bool = True
    context_tokens: int = Field(default=8192, ge=256)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")


class ProviderLimits(BaseModel):
    """How calls to one provider are bounded. `timeout_seconds` bounds one attempt;
    `max_attempts` counts the first; `concurrency` caps calls in flight (None: no cap);
    the circuit opens after `breaker_failures` consecutive transient failures (None: never)."""

    model_config = _FROZEN

    timeout_seconds: float | None = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=8.0, ge=0)
    max_retry_after_seconds: float = Field(default=30.0, ge=0)
    concurrency: int | None = Field(default=16, ge=1)
    breaker_failures: int | None = Field(default=5, ge=1)
    breaker_cool_down_seconds: float = Field(default=30.0, ge=0)


LOCAL_LIMITS = ProviderLimits(
    timeout_seconds=None,  # a local generation cannot be interrupted; its own queue bounds it
    max_attempts=1,
    concurrency=None,  # the local model has its own single inference queue
    breaker_failures=None,
)


class StructuredSettings(BaseModel):
    model_config = _FROZEN

    max_attempts: int = Field(default=3, ge=1, le=10)
    max_string_length: int | None = Field(default=2000, ge=1)
    max_tokens: int | None = Field(default=1024, ge=1)


class ProviderSettings(BaseModel):
    """Everything the registry needs. Limits are looked up by provider key, most specific
    first: `"openai-compatible:<endpoint>"`, then `"openai-compatible"`, `"openai"`,
    `"anthropic"` or `"local"`, then `default_limits` (for `local`: `LOCAL_LIMITS`)."""

    model_config = _FROZEN

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    openai_compatible: Mapping[str, Endpoint] = Field(default_factory=dict)
    limits: Mapping[str, ProviderLimits] = Field(default_factory=dict)
    default_limits: ProviderLimits = ProviderLimits()
    prices: PriceTable = PriceTable()
    structured: StructuredSettings = StructuredSettings()
    capture_content: bool = Field(
        default=False, description="Record prompts and completions on trace spans."
    )
    block_remote: bool = Field(
        default=False, description="Refuse every provider that is not local or on loopback."
    )

    @field_validator("openai_compatible")
    @classmethod
    def _endpoint_names(cls, value: Mapping[str, Endpoint]) -> Mapping[str, Endpoint]:
        for name in value:
            if not name or "/" in name or ":" in name:
                raise ValueError(f"endpoint name {name!r} must be non-empty without '/' or ':'")
        return value

    def limits_for(self, provider_key: str) -> ProviderLimits:
        family = provider_key.split(":", 1)[0]
        for key in (provider_key, family):
            if key in self.limits:
                return self.limits[key]
        return LOCAL_LIMITS if family == "local" else self.default_limits

    def overlay(self, override: ProviderSettings | Mapping[str, Any]) -> ProviderSettings:
        """These settings with whatever `override` sets laid over them, field by field and key by
        key (endpoints, limits and prices merge; an override's entry refines the base's)."""
        if not isinstance(override, ProviderSettings):
            override = ProviderSettings.model_validate(override)
        merged: ProviderSettings = _merge(self, override)
        return merged


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, BaseModel) and isinstance(override, BaseModel):
        update = {
            name: _merge(getattr(base, name), getattr(override, name))
            for name in override.model_fields_set
        }
        return base.model_copy(update=update)
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


__all__ = [
    "LOCAL_LIMITS",
    "Endpoint",
    "Price",
    "PriceTable",
    "ProviderLimits",
    "ProviderSettings",
    "StructuredSettings",
]
