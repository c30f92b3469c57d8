"""Search modes and reciprocal rank fusion (RRF).

    rrf(d) = Σ_{lists L containing d} 1 / (RRF_K + rank_L(d))      (ranks start at 1)

RRF fuses rankings without comparing their scores, which live on unrelated scales (BM25 is
unbounded, cosine similarity lies in [-1, 1]). `RRF_K = 60` is the constant of Cormack, Clarke
and Büttcher (SIGIR 2009), where it worked well across collections; it damps the difference
between the first few ranks so that a chunk both rankers like beats one only one of them puts
first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

RetrievalMode = Literal["bm25", "vector", "hybrid"]
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)
RRF_K = 60
CANDIDATES = 50
"""How deep each ranking goes before fusion."""


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: int = RRF_K
) -> list[tuple[int, float]]:
    """Items of all `rankings` (each best first, no repeats) as `(item, fused score)`, best
    first; equal scores are ordered by the best rank the item reached, then by the item."""
    if k < 0:
        raise ValueError("the RRF constant must not be negative")
    scores: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best_rank[pair[0]], pair[0]))
