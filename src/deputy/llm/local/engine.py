"""One inference queue per process for the local models.

On a small CPU box two generations at once are slower than one after the other and can run the
machine out of memory, so every local load and generation runs on one worker thread, in the order
they were submitted. Async callers await their turn without blocking the event loop; a caller that
gives up is removed from the queue, or, when its generation is already running, stops it at the
next token. Loaded models stay in a small LRU bounded by a count and a memory budget.

The engine records when each job was queued, started and finished (monotonic clock), which is how
tests show that generations never overlap, and how benchmarks read llama.cpp's own timings.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from deputy.llm.errors import ModelError, ModelOutputInvalid, ModelUnavailable
from deputy.llm.local.backend import LlamaServer, LoadOptions, load_server
from deputy.llm.local.hardware import total_memory_bytes

T = TypeVar("T")
Outcome = Literal["ok", "error", "cancelled"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What to load: a verified GGUF, how to run it, and roughly how much memory it takes."""

    name: str
    options: LoadOptions
    estimated_bytes: int


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    job: int
    model: str
    queued_at: float  # time.monotonic()
    started_at: float
    finished_at: float
    outcome: Outcome
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    prompt_seconds: float = 0.0  # llama.cpp's own timings of prompt processing
    generation_seconds: float = 0.0  # ... and of token generation


@dataclass(frozen=True, slots=True)
class LoadRecord:
    model: str
    path: str
    started_at: float
    finished_at: float

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    cached_tokens: int
    output_tokens: int
    record: GenerationRecord


@dataclass
class _Loaded:
    spec: ModelSpec
    server: LlamaServer


class GenerationCancelled(Exception):
    """The caller went away; the generation was stopped (internal, never reaches callers)."""


@dataclass
class _Stream:
    on_text: Callable[[str], None] | None
    cancel: threading.Event
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    failure: BaseException | None = None

    def on_chunk(self, chunk: Any) -> bool:
        """Called by llama.cpp for each streamed chunk; returning True stops the generation."""
        try:
            data = json.loads(chunk) if isinstance(chunk, str | bytes) else chunk
            if not isinstance(data, dict):
                return self.cancel.is_set()
            if "error" in data:
                error = data["error"]
                self.error = error if isinstance(error, dict) else {"message": str(error)}
                return True
            for choice in data.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    self.parts.append(content)
                    if self.on_text is not None:
                        self.on_text(content)
                if choice.get("finish_reason"):
                    self.finish_reason = str(choice["finish_reason"])
            if data.get("usage"):
                self.usage = data["usage"]
            if data.get("timings"):
                self.timings = data["timings"]
        except BaseException as exc:  # never let an exception cross into native code
            self.failure = exc
            return True
        return self.cancel.is_set()


class LocalEngine:
    """The process's local inference queue and its loaded models. Use `LocalEngine.shared()`
    in the application; tests may build their own (with a fake `loader`)."""

    def __init__(
        self,
        *,
        memory_budget_bytes: int | None = None,
        max_loaded: int = 2,
        history: int = 1024,
        loader: Callable[[LoadOptions], LlamaServer] = load_server,
    ) -> None:
        self.memory_budget_bytes = memory_budget_bytes or total_memory_bytes() // 2
        self.max_loaded = max(1, max_loaded)
        self._loader = loader
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deputy-local-llm")
        self._loaded: OrderedDict[LoadOptions, _Loaded] = OrderedDict()  # worker thread only
        self._records: deque[GenerationRecord] = deque(maxlen=history)
        self._loads: deque[LoadRecord] = deque(maxlen=history)
        self._records_lock = threading.Lock()
        self._jobs = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self._running = 0
        self._waiting = 0

    # -- the queue ---------------------------------------------------------------------------

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self._closed:
                raise ModelUnavailable("the local model engine is shut down")
            self._waiting += 1
            future = self._executor.submit(self._exclusive, fn)
        future.add_done_callback(self._forget_if_cancelled)
        return future

    def _forget_if_cancelled(self, future: Future[Any]) -> None:
        if future.cancelled():  # only a job that never started can be cancelled
            with self._lock:
                self._waiting -= 1

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for their turn (the running one not included)."""
        return self._waiting

    def _exclusive(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self._waiting -= 1
        self._running += 1
        try:
            assert self._running == 1, "two local jobs ran at once"
            return fn()
        finally:
            self._running -= 1

    async def call(self, fn: Callable[[], T], cancel: threading.Event | None = None) -> T:
        """Run `fn` on the inference thread when its turn comes; the event loop stays free."""
        future = self.submit(fn)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if cancel is not None:
                cancel.set()
            raise

    # -- generation (inference thread) -------------------------------------------------------

    def generate(
        self,
        spec: ModelSpec,
        body: dict[str, Any],
        *,
        queued_at: float,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        """One streamed chat completion on `spec`'s model. Must run on the inference thread
        (submit it); `on_text` gets each piece of text as it is generated."""
        job = next(self._jobs)
        if cancel.is_set():
            now = time.monotonic()
            record = GenerationRecord(job, spec.name, queued_at, now, now, "cancelled")
            with self._records_lock:
                self._records.append(record)
            raise GenerationCancelled
        server = self._server_for(spec)
        stream = _Stream(on_text, cancel)
        started = time.monotonic()
        try:
            server.handle_chat_completions(
                {**body, "stream": True, "stream_options": {"include_usage": True}},
                stream.on_chunk,
            )
        except ValueError as exc:
            self._record(job, spec, queued_at, started, "error", stream)
            raise _request_error(str(exc)) from exc
        outcome: Outcome = "cancelled" if cancel.is_set() else "ok"
        if stream.error is not None or stream.failure is not None:
            outcome = "error"
        record = self._record(job, spec, queued_at, started, outcome, stream)
        if stream.failure is not None:
            raise ModelError(f"local generation failed: {stream.failure}") from stream.failure
        if stream.error is not None:
            raise _server_error(stream.error)
        if outcome == "cancelled":
            raise GenerationCancelled
        return Generation(
            text="".join(stream.parts),
            finish_reason=stream.finish_reason,
            prompt_tokens=record.prompt_tokens,
            cached_tokens=record.cached_tokens,
            output_tokens=record.output_tokens,
            record=record,
        )

    def _record(
        self,
        job: int,
        spec: ModelSpec,
        queued_at: float,
        started: float,
        outcome: Outcome,
        stream: _Stream,
    ) -> GenerationRecord:
        usage, timings = stream.usage, stream.timings
        details = usage.get("prompt_tokens_details") or {}
        record = GenerationRecord(
            job=job,
            model=spec.name,
            queued_at=queued_at,
            started_at=started,
            finished_at=time.monotonic(),
            outcome=outcome,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", len(stream.parts))),
            prompt_seconds=float(timings.get("prompt_ms", 0.0)) / 1000,
            generation_seconds=float(timings.get("predicted_ms", 0.0)) / 1000,
        )
        with self._records_lock:
            self._records.append(record)
        return record

    # -- loaded models (inference thread) ----------------------------------------------------

    def _server_for(self, spec: ModelSpec) -> LlamaServer:
        loaded = self._loaded.get(spec.options)
        if loaded is not None:
            self._loaded.move_to_end(spec.options)
            return loaded.server
        self._make_room(spec.estimated_bytes)
        started = time.monotonic()
        try:
            server = self._loader(spec.options)
        except Exception as exc:
            raise ModelUnavailable(
                f"llama.cpp could not load {spec.name} from {spec.options.path}: {exc}"
            ) from exc
        load = LoadRecord(spec.name, str(spec.options.path), started, time.monotonic())
        with self._records_lock:
            self._loads.append(load)
        self._loaded[spec.options] = _Loaded(spec, server)
        return server

    def _make_room(self, needed: int) -> None:
        def used() -> int:
            return sum(item.spec.estimated_bytes for item in self._loaded.values())

        while self._loaded and (
            len(self._loaded) >= self.max_loaded or used() + needed > self.memory_budget_bytes
        ):
            _, evicted = self._loaded.popitem(last=False)
            del evicted  # the server's destructor stops its native loop and frees the model

    def _unload(self, predicate: Callable[[ModelSpec], bool]) -> None:
        for options in [key for key, item in self._loaded.items() if predicate(item.spec)]:
            del self._loaded[options]

    # -- inspection and lifecycle ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def history(self) -> list[GenerationRecord]:
        """Recent generations, oldest first, with their queue/start/finish times."""
        with self._records_lock:
            return list(self._records)

    def loads(self) -> list[LoadRecord]:
        with self._records_lock:
            return list(self._loads)

    def loaded(self) -> list[ModelSpec]:
        """Models in memory, least recently used first (a snapshot taken on the queue)."""
        return self.submit(lambda: [item.spec for item in self._loaded.values()]).result()

    def unload(self, names: set[str] | None = None) -> None:
        """Free loaded models (all, or those named), after the jobs queued before this call."""
        self.submit(lambda: self._unload(lambda spec: names is None or spec.name in names)).result()

    def close(self) -> None:
        """Unload every model and stop the inference thread (after the jobs already queued)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._executor.submit(self._unload, lambda _spec: True).result()
        except RuntimeError:  # at interpreter exit the worker has already stopped
            self._unload(lambda _spec: True)
        self._executor.shutdown(wait=True)

    _shared: LocalEngine | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def running_shared(cls) -> LocalEngine | None:
        """The process-wide engine if it exists and is open (never creates it)."""
        shared = cls._shared
        return shared if shared is not None and not shared._closed else None

    @classmethod
    def shared(cls) -> LocalEngine:
        """The process-wide engine (created on first use, closed at interpreter exit)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared._closed:
                cls._shared = cls()
                atexit.register(cls._shared.close)
            return cls._shared


def _request_error(message: str) -> ModelError:
    lowered = message.lower()
    if "schema" in lowered or "grammar" in lowered or "parser" in lowered:
        return ModelOutputInvalid(f"the local model cannot decode under this schema: {message}")
    return ModelError(f"the local model refused the request: {message}")


def _server_error(error: dict[str, Any]) -> ModelError:
    message = str(error.get("message", "unknown error"))
    if error.get("type") == "exceed_context_size_error":
        return ModelError(
            f"the conversation is too long for the local model: {message}",
            details={k: error[k] for k in ("n_prompt_tokens", "n_ctx") if k in error},
        )
    return ModelError(f"local generation failed: {message}")
