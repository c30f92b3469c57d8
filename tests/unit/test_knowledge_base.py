"""`KnowledgeBase` on an in-memory store and the hashing embedder: what it embeds when, what it
hands the store, and that a failing embedder writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from deputy.knowledge import (
    ChunkingOptions,
    DocumentDraft,
    EmbeddedChunk,
    KnowledgeBase,
    RetrievedChunk,
    SearchQuery,
    StoredDocument,
    WriteResult,
)
from deputy.knowledge.index import ChunkIndex, Citation, IndexedChunk
from deputy.llm.errors import ModelUnavailable
from deputy.testing import HashingEmbedder

POLICY = b"""# Returns

## Window

Items can be returned within 30 days of delivery.

## Refunds

Refunds go to the original payment method. Gift card refunds are immediate.
"""


class MemoryStore:
    """A `KnowledgeStore` in a dict, for one workspace and agent at a time."""

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str, str], tuple[StoredDocument, list[EmbeddedChunk]]] = {}
        self.writes = 0
        self.queries: list[SearchQuery] = []

    def find_document(self, workspace_id: str, agent_id: str, title: str) -> StoredDocument | None:
        found = self.documents.get((workspace_id, agent_id, title))
        return None if found is None else found[0]

    def write_document(
        self,
        workspace_id: str,
        agent_id: str,
        draft: DocumentDraft,
        chunks: Sequence[EmbeddedChunk],
    ) -> WriteResult:
        self.writes += 1
        key = (workspace_id, agent_id, draft.title)
        old = self.documents.get(key)
        now = datetime.now(UTC)
        document = StoredDocument(
            id=old[0].id if old else f"kdoc_{len(self.documents)}",
            workspace_id=workspace_id,
            agent_id=agent_id,
            title=draft.title,
            material_id=draft.material_id,
            media_type=draft.media_type,
            sha256=draft.sha256,
            size_bytes=draft.size_bytes,
            embedding_model=draft.embedding_model,
            signature=draft.signature,
            chunk_count=len(chunks),
            revision=old[0].revision + 1 if old else 1,
            created_at=old[0].created_at if old else now,
            updated_at=now,
        )
        self.documents[key] = (document, list(chunks))
        return WriteResult(document, "replaced" if old else "created")

    def delete_document(self, workspace_id: str, agent_id: str, document_id: str) -> bool:
        for key, (document, _) in list(self.documents.items()):
            if key[:2] == (workspace_id, agent_id) and document.id == document_id:
                del self.documents[key]
                return True
        return False

    def search(self, workspace_id: str, agent_id: str, query: SearchQuery) -> list[RetrievedChunk]:
        self.queries.append(query)
        rows = [
            IndexedChunk(
                f"{document.id}-{item.chunk.ordinal}",
                item.chunk.text,
                item.chunk.indexed_text,
                Citation(
                    document.id,
                    document.title,
                    document.material_id,
                    item.chunk.heading_path,
                    item.chunk.start,
                    item.chunk.end,
                    item.chunk.locator,
                ),
                document.embedding_model,
                item.vector,
            )
            for (ws, agent, _), (document, chunks) in self.documents.items()
            if (ws, agent) == (workspace_id, agent_id)
            for item in chunks
        ]
        return ChunkIndex(rows).search(
            query.text, k=query.k, mode=query.mode, vector=query.vector, model=query.embedding_model
        )


@pytest.fixture
def parts() -> tuple[KnowledgeBase, MemoryStore, HashingEmbedder]:
    store, embedder = MemoryStore(), HashingEmbedder()
    return KnowledgeBase(store, embedder), store, embedder


def add(knowledge: KnowledgeBase, data: bytes, title: str = "Returns") -> WriteResult:
    return asyncio.run(
        knowledge.add("ws_1", "agt_1", data=data, media_type="text/markdown", title=title)
    )


def test_add_embeds_passages_then_writes_and_skips_unchanged_content(
    parts: tuple[KnowledgeBase, MemoryStore, HashingEmbedder],
) -> None:
    knowledge, store, embedder = parts
    first = add(knowledge, POLICY)
    assert first.outcome == "created"
    assert first.document.chunk_count == 2
    assert first.document.signature == f"test:hashing|{ChunkingOptions().signature}"
    (texts, kind) = embedder.calls[0]
    assert kind == "passage"
    assert texts[1].startswith("Returns > Refunds\n## Refunds")
    again = add(knowledge, POLICY)
    assert again.outcome == "unchanged" and again.document == first.document
    assert len(embedder.calls) == 1 and store.writes == 1
    changed = add(knowledge, POLICY.replace(b"30 days", b"45 days"))
    assert changed.outcome == "replaced" and changed.document.revision == 2
    assert store.writes == 2


def test_other_chunking_options_reindex_the_same_bytes(
    parts: tuple[KnowledgeBase, MemoryStore, HashingEmbedder],
) -> None:
    knowledge, store, embedder = parts
    add(knowledge, POLICY)
    finer_options = ChunkingOptions(target_words=20, max_words=30, overlap_words=5)
    finer = KnowledgeBase(store, embedder, finer_options)
    assert add(finer, POLICY).outcome == "replaced"


def test_a_failing_embedder_writes_nothing(
    parts: tuple[KnowledgeBase, MemoryStore, HashingEmbedder],
) -> None:
    knowledge, store, embedder = parts
    add(knowledge, POLICY)
    embedder.fail = ModelUnavailable("the embedding model crashed")
    with pytest.raises(ModelUnavailable):
        add(knowledge, POLICY.replace(b"30 days", b"10 days"))
    assert store.writes == 1
    document, chunks = store.documents[("ws_1", "agt_1", "Returns")]
    assert document.revision == 1
    assert "30 days" in chunks[0].chunk.text


def test_search_embeds_the_query_only_when_vectors_are_used(
    parts: tuple[KnowledgeBase, MemoryStore, HashingEmbedder],
) -> None:
    knowledge, store, embedder = parts
    add(knowledge, POLICY)
    calls = len(embedder.calls)
    hits = asyncio.run(knowledge.search("ws_1", "agt_1", "gift card refunds", mode="bm25"))
    assert len(embedder.calls) == calls
    assert hits[0].citation.heading_path == ("Returns", "Refunds")
    assert hits[0].citation.locator.label == "lines 7-9"
    hits = asyncio.run(knowledge.search("ws_1", "agt_1", "returned within days", k=1))
    assert embedder.calls[-1] == (["returned within days"], "query")
    assert store.queries[-1].embedding_model == "test:hashing"
    assert [hit.citation.heading_path[-1] for hit in hits] == ["Window"]
    assert asyncio.run(knowledge.search("ws_1", "agt_2", "refunds")) == []
    with pytest.raises(ValueError, match="k must"):
        asyncio.run(knowledge.search("ws_1", "agt_1", "x", k=0))
    with pytest.raises(ValueError, match="mode"):
        asyncio.run(knowledge.search("ws_1", "agt_1", "x", mode="fuzzy"))  # type: ignore[arg-type]
