"""Remote providers behind pydantic-ai's model adapters: OpenAI, Anthropic, and any server that
speaks the OpenAI protocol. Importing this package stays light; the adapters (and pydantic-ai)
load when the registry first builds a remote model."""

from deputy.llm.providers.settings import (
    LOCAL_LIMITS,
    Endpoint,
    ProviderLimits,
    ProviderSettings,
    StructuredSettings,
)

__all__ = ["LOCAL_LIMITS", "Endpoint", "ProviderLimits", "ProviderSettings", "StructuredSettings"]
