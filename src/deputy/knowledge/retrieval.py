"""`KnowledgeBase`: documents in, cited passages out, for any agent of any workspace.

    knowledge = KnowledgeBase(store, embedder)
    await knowledge.add(workspace_id, agent_id, data=policy, media_type="text/markdown",
                        title="Refund policy")
    hits = await knowledge.search(workspace_id, agent_id, "can I get my money back?", k=5)
    hits[0].text, hits[0].citation.locator.label   # the passage, "lines 12-18"

This layer does no access control: the caller (the service layer, or the runtime acting for an
agent it already resolved) has checked who may read or change the agent's knowledge.

Adding a document parses and chunks it in a worker thread, embeds every chunk, and only then
asks the store to write: the embedder is never called inside a write transaction, so a slow or
failing model cannot hold locks or leave a document half-replaced.
"""

from __future__ import annotations

import hashlib

import anyio

from deputy.knowledge.chunking import Chunk, ChunkingOptions, chunk_document
from deputy.knowledge.fusion import RETRIEVAL_MODES, RetrievalMode
from deputy.knowledge.index import RetrievedChunk
from deputy.knowledge.parse import parse_document
from deputy.knowledge.store import (
    DocumentDraft,
    EmbeddedChunk,
    KnowledgeStore,
    SearchQuery,
    StoredDocument,
    WriteResult,
)
from deputy.llm.embeddings import Embedder

MAX_K = 50


class KnowledgeBase:
    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        options: ChunkingOptions | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options or ChunkingOptions()

    @property
    def signature(self) -> str:
        """What a stored document's chunks depend on besides its bytes."""
        return f"{self.embedder.name}|{self.options.signature}"

    async def add(
        self,
        workspace_id: str,
        agent_id: str,
        *,
        data: bytes,
        media_type: str,
        title: str,
        material_id: str | None = None,
    ) -> WriteResult:
        """Index `data` as the agent's document `title`: created, replaced (atomically) when
        the title exists with other content, or left `unchanged` when the content and the
        signature are the same. Raises `ValidationFailed` for an unreadable file,
        `UnsupportedMediaType` for a type without text, `ModelUnavailable` when embedding
        fails (nothing is written then)."""
        digest = hashlib.sha256(data).hexdigest()
        existing = await anyio.to_thread.run_sync(
            self.store.find_document, workspace_id, agent_id, title
        )
        if existing is not None and self._same(existing, digest):
            return WriteResult(existing, "unchanged")
        chunks = await anyio.to_thread.run_sync(self.chunk, data, media_type)
        vectors = await self.embedder.embed(
            [chunk.indexed_text for chunk in chunks], kind="passage"
        )
        embedded = [EmbeddedChunk(chunk, vectors[i]) for i, chunk in enumerate(chunks)]
        draft = DocumentDraft(
            title=title,
            media_type=media_type,
            sha256=digest,
            size_bytes=len(data),
            material_id=material_id,
            embedding_model=self.embedder.name,
            signature=self.signature,
        )
        return await anyio.to_thread.run_sync(
            self.store.write_document, workspace_id, agent_id, draft, embedded
        )

    def chunk(self, data: bytes, media_type: str) -> list[Chunk]:
        """Parse and chunk (blocking, CPU-bound)."""
        return chunk_document(parse_document(data, media_type), self.options)

    def _same(self, document: StoredDocument, digest: str) -> bool:
        return document.sha256 == digest and document.signature == self.signature

    async def delete(self, workspace_id: str, agent_id: str, document_id: str) -> bool:
        return await anyio.to_thread.run_sync(
            self.store.delete_document, workspace_id, agent_id, document_id
        )

    async def search(
        self,
        workspace_id: str,
        agent_id: str,
        query: str,
        *,
        k: int = 5,
        mode: RetrievalMode = "hybrid",
    ) -> list[RetrievedChunk]:
        """The agent's `k` best chunks for `query`, best first, each with its citation."""
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}")
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"mode must be one of {RETRIEVAL_MODES}")
        vector = None
        if mode != "bm25":
            vector = (await self.embedder.embed([query], kind="query"))[0]
        search = SearchQuery(
            query, k, mode, vector, self.embedder.name if vector is not None else None
        )
        return await anyio.to_thread.run_sync(self.store.search, workspace_id, agent_id, search)
