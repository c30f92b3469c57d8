"""`SqlKnowledgeStore`: agents' knowledge in the platform database, searched in process.

The same tables on SQLite and PostgreSQL (`knowledge_indexes`, `knowledge_documents`,
`knowledge_chunks`); vectors are float32 bytes. Searching loads every chunk of the agent into a
`ChunkIndex` (BM25 postings plus a numpy matrix, brute-force cosine) and keeps it in this
process's `IndexCache`, tagged with the agent's generation from `knowledge_indexes`. Every
write bumps the generation in the same transaction as the chunks, so every process (API
replicas included) notices the change on its next search and reloads.

This is the fallback for PostgreSQL without pgvector, and the embedded default. Its limits:
each process holds the vectors of the agents it searches (384 float32 = 1.5 KB per chunk plus
the text and postings: ~100k chunks fit in a few hundred MB), the first search after a change
reloads the whole agent (~1 s per 10k chunks), and vector search is exact and linear in the
agent's chunk count (~1 ms per 10k chunks). See docs/knowledge.md.

Atomic replacement: a document's old chunks are deleted and the new ones inserted in one
transaction, and an index is loaded by one SELECT, which reads one committed snapshot on both
backends; so a search sees all old chunks or all new ones. Writers of one agent are serialised
by the generation row, which every write updates first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from deputy.config import Settings
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.knowledge.chunking import indexed_text
from deputy.knowledge.document import Locator, LocatorKind
from deputy.knowledge.index import ChunkIndex, Citation, IndexCache, IndexedChunk, RetrievedChunk
from deputy.knowledge.retrieval import KnowledgeBase
from deputy.knowledge.store import (
    DocumentDraft,
    EmbeddedChunk,
    SearchQuery,
    StoredDocument,
    WriteResult,
)
from deputy.llm.embeddings import EmbeddingEndpoint, EmbeddingsConfig, resolve_embedder
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

WRITE_ATTEMPTS = 3
_LOCATOR_KINDS: dict[str, LocatorKind] = {
    "lines": "lines",
    "pages": "pages",
    "paragraphs": "paragraphs",
}


def stored_document(row: t.KnowledgeDocument) -> StoredDocument:
    return StoredDocument(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        title=row.title,
        material_id=row.material_id,
        media_type=row.media_type,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        embedding_model=row.embedding_model,
        signature=row.signature,
        chunk_count=row.chunk_count,
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlKnowledgeStore:
    """A `deputy.knowledge.KnowledgeStore` on the platform database."""

    def __init__(self, db: Database, cache: IndexCache | None = None) -> None:
        self.db = db
        self.cache = cache or IndexCache()

    # -- documents --------------------------------------------------------------------------

    def find_document(self, workspace_id: str, agent_id: str, title: str) -> StoredDocument | None:
        with self.db.tenant_session(workspace_id) as session:
            row = session.scalar(
                select(t.KnowledgeDocument).where(
                    t.KnowledgeDocument.agent_id == agent_id, t.KnowledgeDocument.title == title
                )
            )
            return None if row is None else stored_document(row)

    def write_document(
        self,
        workspace_id: str,
        agent_id: str,
        draft: DocumentDraft,
        chunks: Sequence[EmbeddedChunk],
    ) -> WriteResult:
        # Two first writes of an agent (or of one title) can race to insert the same row; the
        # loser's transaction is rolled back whole and it tries again, then as an update.
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.db.tenant_session(workspace_id) as session:
                    return self._write(session, workspace_id, agent_id, draft, chunks)
            except (IntegrityError, OperationalError) as exc:
                if not _retryable(exc) or attempt == WRITE_ATTEMPTS:
                    raise Conflict(
                        "the knowledge of this agent changed at the same time; retry"
                    ) from exc
        raise AssertionError("unreachable")

    def _write(
        self,
        session: Session,
        workspace_id: str,
        agent_id: str,
        draft: DocumentDraft,
        chunks: Sequence[EmbeddedChunk],
    ) -> WriteResult:
        self._bump_generation(session, workspace_id, agent_id)
        row = session.scalar(
            select(t.KnowledgeDocument).where(
                t.KnowledgeDocument.agent_id == agent_id, t.KnowledgeDocument.title == draft.title
            )
        )
        if row is not None and row.sha256 == draft.sha256 and row.signature == draft.signature:
            return WriteResult(stored_document(row), "unchanged")
        now = utcnow()
        created = row is None
        if row is None:
            row = t.KnowledgeDocument(
                id=new_id("kdoc"),
                workspace_id=workspace_id,
                agent_id=agent_id,
                title=draft.title,
                revision=1,
                created_at=now,
            )
            session.add(row)
        else:
            session.execute(delete(t.KnowledgeChunk).where(t.KnowledgeChunk.document_id == row.id))
            row.revision += 1
        row.material_id = draft.material_id
        row.media_type = draft.media_type
        row.sha256 = draft.sha256
        row.size_bytes = draft.size_bytes
        row.embedding_model = draft.embedding_model
        row.signature = draft.signature
        row.chunk_count = len(chunks)
        row.updated_at = now
        session.flush()
        session.add_all(_chunk_rows(workspace_id, agent_id, row.id, chunks))
        session.flush()
        return WriteResult(stored_document(row), "created" if created else "replaced")

    def _bump_generation(self, session: Session, workspace_id: str, agent_id: str) -> None:
        """Take the agent's write lock (the generation row) first, then check the agent."""
        bumped = session.execute(
            update(t.KnowledgeIndex)
            .where(t.KnowledgeIndex.agent_id == agent_id)
            .values(generation=t.KnowledgeIndex.generation + 1, updated_at=utcnow())
        )
        if session.scalar(select(t.Agent.id).where(t.Agent.id == agent_id)) is None:
            raise NotFound("agent", agent_id)
        if getattr(bumped, "rowcount", 0) == 0:
            session.add(
                t.KnowledgeIndex(agent_id=agent_id, workspace_id=workspace_id, generation=1)
            )
            session.flush()

    def delete_document(self, workspace_id: str, agent_id: str, document_id: str) -> bool:
        with self.db.tenant_session(workspace_id) as session:
            row = session.scalar(
                select(t.KnowledgeDocument).where(
                    t.KnowledgeDocument.id == document_id, t.KnowledgeDocument.agent_id == agent_id
                )
            )
            if row is None:
                return False
            self._bump_generation(session, workspace_id, agent_id)
            session.execute(delete(t.KnowledgeChunk).where(t.KnowledgeChunk.document_id == row.id))
            session.delete(row)
            return True

    # -- search -------------------------------------------------------------------------------

    def generation(self, workspace_id: str, agent_id: str) -> int:
        with self.db.tenant_session(workspace_id) as session:
            value = session.scalar(
                select(t.KnowledgeIndex.generation).where(t.KnowledgeIndex.agent_id == agent_id)
            )
            return value or 0

    def index(self, workspace_id: str, agent_id: str) -> ChunkIndex:
        """The agent's current search index: cached, or loaded when its generation moved."""
        generation = self.generation(workspace_id, agent_id)  # before the chunks: see index.py
        return self.cache.get_or_load(
            (workspace_id, agent_id),
            generation,
            lambda: ChunkIndex(self.load_chunks(workspace_id, agent_id)),
        )

    def search(self, workspace_id: str, agent_id: str, query: SearchQuery) -> list[RetrievedChunk]:
        index = self.index(workspace_id, agent_id)
        if not len(index):
            return []
        return index.search(
            query.text, k=query.k, mode=query.mode, vector=query.vector, model=query.embedding_model
        )

    def load_chunks(self, workspace_id: str, agent_id: str) -> list[IndexedChunk]:
        """Every chunk of the agent, read in one statement (one consistent snapshot)."""
        statement = (
            select(
                t.KnowledgeChunk,
                t.KnowledgeDocument.title,
                t.KnowledgeDocument.material_id,
                t.KnowledgeDocument.embedding_model,
            )
            .join(t.KnowledgeDocument, t.KnowledgeDocument.id == t.KnowledgeChunk.document_id)
            .where(t.KnowledgeChunk.agent_id == agent_id)
            .order_by(t.KnowledgeChunk.document_id, t.KnowledgeChunk.ordinal)
        )
        with self.db.tenant_session(workspace_id) as session:
            rows = session.execute(statement).all()
            return [
                _indexed(chunk, title, material_id, model)
                for chunk, title, material_id, model in rows
            ]


def _retryable(exc: IntegrityError | OperationalError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    message = str(exc.orig).lower()
    return "locked" in message or "deadlock" in message or "serializ" in message


def _chunk_rows(
    workspace_id: str, agent_id: str, document_id: str, chunks: Sequence[EmbeddedChunk]
) -> list[t.KnowledgeChunk]:
    rows = []
    for item in chunks:
        chunk = item.chunk
        rows.append(
            t.KnowledgeChunk(
                id=new_id("kchk"),
                workspace_id=workspace_id,
                agent_id=agent_id,
                document_id=document_id,
                ordinal=chunk.ordinal,
                text=chunk.text,
                context=chunk.context,
                heading_path=list(chunk.heading_path),
                char_start=chunk.start,
                char_end=chunk.end,
                locator_kind=chunk.locator.kind,
                locator_start=chunk.locator.start,
                locator_end=chunk.locator.end,
                embedding=np.asarray(item.vector, dtype="<f4").tobytes(),
            )
        )
    return rows


def _indexed(
    row: t.KnowledgeChunk, title: str, material_id: str | None, model: str
) -> IndexedChunk:
    path = tuple(row.heading_path)
    kind = _LOCATOR_KINDS.get(row.locator_kind)
    if kind is None:
        raise ValueError(f"unknown locator kind {row.locator_kind!r} in chunk {row.id}")
    return IndexedChunk(
        chunk_id=row.id,
        text=row.text,
        indexed_text=indexed_text(path, row.context, row.text),
        citation=Citation(
            document_id=row.document_id,
            title=title,
            material_id=material_id,
            heading_path=path,
            char_start=row.char_start,
            char_end=row.char_end,
            locator=Locator(kind, row.locator_start, row.locator_end),
        ),
        embedding_model=model,
        vector=np.frombuffer(row.embedding, dtype="<f4").astype(np.float32),
    )


def embeddings_config(settings: Settings) -> EmbeddingsConfig:
    """The embedding providers DEPUTY_* settings configure (the same keys and endpoints as
    chat models)."""
    endpoints = {
        name: EmbeddingEndpoint(str(entry["base_url"]), entry.get("api_key"))
        for name, entry in settings.model_endpoints.items()
        if isinstance(entry, dict) and entry.get("base_url")
    }
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if settings.openai_base_url:
        return EmbeddingsConfig(
            endpoints=endpoints, openai_api_key=key, openai_base_url=settings.openai_base_url
        )
    return EmbeddingsConfig(endpoints=endpoints, openai_api_key=key)


def open_knowledge(settings: Settings, db: Database) -> KnowledgeBase:
    """The process's knowledge base: DEPUTY_EMBEDDING_MODEL (resolved now, loaded on first
    use) over the platform database, with a cache of DEPUTY_KNOWLEDGE_CACHE_CHUNKS chunks."""
    embedder = resolve_embedder(settings.embedding_model, embeddings_config(settings))
    store = SqlKnowledgeStore(db, IndexCache(settings.knowledge_cache_chunks))
    return KnowledgeBase(store, embedder)
