"""Okapi BM25 over token lists, in memory, with numpy postings.

    score(D, Q) = sum over terms t of Q:
                  idf(t) * tf(t, D) * (k1 + 1) / (tf(t, D) + k1 * (1 - b + b * |D| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

The idf is Lucene's variant: never negative, so a term in most documents still counts a
little instead of pushing documents down. `k1 = 1.2` and `b = 0.75` are the usual defaults. A
query term given twice counts twice. Tokens come from `deputy.knowledge.text.tokenize`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float32]


class BM25Index:
    def __init__(self, documents: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75):
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError("need k1 >= 0 and 0 <= b <= 1")
        self.k1 = k1
        self.b = b
        self.size = len(documents)
        lengths = np.array([len(tokens) for tokens in documents], dtype=np.float32)
        average = float(lengths.mean()) if self.size and lengths.sum() > 0 else 1.0
        self._norm = k1 * (1 - b + b * lengths / average)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for index, tokens in enumerate(documents):
            for term, count in Counter(tokens).items():
                rows, counts = postings.setdefault(term, ([], []))
                rows.append(index)
                counts.append(count)
        self._postings: dict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]] = {
            term: (np.array(rows, dtype=np.int32), np.array(counts, dtype=np.float32))
            for term, (rows, counts) in postings.items()
        }

    def idf(self, term: str) -> float:
        posting = self._postings.get(term)
        frequency = 0 if posting is None else len(posting[0])
        return math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5))

    def scores(self, query: Sequence[str]) -> Scores:
        """The score of every document for the query tokens (0 where no term matches)."""
        total = np.zeros(self.size, dtype=np.float32)
        for term, repeats in Counter(query).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            rows, counts = posting
            weight = self.idf(term) * repeats
            total[rows] += weight * counts * (self.k1 + 1) / (counts + self._norm[rows])
        return total

    def top(self, query: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Up to `k` `(document index, score)` pairs with a positive score, best first; ties
        go to the earlier document."""
        if k <= 0 or self.size == 0:
            return []
        scores = self.scores(query)
        return top_k(scores, k)


def top_k(scores: Scores, k: int, *, positive_only: bool = True) -> list[tuple[int, float]]:
    """The `k` best scores (only positive ones unless told otherwise) as `(index, score)`,
    best first, ties by lower index."""
    if k <= 0:
        return []
    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(scores.size)
    if candidates.size > k:
        # argpartition narrows to the k best (plus ties at the cut) before the exact sort
        cut = np.partition(scores[candidates], candidates.size - k)[candidates.size - k]
        candidates = candidates[scores[candidates] >= cut]
    order = sorted(candidates.tolist(), key=lambda index: (-float(scores[index]), index))
    return [(index, float(scores[index])) for index in order[:k]]
