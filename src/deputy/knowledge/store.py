"""Where an agent's documents, chunks and vectors are kept: the `KnowledgeStore` interface.

The platform's implementation (`deputy.services.knowledge_store.SqlKnowledgeStore`) keeps the
same SQL tables on SQLite (the embedded default) and on PostgreSQL, with vectors as float32
bytes, and searches an in-process index per agent (`deputy.knowledge.index`) that it loads
lazily and caches, checked against a per-agent generation counter in the database so that
several API processes stay consistent. That is the documented fallback for PostgreSQL without
pgvector; its limits (memory per process, a full reload after every change, brute-force vector
search) are in docs/knowledge.md. A pgvector store would implement the same four methods with
an HNSW index in the database and BM25 kept as it is; nothing above this interface changes.

Contract every implementation keeps:

- `write_document` replaces a document's chunks atomically: a concurrent `search` sees all of
  the old chunks or all of the new ones, never a mix or none; on any failure the old ones stay.
  It must not call the embedder: chunks arrive embedded.
- Nothing crosses agents or workspaces: every call is scoped by both ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from deputy.knowledge.chunking import Chunk
from deputy.knowledge.fusion import RetrievalMode
from deputy.knowledge.index import RetrievedChunk, Vector

WriteOutcome = Literal["created", "replaced", "unchanged"]


@dataclass(frozen=True, slots=True)
class DocumentDraft:
    """A document about to be stored. `signature` names the embedding model and chunking
    options; content with the same sha256 and signature as the stored one is not re-indexed."""

    title: str
    media_type: str
    sha256: str
    size_bytes: int
    material_id: str | None
    embedding_model: str
    signature: str


@dataclass(frozen=True, slots=True)
class EmbeddedChunk:
    chunk: Chunk
    vector: Vector


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    workspace_id: str
    agent_id: str
    title: str
    material_id: str | None
    media_type: str
    sha256: str
    size_bytes: int
    embedding_model: str
    signature: str
    chunk_count: int
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WriteResult:
    document: StoredDocument
    outcome: WriteOutcome


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    k: int
    mode: RetrievalMode
    vector: Vector | None = None
    embedding_model: str | None = None


class KnowledgeStore(Protocol):
    """Blocking calls (database I/O); async callers run them in a worker thread."""

    def find_document(
        self, workspace_id: str, agent_id: str, title: str
    ) -> StoredDocument | None: ...

    def write_document(
        self,
        workspace_id: str,
        agent_id: str,
        draft: DocumentDraft,
        chunks: Sequence[EmbeddedChunk],
    ) -> WriteResult:
        """Create the document titled `draft.title`, or replace its content and chunks in one
        transaction; `unchanged` (and nothing written) when sha256 and signature match."""
        ...

    def delete_document(self, workspace_id: str, agent_id: str, document_id: str) -> bool:
        """Remove a document and its chunks; False when there was no such document."""
        ...

    def search(
        self, workspace_id: str, agent_id: str, query: SearchQuery
    ) -> list[RetrievedChunk]: ...
