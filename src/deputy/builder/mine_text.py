"""Lexical tools for transcript mining: content words, TF-IDF vectors and average-linkage
clustering.

Conversations are grouped by what customers say, not by labels (a transcript file carries no
answer key), so the grouping is lexical: content words (stop words and greetings dropped, a
light English suffix stripping so "rides" meets "ride" and "booking" meets "book"), weighted by
TF-IDF, compared by cosine. Average linkage merges the two most similar groups until no pair
is more similar than a threshold; it is deterministic (ties go to the lower indices)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from deputy.knowledge.text import tokenize

Matrix = npt.NDArray[np.float64]

_STOP = """a about above after again against all am an and any are aren as at be because been
    before being below between both but by can could couldn did didn do does doesn doing don
    down during each few for from further had hadn has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just ll me mightn more most
    mustn my myself need needn no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan she should shouldn so some such t than that the
    their theirs them themselves then there these they this those through to too under until
    up very was wasn we were weren what when where which while who whom why will with won
    would wouldn y you your yours yourself yourselves also get got like want wanted would
    please could may might must shall let know think yes yeah ok okay sure well oh um uh hmm
    im ive id its dont cant wont thats whats theres one two much many really just still"""
_GREETINGS = """hi hello hey hiya howdy greetings good morning afternoon evening day thanks
    thank thx bye goodbye cheers dear sir madam there great nice"""
STOP_WORDS = frozenset(_STOP.split())
GREETINGS = frozenset(_GREETINGS.split())
_SUFFIXES = ("ings", "ing", "ies", "ied", "es", "ed", "s")


def stem(word: str) -> str:
    """A light English suffix stripping ("bookings" → "book", "rides" → "ride", "reserved" and
    "reserve" → "reserv"): enough to meet plural and tense variants; short words stay whole."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                word += "y"
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def content_words(text: str) -> list[str]:
    """Stemmed words of `text` without stop words, greetings, numbers and single letters."""
    return [
        stem(token)
        for token in tokenize(text.replace("'", ""))
        if token not in STOP_WORDS
        and token not in GREETINGS
        and len(token) > 1
        and not token.isdigit()
    ]


class TfIdf:
    """TF-IDF vectors (sublinear tf, smoothed idf, L2-normalised) over a fixed vocabulary."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        frequency: Counter[str] = Counter()
        for words in documents:
            frequency.update(set(words))
        self.vocabulary = {word: index for index, word in enumerate(sorted(frequency))}
        size = len(documents)
        self.idf = np.array(
            [math.log((1 + size) / (1 + frequency[word])) + 1 for word in sorted(frequency)],
            dtype=np.float64,
        )

    def vector(self, words: Sequence[str], weight: float = 1.0) -> Matrix:
        row = np.zeros(len(self.vocabulary), dtype=np.float64)
        for word, count in Counter(words).items():
            index = self.vocabulary.get(word)
            if index is not None:
                row[index] = (1 + math.log(count)) * self.idf[index] * weight
        return row

    def matrix(self, documents: Sequence[Sequence[str]]) -> Matrix:
        if not documents:
            return np.zeros((0, len(self.vocabulary)), dtype=np.float64)
        return normalise(np.stack([self.vector(words) for words in documents]))

    def top_terms(self, centroid: Matrix, k: int) -> tuple[str, ...]:
        """The `k` heaviest words of a (centroid) vector, heaviest first, ties alphabetical."""
        words = sorted(self.vocabulary, key=lambda w: (-centroid[self.vocabulary[w]], w))
        return tuple(w for w in words[:k] if centroid[self.vocabulary[w]] > 0)


def normalise(rows: Matrix) -> Matrix:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: Matrix = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return normalised


def average_linkage(vectors: Matrix, threshold: float) -> list[list[int]]:
    """Groups of row indices: average-linkage agglomerative clustering on cosine similarity,
    merging while the best pair of groups is at least `threshold` similar. Groups come out
    largest first, then by their first member; members are sorted."""
    count = vectors.shape[0]
    if count == 0:
        return []
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(count, dtype=np.float64)
    members: dict[int, list[int]] = {index: [index] for index in range(count)}
    active = np.ones(count, dtype=bool)
    while len(members) > 1:
        masked = np.where(active[:, None] & active[None, :], similarity, -np.inf)
        flat = int(np.argmax(masked))
        left, right = divmod(flat, count)
        if masked[left, right] < threshold:
            break
        left, right = min(left, right), max(left, right)
        # Lance-Williams update for average linkage: size-weighted mean of the two rows
        merged = (sizes[left] * similarity[left] + sizes[right] * similarity[right]) / (
            sizes[left] + sizes[right]
        )
        similarity[left, :] = merged
        similarity[:, left] = merged
        similarity[left, left] = -np.inf
        active[right] = False
        sizes[left] += sizes[right]
        members[left].extend(members.pop(right))
    groups = [sorted(group) for group in members.values()]
    return sorted(groups, key=lambda group: (-len(group), group[0]))


def cosine(left: Matrix, right: Matrix) -> float:
    norm = float(np.linalg.norm(left) * np.linalg.norm(right))
    return float(left @ right) / norm if norm > 0 else 0.0
