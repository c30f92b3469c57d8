"""The durable-jobs port: what the rest of Deputy uses, with no import of the engine behind it.

A *job* is a named function of a `JobContext` and plain arguments. Inside it, each `ctx.step(...)`
is checkpointed: after a crash the job is re-run from the start, completed steps return their
recorded result without running again, and the step that was interrupted runs again. So a step
must be safe to repeat when it did not finish (idempotent, or keyed by `ctx.run_id` and its name),
and the code between steps must be deterministic.

    from deputy.jobs import JobContext, job

    @job("ingest-document")
    def ingest(ctx: JobContext, document_id: str) -> int:
        text = ctx.step("parse", parse_document, document_id)
        ctx.sleep(1.0)                       # durable: not slept again after a restart
        approved = ctx.recv("approval", timeout=3600.0)
        return ctx.step("index", index_text, text) if approved else 0

    handle = runner.start_run(ingest.call("doc-1"), run_id="ingest:doc-1")   # idempotent id
    runner.result(handle, timeout=60.0)

Arguments, step results and job results are stored by the engine: keep them small plain data.
Every call of the port is synchronous and blocks on the jobs database (`result` for as long as
the run takes): from async code call it through a thread (`await anyio.to_thread.run_sync(...)`,
or a plain `def` FastAPI endpoint); on an event-loop thread the DBOS implementation refuses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Protocol, TypeAlias, TypeVar

from deputy.jobs.errors import UnknownJob

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

JsonValue: TypeAlias = (
    str | int | float | bool | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
)
"""A signal message: plain JSON-like data."""

RunState = Literal[
    "delayed",
    "enqueued",
    "pending",
    "success",
    "error",
    "cancelled",
    "max_recovery_attempts_exceeded",
]
FINISHED_STATES: frozenset[RunState] = frozenset(
    {"success", "error", "cancelled", "max_recovery_attempts_exceeded"}
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,119}$")


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} must be 1-120 characters of letters, digits and '_.:-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    job: str
    status: RunState
    queue: str | None = None
    executor_id: str | None = None
    error: str | None = None
    """`ExceptionType: message` when the run ended in error."""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES


@dataclass(frozen=True)
class JobCall(Generic[R_co]):
    """A job name with the arguments of one run; made by `Job.call`."""

    job: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class RunHandle(Generic[R_co]):
    """The id of a run, typed by its job's result. `RunHandle[object](run_id)` from a bare id."""

    run_id: str


@dataclass(frozen=True)
class QueueSpec:
    """A named queue. `concurrency`: runs at once across all workers; `worker_concurrency`: per
    worker. `None` is unlimited."""

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None

    def __post_init__(self) -> None:
        _check_name("queue", self.name)
        for limit in (self.concurrency, self.worker_concurrency):
            if limit is not None and limit < 1:
                raise ValueError(f"queue {self.name!r}: concurrency limits must be at least 1")
        if (
            self.concurrency is not None
            and self.worker_concurrency is not None
            and self.worker_concurrency > self.concurrency
        ):
            raise ValueError(f"queue {self.name!r}: worker_concurrency exceeds concurrency")


class JobContext(Protocol):
    """What a running job can do. Only valid inside the job function, on its own thread."""

    @property
    def run_id(self) -> str: ...

    def step(self, name: str, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn` once; its result is recorded and returned again on a replay."""
        ...

    def sleep(self, seconds: float) -> None:
        """A durable sleep: after a restart only the time that is left is slept."""
        ...

    def recv(self, topic: str, timeout: float) -> JsonValue | None:
        """The next message sent to this run on `topic`, or None after `timeout` seconds."""
        ...

    def send(self, run_id: str, topic: str, message: JsonValue) -> None:
        """Send a message to another run (recorded, so it is sent once)."""
        ...


@dataclass(frozen=True)
class Job(Generic[P, R]):
    """A registered job. `job.call(...)` builds a run request; calling it runs the function
    directly with a given context (for tests with a fake context)."""

    name: str
    fn: Callable[Concatenate[JobContext, P], R]

    def call(self, *args: P.args, **kwargs: P.kwargs) -> JobCall[R]:
        return JobCall(self.name, tuple(args), dict(kwargs))

    def __call__(self, ctx: JobContext, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(ctx, *args, **kwargs)


def _same_source(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return (
        getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
        and code_a is not None
        and code_b is not None
        and code_a.co_filename == code_b.co_filename
    )


class JobRegistry:
    """Job and queue definitions, collected at import time and handed to a runner at start."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job[Any, Any]] = {}
        self._queues: dict[str, QueueSpec] = {}

    def job(self, name: str) -> Callable[[Callable[Concatenate[JobContext, P], R]], Job[P, R]]:
        """Decorator: register a job function under `name` (the stable name stored with runs)."""
        _check_name("job", name)

        def register(fn: Callable[Concatenate[JobContext, P], R]) -> Job[P, R]:
            existing = self._jobs.get(name)
            if existing is not None and not _same_source(existing.fn, fn):
                raise ValueError(f"job {name!r} is already registered by {existing.fn!r}")
            defined = Job(name, fn)
            self._jobs[name] = defined
            return defined

        return register

    def queue(
        self, name: str, *, concurrency: int | None = None, worker_concurrency: int | None = None
    ) -> QueueSpec:
        spec = QueueSpec(name, concurrency, worker_concurrency)
        existing = self._queues.get(name)
        if existing is not None and existing != spec:
            raise ValueError(f"queue {name!r} is already defined as {existing}")
        self._queues[name] = spec
        return spec

    def get(self, name: str) -> Job[Any, Any]:
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJob(name) from None

    def jobs(self) -> list[Job[Any, Any]]:
        return list(self._jobs.values())

    def queues(self) -> list[QueueSpec]:
        return list(self._queues.values())


default_registry = JobRegistry()
"""The registry of the `job` and `define_queue` shortcuts; runners use it unless given another."""

job = default_registry.job
define_queue = default_registry.queue


class JobClient(Protocol):
    """Submit and observe runs; implemented both by a runner and by a client that only talks to
    the jobs database (so a process can enqueue work that workers execute)."""

    def enqueue(
        self, queue: str | QueueSpec, call: JobCall[R], *, run_id: str | None = None
    ) -> RunHandle[R]:
        """Put a run on a queue; a worker listening to it starts it within its limits. With a
        `run_id` already used by a run of the same job, returns that run and starts nothing."""
        ...

    def send(self, run_id: str, topic: str, message: JsonValue) -> None: ...

    def status(self, run_id: str) -> RunStatus:
        """Raises RunNotFound."""
        ...

    def result(self, run: RunHandle[R], *, timeout: float) -> R:
        """Wait for the run to finish; raises JobFailed, JobCancelled or ResultTimeout."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop the run at its next step; a finished or unknown run is left as it is."""
        ...

    def ping(self) -> None:
        """Readiness: raises JobsUnavailable unless the jobs database answers (and, for a runner,
        the engine is running and this worker's heartbeat is current)."""
        ...


class JobRunner(JobClient, Protocol):
    """Runs jobs in this process: in the API server (embedded) or a worker."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def start_run(self, call: JobCall[R], *, run_id: str | None = None) -> RunHandle[R]:
        """Start a run in this process now. Idempotent by `run_id`, like `enqueue`."""
        ...
