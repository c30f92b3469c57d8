"""The in-process search index of one agent's knowledge, and the cache that keeps one per agent.

`ChunkIndex` holds an agent's chunks with a BM25 index over their indexed text and a matrix of
their vectors (per embedding model: chunks embedded by another model than the query's are
searched by BM25 only). It is immutable: a change to the agent's knowledge builds a new one.

`IndexCache` keeps the most recently used indexes, each tagged with the generation it was
loaded at; a caller reads the agent's current generation from the database first and gets the
cached index only when the tags match, otherwise the index is rebuilt by the loader it gives.
Reading the generation *before* the chunks keeps this safe when another process writes in
between: the index may then be newer than its tag, which costs one needless reload, never a
stale answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deputy.knowledge.bm25 import BM25Index, top_k
from deputy.knowledge.document import Locator
from deputy.knowledge.fusion import CANDIDATES, RetrievalMode, reciprocal_rank_fusion
from deputy.knowledge.text import tokenize

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a retrieved chunk comes from: `char_start:char_end` of the document's parsed text
    (see `deputy.knowledge.document`), under `heading_path`, at `locator` in the file."""

    document_id: str
    title: str
    material_id: str | None
    heading_path: tuple[str, ...]
    char_start: int
    char_end: int
    locator: Locator


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    chunk_id: str
    text: str
    indexed_text: str
    citation: Citation
    embedding_model: str
    vector: Vector | None


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """One search hit. `score` is the BM25 score, the cosine similarity or the fused RRF score
    depending on the mode; compare scores only within one answer."""

    chunk_id: str
    text: str
    score: float
    citation: Citation


class ChunkIndex:
    def __init__(self, chunks: Sequence[IndexedChunk]) -> None:
        self.chunks = tuple(chunks)
        self._bm25 = BM25Index([tokenize(chunk.indexed_text) for chunk in self.chunks])
        by_model: dict[tuple[str, int], tuple[list[int], list[Vector]]] = {}
        for row, chunk in enumerate(self.chunks):
            if chunk.vector is not None:
                key = (chunk.embedding_model, chunk.vector.shape[0])
                rows, vectors = by_model.setdefault(key, ([], []))
                rows.append(row)
                vectors.append(chunk.vector)
        self._vectors = {
            key: (np.array(rows, dtype=np.int64), np.stack(vectors).astype(np.float32))
            for key, (rows, vectors) in by_model.items()
        }

    def __len__(self) -> int:
        return len(self.chunks)

    def rank_bm25(self, query: str, depth: int) -> list[tuple[int, float]]:
        return self._bm25.top(tokenize(query), depth)

    def rank_vector(self, vector: Vector, model: str, depth: int) -> list[tuple[int, float]]:
        entry = self._vectors.get((model, vector.shape[0]))
        if entry is None:
            return []
        rows, matrix = entry
        similarities = (matrix @ vector.astype(np.float32)).astype(np.float32)
        return [
            (int(rows[i]), score) for i, score in top_k(similarities, depth, positive_only=False)
        ]

    def search(
        self,
        query: str,
        *,
        k: int,
        mode: RetrievalMode,
        vector: Vector | None = None,
        model: str | None = None,
        depth: int = CANDIDATES,
    ) -> list[RetrievedChunk]:
        if mode != "bm25" and (vector is None or model is None):
            raise ValueError(f"{mode} search needs the query vector and its model")
        depth = max(depth, k)
        if mode == "bm25":
            ranked = self.rank_bm25(query, k)
        elif mode == "vector":
            assert vector is not None and model is not None
            ranked = self.rank_vector(vector, model, k)
        else:
            assert vector is not None and model is not None
            lexical = [row for row, _ in self.rank_bm25(query, depth)]
            semantic = [row for row, _ in self.rank_vector(vector, model, depth)]
            ranked = reciprocal_rank_fusion([lexical, semantic])[:k]
        return [
            RetrievedChunk(chunk.chunk_id, chunk.text, round(score, 6), chunk.citation)
            for row, score in ranked
            for chunk in (self.chunks[row],)
        ]


@dataclass
class _Entry:
    generation: int
    index: ChunkIndex


class IndexCache:
    """Least-recently-used indexes, bounded by their total number of chunks (an index larger
    than the bound is still kept while it is the only one). Thread-safe; one loader runs per
    key at a time."""

    def __init__(self, max_chunks: int = 200_000) -> None:
        if max_chunks < 1:
            raise ValueError("max_chunks must be positive")
        self.max_chunks = max_chunks
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self.loads = 0  # how many times a loader ran (for tests and metrics)

    def get(self, key: Hashable, generation: int) -> ChunkIndex | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.generation != generation:
                return None
            self._entries.move_to_end(key)
            return entry.index

    def get_or_load(
        self, key: Hashable, generation: int, loader: Callable[[], ChunkIndex]
    ) -> ChunkIndex:
        index = self.get(key, generation)
        if index is not None:
            return index
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            index = self.get(key, generation)  # another thread may have loaded it meanwhile
            if index is None:
                index = loader()
                self.loads += 1
                self.put(key, generation, index)
            return index

    def put(self, key: Hashable, generation: int, index: ChunkIndex) -> None:
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.generation > generation:
                return  # a newer one was loaded meanwhile
            self._entries[key] = _Entry(generation, index)
            self._entries.move_to_end(key)
            total = sum(len(entry.index) for entry in self._entries.values())
            while total > self.max_chunks and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                total -= len(evicted.index)

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
