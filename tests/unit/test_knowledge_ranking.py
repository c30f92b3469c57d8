"""BM25, reciprocal rank fusion, the in-memory index and its generation-checked cache."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from deputy.knowledge import Locator
from deputy.knowledge.bm25 import BM25Index, top_k
from deputy.knowledge.fusion import RRF_K, reciprocal_rank_fusion
from deputy.knowledge.index import ChunkIndex, Citation, IndexCache, IndexedChunk
from deputy.knowledge.text import tokenize


def index_of(*texts: str) -> BM25Index:
    return BM25Index([tokenize(text) for text in texts])


def test_bm25_prefers_rare_terms_and_matches_its_formula() -> None:
    docs = [
        "refund refund policy for orders",
        "order status and shipping of orders",
        "gift card balance",
    ]
    bm25 = index_of(*docs)
    # "orders" is in two documents, "gift" in one: the rarer term weighs more
    assert bm25.idf("gift") > bm25.idf("orders") > 0
    assert bm25.idf("missing") == pytest.approx(math.log(1 + 3.5 / 0.5))
    scores = bm25.scores(tokenize("refund"))
    tf, length, average = 2, 5, (5 + 6 + 3) / 3
    expected = bm25.idf("refund") * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))
    assert scores[0] == pytest.approx(expected, rel=1e-5)
    assert scores[1] == scores[2] == 0
    assert [row for row, _ in bm25.top(tokenize("gift card orders"), 3)] == [2, 0, 1]


def test_bm25_length_normalisation_and_term_saturation() -> None:
    short = "refund window"
    long = "refund window " + " ".join(f"filler{i}" for i in range(40))
    bm25 = index_of(short, long)
    ranked = bm25.top(tokenize("refund window"), 2)
    assert [row for row, _ in ranked] == [0, 1]
    repeated = index_of("refund " * 50, "refund policy", "other text")
    ten, one = repeated.scores(tokenize("refund"))[:2]
    assert ten < 3 * one  # tf saturates (k1): fifty mentions are not fifty times better


def test_bm25_is_language_neutral() -> None:
    bm25 = index_of(
        "Le remboursement est effectué sous cinq jours.",
        "退款会在五个工作日内退回原支付方式。",
        "रिफंड पांच दिनों में मिलता है।",
        "Die Rückerstattung dauert fünf Tage.",
    )
    assert bm25.top(tokenize("remboursement"), 1)[0][0] == 0
    assert bm25.top(tokenize("退款多久"), 1)[0][0] == 1
    assert bm25.top(tokenize("रिफंड"), 1)[0][0] == 2
    assert bm25.top(tokenize("RUCKERSTATTUNG"), 1)[0][0] == 3  # case and accents folded
    assert bm25.top(tokenize("nothing matches"), 5) == []


def test_top_k_orders_by_score_then_index() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.0, -0.2], dtype=np.float32)
    assert top_k(scores, 3) == [(1, pytest.approx(0.9)), (0, 0.5), (2, 0.5)]
    assert [i for i, _ in top_k(scores, 10, positive_only=False)] == [1, 0, 2, 3, 4]
    assert top_k(scores, 0) == []


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    assert [item for item, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert fused[2][1] == pytest.approx(1 / (RRF_K + 2))
    # equal scores: the item that reached the better rank first wins, then the lower id
    tie = reciprocal_rank_fusion([[7, 8], [8, 7]])
    assert [item for item, _ in tie] == [7, 8]
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ValueError, match="negative"):
        reciprocal_rank_fusion([[1]], k=-1)


def chunk(chunk_id: str, text: str, vector: list[float] | None, model: str = "m") -> IndexedChunk:
    citation = Citation("kdoc_1", "Doc", None, ("Doc",), 0, len(text), Locator("lines", 1, 2))
    array = None if vector is None else np.array(vector, dtype=np.float32)
    return IndexedChunk(chunk_id, text, text, citation, model, array)


def test_chunk_index_modes() -> None:
    index = ChunkIndex(
        [
            chunk("a", "refunds go to the original payment method", [1, 0, 0]),
            chunk("b", "exchanges need a delivered order", [0, 1, 0]),
            chunk("c", "gift cards refund at once", [0.6, 0.8, 0], model="other"),
            chunk("d", "shipping takes a week", [0.8, 0.6, 0]),
        ]
    )
    query = np.array([0.9, 0.1, 0], dtype=np.float32)
    lexical = index.search("refund gift", k=2, mode="bm25")
    assert [hit.chunk_id for hit in lexical] == ["c"]  # "refund" and "refunds" are other words
    semantic = index.search("x", k=3, mode="vector", vector=query, model="m")
    assert [hit.chunk_id for hit in semantic] == ["a", "d", "b"]  # "c" has another model
    assert semantic[0].score == pytest.approx(0.9)
    fused = index.search("exchanges", k=2, mode="hybrid", vector=query, model="m")
    # b: first by BM25 and third by vector; a: first by vector only
    assert [hit.chunk_id for hit in fused] == ["b", "a"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3), abs=1e-6)
    assert fused[0].citation.locator.label == "lines 1-2"
    with pytest.raises(ValueError, match="vector"):
        index.search("x", k=1, mode="hybrid")


def test_cache_serves_only_the_current_generation_and_evicts_least_recent() -> None:
    cache = IndexCache(max_chunks=3)
    small = ChunkIndex([chunk("a", "one", None), chunk("b", "two", None)])
    loads: list[str] = []

    def loader(name: str) -> ChunkIndex:
        loads.append(name)
        return small

    assert cache.get_or_load("x", 1, lambda: loader("x1")) is small
    assert cache.get_or_load("x", 1, lambda: loader("again")) is small
    assert cache.get("x", 2) is None
    cache.get_or_load("x", 2, lambda: loader("x2"))
    assert loads == ["x1", "x2"]
    cache.put("x", 1, ChunkIndex([]))  # an older generation never replaces a newer one
    assert cache.get("x", 2) is small
    cache.get_or_load("y", 1, lambda: loader("y1"))  # 4 chunks > 3: "x" goes
    assert cache.get("x", 2) is None and cache.get("y", 1) is small and len(cache) == 1
    cache.invalidate("y")
    assert len(cache) == 0


def test_cache_runs_one_loader_per_key_at_a_time() -> None:
    cache = IndexCache()
    calls = 0

    def slow() -> ChunkIndex:
        nonlocal calls
        calls += 1
        time.sleep(0.05)
        return ChunkIndex([chunk("a", "one", None)])

    threads = [threading.Thread(target=cache.get_or_load, args=("k", 1, slow)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == 1
