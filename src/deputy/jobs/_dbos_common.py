"""What the DBOS runner and the DBOS client share: names, status mapping, waiting for a result."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast, get_args

from dbos import WorkflowStatus
from dbos._error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

import deputy
from deputy.jobs.errors import JobCancelled, JobFailed, JobsUnavailable, ResultTimeout, RunNotFound
from deputy.jobs.port import QueueSpec, RunState, RunStatus
from deputy.store.db import enable_sqlite_wal, sqlite_path

APP_NAME = "deputy"
JOBS_APP_VERSION = f"deputy-{deputy.__version__}"
"""Pinned DBOS application version. DBOS only recovers runs of its own version, and its default
(a hash of the registered code) differs between processes that import different job modules, so
a restarted or second worker could not resume the runs of the first. Runs started by one Deputy
release are resumed by workers of the same release."""

_STATES: frozenset[str] = frozenset(get_args(RunState))


def prepare_jobs_database(url: str) -> None:
    """Put a SQLite jobs database in WAL mode before DBOS opens it (readers never block the
    writer, and a second process can use it)."""
    path = sqlite_path(url)
    if path is not None:
        enable_sqlite_wal(path)


def probe(url: str, timeout: float = 5.0) -> None:
    """Open one connection to the jobs database and run a trivial query; JobsUnavailable if not."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    connect_args: dict[str, Any] = (
        {"timeout": timeout} if url.startswith("sqlite") else {"connect_timeout": int(timeout)}
    )
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise JobsUnavailable(f"the jobs database does not answer: {exc}") from exc
    finally:
        engine.dispose()


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_event_loop(operation: str) -> None:
    """The port is synchronous and its calls block on the database (`result` for as long as the
    run takes): from async code, call it through a thread (`await anyio.to_thread.run_sync(...)`
    or a plain `def` FastAPI endpoint) instead of blocking the event loop."""
    if _event_loop_running():
        raise RuntimeError(
            f"deputy.jobs {operation}() blocks; call it from a worker thread "
            "(e.g. `await anyio.to_thread.run_sync(...)`), not on the event loop"
        )


def off_event_loop(fn: Callable[[], None]) -> None:
    """Run `fn` here, or, when this thread runs an event loop (a FastAPI lifespan), on a helper
    thread while this one waits: DBOS refuses some of its calls on an event-loop thread."""
    if not _event_loop_running():
        fn()
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="deputy-jobs-lifecycle")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def queue_name(queue: str | QueueSpec) -> str:
    return queue.name if isinstance(queue, QueueSpec) else queue


def _from_epoch_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def to_run_status(status: WorkflowStatus) -> RunStatus:
    state = status.status.lower()
    if state not in _STATES:  # a status this version of Deputy does not know
        raise ValueError(f"unknown run status {status.status!r}")
    error = status.error
    return RunStatus(
        run_id=status.workflow_id,
        job=status.name,
        status=cast(RunState, state),
        queue=status.queue_name,
        executor_id=status.executor_id,
        error=None if error is None else f"{type(error).__name__}: {error}",
        created_at=_from_epoch_ms(status.created_at),
        updated_at=_from_epoch_ms(status.updated_at),
    )


def wait_for_result(
    run_id: str,
    timeout: float,
    read_status: Callable[[], RunStatus | None],
    read_result: Callable[[], object],
) -> object:
    """Poll the run's status until it is finished (bounded by `timeout`), then read its result,
    turning the engine's errors into ours."""
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        status = read_status()
        if status is None:
            raise RunNotFound(run_id)
        if status.finished:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ResultTimeout(run_id, timeout)
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.5)
    try:
        return read_result()
    except DBOSAwaitedWorkflowCancelledError as exc:
        raise JobCancelled(run_id) from exc
    except DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded as exc:
        raise JobFailed(
            run_id, "MaxRecoveryAttemptsExceeded", "the run was interrupted too many times"
        ) from exc
    except Exception as exc:
        raise JobFailed(run_id, type(exc).__name__, str(exc)) from exc
