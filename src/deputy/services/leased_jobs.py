"""Background jobs that run under a lease on their row, durably: builds
(`deputy.services.build_runs`) and sandbox runs (`deputy.services.sandbox_runs`).

A job is acknowledged once its row is committed `queued`; it then runs as an asyncio task of
the server process under a lease on its row (`RowLease`): the claim (a conditional update: the
job is open, its lease free or expired) sets it `running` and counts an attempt, the lease is
renewed every third of its length, and the work is stopped when the lease is lost (expired and
taken by another process, or the job ended by someone else, e.g. cancelled). The end is written
in one update, `succeeded` with the result or `failed` with a stable error code, only while the
lease is held. A job stopped by its process's shutdown releases the lease, so it is resumed.

`LeasedJobs.keep_resuming` starts open jobs whose lease expired (or was never taken); after
`JobLimits.attempts` starts without an end, a job fails with its kind's interrupted error. The
progress a job reports is written at most every `JobLimits.progress_interval` seconds
(`ProgressWriter`), and with the end.

What differs between kinds of job is injected (`JobKind`): the table and what a claim reads of
the row and a success writes (`LeasedRows`), the work, the errors, the limits and the names in
the logs."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from deputy.domain.errors import Conflict, DeputyError
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

Row = TypeVar("Row", t.Build, t.SandboxRun, t.ImprovementRun)
"""The tables whose rows are leased jobs: they share the columns a lease reads and writes."""


class ClaimedJob(Protocol):
    """A job's inputs as claimed for one run; `attempts`: the runs started, this one included."""

    @property
    def attempts(self) -> int: ...


C = TypeVar("C", bound=ClaimedJob)
R = TypeVar("R")
P = TypeVar("P", bound=BaseModel)
E = TypeVar("E", bound=BaseModel)
T = TypeVar("T")


def run_db(db: Database, work: Callable[..., T], *args: Any) -> Awaitable[T]:
    """`db.run(work, *args)`, carried through even when the caller is cancelled: a job's lease
    writes (release on shutdown, fail, succeed) are done once handed to the database, never
    dropped while they wait for the database's thread."""
    return asyncio.shield(db.run(work, *args))


async def stop_tasks(*tasks: asyncio.Task[object]) -> None:
    """Cancel `tasks` and wait until each has ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class JobErrors(Generic[E]):
    """How a kind of job fails: its error `model`, the `subject` its messages name the job by
    ("the run failed: ..."), and the code of a job given up after too many interrupted runs."""

    model: type[E]
    subject: str
    interrupted_code: str

    def of(self, exc: Exception) -> E:
        """A failed job's stable code and message: a DeputyError's own (also when a task group
        wraps it alone), else `internal_error`, naming only the exception's type."""
        while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if isinstance(exc, DeputyError):
            return self.model(code=exc.code, message=exc.message[:2000])
        failed = f"the {self.subject} failed: {type(exc).__name__}"
        return self.model(code="internal_error", message=failed)

    def interrupted(self, attempts: int) -> E:
        given_up = f"the {self.subject} was interrupted {attempts} times and given up"
        return self.model(code=self.interrupted_code, message=given_up)


def _nothing_more(now: datetime) -> dict[str, object]:
    return {}


@dataclass(frozen=True)
class LeasedRows(Generic[Row, C, R]):
    """Where one kind of job is stored: its `table`, the statuses in which it is still to run,
    what a claim reads of the row (`claimed`), what a success writes of the result
    (`result_values`) and what else a claim sets (`claim_values`, e.g. when it first started)."""

    table: type[Row]
    open_statuses: Collection[str]
    claimed: Callable[[Row], C]
    result_values: Callable[[R], dict[str, object]]
    claim_values: Callable[[datetime], dict[str, object]] = _nothing_more

    def orphaned(self, db: Database) -> list[tuple[str, str]]:
        """(workspace, job) of every open job nobody holds."""
        table = self.table
        query = select(table.workspace_id, table.id).where(
            table.status.in_(self.open_statuses),
            or_(table.lease_owner.is_(None), table.lease_expires_at < utcnow()),
        )
        with db.session() as session:
            return [(str(workspace), str(job)) for workspace, job in session.execute(query)]


@dataclass
class RowLease(Generic[Row, C, R, P, E]):
    """The right to run one job, held by `owner` until `seconds` after the last renewal.
    Every write after the claim checks it is still held."""

    rows: LeasedRows[Row, C, R]
    db: Database
    workspace_id: str
    job_id: str
    seconds: float
    owner: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex}")
    lost: bool = False

    def claim(self) -> C | None:
        """Take the lease of an open job nobody holds: `running`, attempts + 1."""
        now = utcnow()
        table = self.rows.table
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(table)
                .where(
                    table.id == self.job_id,
                    table.status.in_(self.rows.open_statuses),
                    or_(table.lease_owner.is_(None), table.lease_expires_at < now),
                )
                .values(
                    status="running",
                    lease_owner=self.owner,
                    lease_expires_at=now + timedelta(seconds=self.seconds),
                    attempts=table.attempts + 1,
                    updated_at=now,
                    **self.rows.claim_values(now),
                )
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            return self.rows.claimed(
                session.scalars(select(table).where(table.id == self.job_id)).one()
            )

    def _update(self, **values: object) -> bool:
        table = self.rows.table
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(table)
                .where(table.id == self.job_id, table.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken, or the job ended)."""
        return self._update(lease_expires_at=utcnow() + timedelta(seconds=self.seconds))

    def release(self) -> None:
        self._update(lease_owner=None, lease_expires_at=None)

    def save_progress(self, progress: P) -> bool:
        return self._update(progress=progress.model_dump(mode="json"), updated_at=utcnow())

    def _end(self, progress: P | None, **values: object) -> bool:
        now = utcnow()
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return self._update(
            lease_owner=None, lease_expires_at=None, updated_at=now, finished_at=now, **values
        )

    def succeed(self, result: R, progress: P | None) -> bool:
        """Store the result and the last progress, in one update."""
        return self._end(
            progress, status="succeeded", error=None, **self.rows.result_values(result)
        )

    def fail(self, error: E, progress: P | None) -> bool:
        return self._end(progress, status="failed", error=error.model_dump(mode="json"))


def _never(written: object, latest: object) -> bool:
    """No progress is urgent: all of it waits for the interval."""
    return False


class ProgressWriter(Generic[P]):
    """Keeps the latest progress a job reports (`report`) and has `run` persist it, at most every
    `interval` seconds, but at once when `urgent(written, latest)` (e.g. a build's new stage)."""

    def __init__(
        self,
        save: Callable[[P], Awaitable[object]],
        interval: float,
        urgent: Callable[[P, P], bool],
    ) -> None:
        self._save = save
        self._interval = interval
        self._urgent = urgent
        self._wake = asyncio.Event()
        self.latest: P | None = None

    def report(self, progress: P) -> None:
        self.latest = progress
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        written: P | None = None
        last = float("-inf")
        while True:
            await self._wake.wait()
            self._wake.clear()
            urgent = (
                written is not None
                and self.latest is not None
                and self._urgent(written, self.latest)
            )
            if not urgent and (wait := last + self._interval - loop.time()) > 0:
                await asyncio.sleep(wait)
            current = self.latest
            if current is None or current == written:
                continue
            await self._save(current)
            written, last = current, loop.time()


@dataclass(frozen=True)
class JobNames:
    """How a kind of job is named in the logs (`log`): `noun` in messages ("build failed",
    "resumed builds"), `id_field` the field naming a job, `count_field` the one counting jobs."""

    log: logging.Logger
    noun: str
    id_field: str
    count_field: str


@dataclass(frozen=True)
class JobLimits(Generic[P]):
    """How many runs a job may start (`attempts`: one more claim fails it as interrupted), how
    many jobs one process runs at once (`parallel`: the others wait, still free for another
    process to take), and how often progress is written: at most every `progress_interval`
    seconds, but at once when `urgent(written, latest)` (a build's new stage)."""

    attempts: int
    parallel: int
    progress_interval: float
    urgent: Callable[[P, P], bool] = _never


@dataclass(frozen=True)
class JobKind(Generic[Row, C, R, P, E]):
    """One kind of leased job: its names, its rows, its work (`execute` a claimed job, reporting
    its progress to the callback it is given), its errors and its limits."""

    names: JobNames
    rows: LeasedRows[Row, C, R]
    execute: Callable[[Platform, C, Callable[[P], None]], Coroutine[Any, Any, R]]
    errors: JobErrors[E]
    limits: JobLimits[P]


class LeasedJobs(Generic[Row, C, R, P, E]):
    """Runs the jobs of one kind in the background of this process, per event loop: at most
    `kind.limits.parallel` at once, each once; stops them; resumes those nobody holds."""

    def __init__(self, kind: JobKind[Row, C, R, P, E]) -> None:
        self.kind: JobKind[Row, C, R, P, E] = kind
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._running: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[None]]
        ] = weakref.WeakKeyDictionary()

    async def run(self, platform: Platform, workspace_id: str, job_id: str) -> None:
        """Run (or resume) one job if no live process holds it, and record how it ended, once a
        slot of this process is free. Never raises but for cancellation (which releases the
        lease, so the job is resumed)."""
        loop = asyncio.get_running_loop()
        async with self._slots.setdefault(loop, asyncio.Semaphore(self.kind.limits.parallel)):
            await self._run(platform, workspace_id, job_id)

    async def _run(self, platform: Platform, workspace_id: str, job_id: str) -> None:
        kind = self.kind
        limits, names, db = kind.limits, kind.names, platform.db
        lease: RowLease[Row, C, R, P, E] = RowLease(
            kind.rows, db, workspace_id, job_id, platform.settings.turn_lease_seconds
        )
        claimed = await run_db(db, lease.claim)
        if claimed is None:
            return
        if claimed.attempts > limits.attempts:
            await run_db(db, lease.fail, kind.errors.interrupted(limits.attempts), None)
            return
        progress = ProgressWriter(
            lambda value: run_db(db, lease.save_progress, value),
            limits.progress_interval,
            limits.urgent,
        )
        writer = asyncio.create_task(progress.run())
        work = asyncio.create_task(kind.execute(platform, claimed, progress.report))
        renewing = asyncio.create_task(self._keep_renewed(lease, work))
        log_extra = {names.id_field: job_id}
        try:
            result = await work
        except asyncio.CancelledError:
            await stop_tasks(writer, renewing)
            current = asyncio.current_task()
            if lease.lost and (current is None or not current.cancelling()):
                return  # another process has the job now, or it was ended (cancelled)
            await run_db(db, lease.release)
            raise
        except Exception as exc:
            await stop_tasks(writer, renewing)
            names.log.warning(f"{names.noun} failed", extra=log_extra, exc_info=True)
            await run_db(db, lease.fail, kind.errors.of(exc), progress.latest)
            return
        await stop_tasks(writer, renewing)
        if not await run_db(db, lease.succeed, result, progress.latest):
            names.log.warning(f"{names.noun} finished after its lease was lost", extra=log_extra)

    async def _keep_renewed(self, lease: RowLease[Row, C, R, P, E], work: asyncio.Task[R]) -> None:
        """Renew every third of the lease; when it is lost, stop the work."""
        while True:
            await asyncio.sleep(lease.seconds / 3)
            if not await run_db(lease.db, lease.renew):
                names = self.kind.names
                names.log.warning(f"{names.noun} lease lost", extra={names.id_field: lease.job_id})
                lease.lost = True
                work.cancel()
                return

    def start(self, platform: Platform, workspace_id: str, job_id: str) -> None:
        """Run the job in the background of this process (once: a job it already runs is left
        to that run)."""
        running = self._running.setdefault(asyncio.get_running_loop(), {})
        if job_id in running:
            return
        task = asyncio.create_task(self.run(platform, workspace_id, job_id))
        running[job_id] = task
        task.add_done_callback(lambda _: running.pop(job_id, None))

    async def stop(self, job_id: str) -> None:
        """Stop the job if this process runs it (it was ended by someone else, e.g. cancelled)."""
        task = self._running.get(asyncio.get_running_loop(), {}).get(job_id)
        if task is not None:
            await stop_tasks(task)

    async def stop_all(self) -> None:
        """Cancel the jobs this process runs (at shutdown); their leases are released, so the
        next process to look resumes them."""
        await stop_tasks(*self._running.get(asyncio.get_running_loop(), {}).values())

    async def resume(self, platform: Platform) -> int:
        """Start every open job nobody holds (its process died, or it never got to start).
        Returns how many were started. Never raises."""
        names = self.kind.names
        try:
            orphaned = await run_db(platform.db, self.kind.rows.orphaned, platform.db)
        except Exception:
            names.log.exception(f"could not look for {names.noun}s to resume")
            return 0
        for workspace_id, job_id in orphaned:
            self.start(platform, workspace_id, job_id)
        if orphaned:
            names.log.info(f"resumed {names.noun}s", extra={names.count_field: len(orphaned)})
        return len(orphaned)

    async def keep_resuming(self, platform: Platform) -> None:
        """Resume orphaned jobs now and then every lease period, for as long as the process
        runs."""
        while True:
            await self.resume(platform)
            await asyncio.sleep(platform.settings.turn_lease_seconds)


def cancel_open_row(session: Session, row: Row, noun: str) -> None:
    """Mark a queued or running job `cancelled` at once, its lease dropped, in one conditional
    update (a job that finished meanwhile is left alone: Conflict, saying how it ended)."""
    table = type(row)
    now = utcnow()
    moved = session.execute(
        update(table)
        .where(table.id == row.id, table.status.in_(("queued", "running")))
        .values(
            status="cancelled",
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise Conflict(
            f"{noun} {row.id} has already finished ({row.status})",
            details={"run_id": row.id, "status": row.status},
        )
    session.refresh(row)
