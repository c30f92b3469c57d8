"""`SqlKnowledgeStore` on the backend under test (SQLite file or PostgreSQL): documents and
chunks, atomic re-indexing under concurrent readers and mid-write failures, tenant and agent
isolation, two processes kept consistent by the generation counter, the migration."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select

from deputy.domain.errors import NotFound
from deputy.knowledge import (
    ChunkingOptions,
    DocumentDraft,
    EmbeddedChunk,
    KnowledgeBase,
)
from deputy.llm.errors import ModelUnavailable
from deputy.services import knowledge_store
from deputy.services.knowledge_store import SqlKnowledgeStore
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.migrate import alembic_config, upgrade
from deputy.testing import HashingEmbedder

pytestmark = pytest.mark.integration
SMALL = ChunkingOptions(target_words=20, max_words=40, overlap_words=5)


def doc(marker: str, sections: int) -> bytes:
    parts = ["# Handbook"]
    for number in range(sections):
        parts.append(
            f"## Part {number}\n\nThe {marker} rule number {number} says a refund takes "
            f"{number + 2} days and needs the order id and the reason from the customer."
        )
    return "\n\n".join(parts).encode()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.engine)
    with database.session() as session:
        for ws in ("ws_A", "ws_B"):
            session.add(t.Workspace(id=ws, name=ws))
        session.flush()
        for ws, agent in (("ws_A", "agt_A1"), ("ws_A", "agt_A2"), ("ws_B", "agt_B1")):
            session.add(t.Agent(id=agent, workspace_id=ws, name=agent, latest_version=0))
    yield database
    database.dispose()


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def knowledge(db: Database, embedder: HashingEmbedder) -> KnowledgeBase:
    return KnowledgeBase(SqlKnowledgeStore(db), embedder, SMALL)


def add(kb: KnowledgeBase, ws: str, agent: str, data: bytes, title: str = "Handbook") -> Any:
    return asyncio.run(kb.add(ws, agent, data=data, media_type="text/markdown", title=title))


def search(kb: KnowledgeBase, ws: str, agent: str, query: str, **options: Any) -> Any:
    return asyncio.run(kb.search(ws, agent, query, **options))


def store_of(kb: KnowledgeBase) -> SqlKnowledgeStore:
    assert isinstance(kb.store, SqlKnowledgeStore)
    return kb.store


def test_documents_are_created_replaced_kept_and_deleted(knowledge: KnowledgeBase) -> None:
    store = store_of(knowledge)
    created = add(knowledge, "ws_A", "agt_A1", doc("alpha", 3))
    assert created.outcome == "created" and created.document.chunk_count == 3
    assert created.document.id.startswith("kdoc_")
    first_ids = {c.chunk_id for c in store.load_chunks("ws_A", "agt_A1")}
    assert len(first_ids) == 3 and all(i.startswith("kchk_") for i in first_ids)
    generation = store.generation("ws_A", "agt_A1")

    assert add(knowledge, "ws_A", "agt_A1", doc("alpha", 3)).outcome == "unchanged"
    assert store.generation("ws_A", "agt_A1") == generation

    replaced = add(knowledge, "ws_A", "agt_A1", doc("beta", 5))
    assert replaced.outcome == "replaced"
    assert replaced.document.id == created.document.id and replaced.document.revision == 2
    chunks = store.load_chunks("ws_A", "agt_A1")
    assert len(chunks) == 5 and not first_ids & {c.chunk_id for c in chunks}
    assert all("beta" in c.text for c in chunks)
    assert store.generation("ws_A", "agt_A1") == generation + 1
    hit = search(knowledge, "ws_A", "agt_A1", "rule number 4", mode="bm25", k=1)[0]
    assert hit.citation.heading_path == ("Handbook", "Part 4")
    assert hit.citation.title == "Handbook" and hit.citation.document_id == created.document.id
    assert hit.citation.locator.label == "lines 19-21"

    assert store.delete_document("ws_A", "agt_A1", created.document.id)
    assert not store.delete_document("ws_A", "agt_A1", created.document.id)
    assert store.load_chunks("ws_A", "agt_A1") == []
    assert search(knowledge, "ws_A", "agt_A1", "refund") == []


def test_reindexing_is_atomic_for_concurrent_readers(
    db: Database, knowledge: KnowledgeBase, embedder: HashingEmbedder, database_url: str
) -> None:
    """Readers (this process's store, and a second "process" with its own engine and cache)
    always see every old chunk or every new one, never a mix and never none."""
    writer = store_of(knowledge)
    versions = []
    for marker, sections in (("alpha", 4), ("beta", 7)):
        data = doc(marker, sections)
        chunks = knowledge.chunk(data, "text/markdown")
        vectors = asyncio.run(embedder.embed([c.indexed_text for c in chunks], kind="passage"))
        embedded = [EmbeddedChunk(c, vectors[i]) for i, c in enumerate(chunks)]
        draft = DocumentDraft(
            "Handbook", "text/markdown", marker * 8, len(data), None, embedder.name, marker
        )
        versions.append((draft, embedded, frozenset(c.text for c in chunks)))
    writer.write_document("ws_A", "agt_A1", versions[0][0], versions[0][1])
    allowed = {versions[0][2], versions[1][2]}
    other_db = Database(database_url)
    other = SqlKnowledgeStore(other_db)
    seen: list[frozenset[str]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read(load: Any) -> None:
        try:
            while not done.is_set():
                seen.append(frozenset(load()))
        except BaseException as exc:
            errors.append(exc)
            raise

    readers = [
        threading.Thread(
            target=read,
            args=(lambda: [c.text for c in writer.load_chunks("ws_A", "agt_A1")],),
        ),
        threading.Thread(
            target=read, args=(lambda: [c.text for c in other.index("ws_A", "agt_A1").chunks],)
        ),
    ]
    for reader in readers:
        reader.start()
    try:
        for round_ in range(30):
            draft, embedded, _ = versions[(round_ + 1) % 2]
            writer.write_document("ws_A", "agt_A1", draft, embedded)
    finally:
        done.set()
        for reader in readers:
            reader.join()
        other_db.dispose()
    assert not errors
    assert len(seen) > 30
    assert set(seen) <= allowed, [sorted(s)[:1] for s in set(seen) - allowed]
    assert set(seen) == allowed  # the readers did observe both versions


def test_a_failure_before_or_during_the_write_leaves_the_old_chunks(
    knowledge: KnowledgeBase, embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(knowledge)
    add(knowledge, "ws_A", "agt_A1", doc("alpha", 3))
    before = [(c.chunk_id, c.text) for c in store.load_chunks("ws_A", "agt_A1")]
    generation = store.generation("ws_A", "agt_A1")

    embedder.fail = ModelUnavailable("the embedding model crashed")
    with pytest.raises(ModelUnavailable):
        add(knowledge, "ws_A", "agt_A1", doc("beta", 3))
    embedder.fail = None

    real_rows = knowledge_store._chunk_rows
    calls = 0

    def rows_then_crash(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        real_rows(*args)
        raise RuntimeError("the disk filled up after the old chunks were deleted")

    monkeypatch.setattr(knowledge_store, "_chunk_rows", rows_then_crash)
    with pytest.raises(RuntimeError, match="disk"):
        add(knowledge, "ws_A", "agt_A1", doc("gamma", 3))
    assert calls == 1
    assert [(c.chunk_id, c.text) for c in store.load_chunks("ws_A", "agt_A1")] == before
    assert store.generation("ws_A", "agt_A1") == generation
    document = store.find_document("ws_A", "agt_A1", "Handbook")
    assert document is not None and document.revision == 1
    assert search(knowledge, "ws_A", "agt_A1", "alpha rule", mode="bm25")[0].text == before[0][1]


def test_search_never_crosses_agents_or_workspaces(knowledge: KnowledgeBase) -> None:
    store = store_of(knowledge)
    add(knowledge, "ws_A", "agt_A1", b"The alpha refund rule for agent one.", "A1")
    add(knowledge, "ws_A", "agt_A2", b"The alpha refund rule for agent two.", "A2")
    b_doc = add(knowledge, "ws_B", "agt_B1", b"The alpha refund rule of workspace B.", "B1")
    for mode in ("bm25", "vector", "hybrid"):
        hits = search(knowledge, "ws_A", "agt_A1", "alpha refund rule", mode=mode, k=10)
        assert [h.citation.title for h in hits] == ["A1"], mode
    # an agent id of another workspace is not found from this one
    assert search(knowledge, "ws_A", "agt_B1", "alpha refund rule") == []
    assert store.find_document("ws_A", "agt_B1", "B1") is None
    assert not store.delete_document("ws_A", "agt_B1", b_doc.document.id)
    with pytest.raises(NotFound):
        add(knowledge, "ws_A", "agt_B1", b"# Hijack\n\nsomething")
    with pytest.raises(NotFound):
        add(knowledge, "ws_A", "agt_missing", b"# Nobody\n\nsomething")
    assert [h.citation.title for h in search(knowledge, "ws_B", "agt_B1", "alpha")] == ["B1"]


def test_a_second_process_sees_every_change_on_its_next_search(
    knowledge: KnowledgeBase, embedder: HashingEmbedder, database_url: str
) -> None:
    other_db = Database(database_url)
    try:
        other = KnowledgeBase(SqlKnowledgeStore(other_db), embedder, SMALL)
        add(knowledge, "ws_A", "agt_A1", doc("alpha", 2))
        assert "alpha" in search(other, "ws_A", "agt_A1", "rule", mode="bm25")[0].text
        assert "alpha" in search(other, "ws_A", "agt_A1", "rule", mode="bm25")[0].text
        assert store_of(other).cache.loads == 1  # the second search used the cached index
        add(knowledge, "ws_A", "agt_A1", doc("beta", 2))
        assert "beta" in search(other, "ws_A", "agt_A1", "rule", mode="bm25")[0].text
        assert store_of(other).cache.loads == 2
        document = store_of(knowledge).find_document("ws_A", "agt_A1", "Handbook")
        assert document is not None
        store_of(knowledge).delete_document("ws_A", "agt_A1", document.id)
        assert search(other, "ws_A", "agt_A1", "rule", mode="bm25") == []
    finally:
        other_db.dispose()


def test_deleting_the_material_keeps_the_document(db: Database, knowledge: KnowledgeBase) -> None:
    with db.session() as session:
        session.add(
            t.Material(
                id="mat_1",
                workspace_id="ws_A",
                filename="handbook.md",
                media_type="text/markdown",
                size_bytes=10,
                sha256="0" * 64,
                created_by_key_id="key_1",
            )
        )
    asyncio.run(
        knowledge.add(
            "ws_A",
            "agt_A1",
            data=doc("alpha", 2),
            media_type="text/markdown",
            title="handbook.md",
            material_id="mat_1",
        )
    )
    assert search(knowledge, "ws_A", "agt_A1", "rule")[0].citation.material_id == "mat_1"
    with db.tenant_session("ws_A") as session:
        material = session.get(t.Material, "mat_1")
        session.delete(material)
    with db.tenant_session("ws_A") as session:
        row = session.scalar(select(t.KnowledgeDocument))
        assert row is not None and row.material_id is None
    store = store_of(knowledge)
    store.cache.invalidate(("ws_A", "agt_A1"))
    hits = search(knowledge, "ws_A", "agt_A1", "rule")
    assert hits and hits[0].citation.material_id is None


def test_the_migration_goes_down_and_up(db: Database) -> None:
    config = alembic_config(db.engine)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    tables = set(inspect(db.engine).get_table_names())
    assert not {"knowledge_indexes", "knowledge_documents", "knowledge_chunks"} & tables
    upgrade(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {"knowledge_indexes", "knowledge_documents", "knowledge_chunks"} <= tables
