"""Build the pydantic-ai model adapter for one remote `provider:model` from settings.

Keys are always passed explicitly: no provider reads `OPENAI_API_KEY` & co from the environment
behind the settings' back."""

from __future__ import annotations

import httpx2
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.azure import AzureProvider
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider

from deputy.llm.providers.adapter import PydanticAIModel
from deputy.llm.providers.settings import Endpoint
from deputy.llm.types import ModelCapabilities

OPENAI_DEFAULT_CONTEXT = 128_000
ANTHROPIC_DEFAULT_CONTEXT = 200_000
NO_KEY = "no-key"  # OpenAI-compatible servers that need no key still get a placeholder


def openai_model(
    model: str,
    *,
    api_key: str,
    base_url: str | None,
    http_client: httpx2.AsyncClient,
    timeout: float | None,
) -> PydanticAIModel:
    provider = OpenAIProvider(base_url=base_url, api_key=api_key, http_client=http_client)
    adapter = OpenAIChatModel(model, provider=provider)
    capabilities = ModelCapabilities(
        native_tools=True,
        native_json_schema=bool(adapter.profile.get("supports_json_schema_output", False)),
        context_tokens=adapter.context_window or OPENAI_DEFAULT_CONTEXT,
    )
    return PydanticAIModel(f"openai:{model}", adapter, capabilities, timeout=timeout)


def anthropic_model(
    model: str,
    *,
    api_key: str,
    base_url: str | None,
    http_client: httpx2.AsyncClient,
    timeout: float | None,
) -> PydanticAIModel:
    provider = AnthropicProvider(api_key=api_key, base_url=base_url, http_client=http_client)
    adapter = AnthropicModel(model, provider=provider)
    capabilities = ModelCapabilities(
        native_tools=True,
        native_json_schema=bool(adapter.profile.get("supports_json_schema_output", False)),
        context_tokens=adapter.context_window or ANTHROPIC_DEFAULT_CONTEXT,
    )
    return PydanticAIModel(f"anthropic:{model}", adapter, capabilities, timeout=timeout)


def compatible_model(
    endpoint_name: str,
    endpoint: Endpoint,
    model: str,
    *,
    http_client: httpx2.AsyncClient,
    timeout: float | None,
) -> PydanticAIModel:
    key = endpoint.api_key.get_secret_value() if endpoint.api_key else None
    profile = ModelProfile(
        supports_tools=True, supports_json_schema_output=endpoint.native_json_schema
    )
    provider: OpenAICompatibleProvider | AzureProvider
    if endpoint.kind == "azure":
        provider = AzureProvider(
            azure_endpoint=endpoint.base_url,
            api_version=endpoint.api_version,
            api_key=key or NO_KEY,
            http_client=http_client,
        )
    else:
        provider = OpenAICompatibleProvider(
            endpoint_name,
            base_url=endpoint.base_url,
            api_key=key or NO_KEY,
            http_client=http_client,
            profile=profile,
        )
    adapter = OpenAIChatModel(model, provider=provider, profile=profile)
    capabilities = ModelCapabilities(
        native_tools=endpoint.native_tools,
        native_json_schema=endpoint.native_json_schema,
        context_tokens=endpoint.context_tokens,
    )
    name = f"openai-compatible:{endpoint_name}/{model}"
    return PydanticAIModel(name, adapter, capabilities, timeout=timeout)
