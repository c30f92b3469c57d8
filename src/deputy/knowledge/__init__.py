"""Knowledge: documents an agent answers from, and hybrid retrieval with citations.

    parse → chunk → embed → store          (KnowledgeBase.add)
    query → BM25 + vectors → RRF → cited   (KnowledgeBase.search)

- `parse`: Markdown, text, HTML, PDF, DOCX to text plus structure (`ParsedDocument`).
- `chunking`: structure-aware chunks with heading paths, spans and locators.
- `bm25`, `fusion`: the lexical ranker and reciprocal rank fusion.
- `index`: an agent's in-process search index and the generation-checked cache of them.
- `store`: the `KnowledgeStore` interface the platform implements on SQL.
- `retrieval`: `KnowledgeBase`, the one object callers (services, the runtime) use.
"""

from deputy.knowledge.chunking import Chunk, ChunkingOptions, chunk_document
from deputy.knowledge.document import Block, Locator, ParsedDocument
from deputy.knowledge.fusion import RETRIEVAL_MODES, RRF_K, RetrievalMode
from deputy.knowledge.index import Citation, RetrievedChunk
from deputy.knowledge.parse import SUPPORTED_TYPES, parse_document
from deputy.knowledge.retrieval import KnowledgeBase
from deputy.knowledge.store import (
    DocumentDraft,
    EmbeddedChunk,
    KnowledgeStore,
    SearchQuery,
    StoredDocument,
    WriteOutcome,
    WriteResult,
)

__all__ = [
    "RETRIEVAL_MODES",
    "RRF_K",
    "SUPPORTED_TYPES",
    "Block",
    "Chunk",
    "ChunkingOptions",
    "Citation",
    "DocumentDraft",
    "EmbeddedChunk",
    "KnowledgeBase",
    "KnowledgeStore",
    "Locator",
    "ParsedDocument",
    "RetrievalMode",
    "RetrievedChunk",
    "SearchQuery",
    "StoredDocument",
    "WriteOutcome",
    "WriteResult",
    "chunk_document",
    "parse_document",
]
