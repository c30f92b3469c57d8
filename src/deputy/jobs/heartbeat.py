"""Worker liveness and the take-over of a dead worker's runs.

Each worker keeps a row in `job_workers` (the main Deputy database) with a heartbeat. A background
thread in every worker refreshes its own row every `heartbeat_seconds` and looks for rows whose
heartbeat is older than `dead_after_seconds`. It claims such a row with one conditional UPDATE that
sets `recovered_at` (a lease of `dead_after_seconds`), so exactly one live worker wins; the winner
asks the engine to recover the dead executor's pending runs, then deletes the row. If the winner
fails, the lease expires and another worker retries.

A worker that starts registers itself *before* its engine launches, and waits while another worker
holds a recovery lease on its executor id, so a restarted worker and a rescuer never both resume
the same run. Times are taken from the workers' clocks (kept in sync by NTP); choose
`dead_after_seconds` several times `heartbeat_seconds`, since a live worker whose heartbeat stalls
longer than that is treated as dead and its runs are started elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from deputy.store.db import Database
from deputy.store.tables import JobWorker

log = logging.getLogger(__name__)

workers = cast(Table, JobWorker.__table__)

RecoverExecutor = Callable[[str], int]
"""Recover the pending runs of a dead executor id; returns how many were handed back."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _rowcount(result: object) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


class ExecutorLiveness:
    def __init__(
        self,
        database: Database,
        executor_id: str,
        *,
        heartbeat_seconds: float,
        dead_after_seconds: float,
        recover: RecoverExecutor,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if dead_after_seconds <= heartbeat_seconds:
            raise ValueError("dead_after_seconds must be longer than heartbeat_seconds")
        self.database = database
        self.executor_id = executor_id
        self.heartbeat_seconds = heartbeat_seconds
        self.dead_after = timedelta(seconds=dead_after_seconds)
        self._recover = recover
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat: float | None = None  # time.monotonic() of the last successful beat

    # -- this worker -----------------------------------------------------------------------

    def register(self) -> None:
        """Announce this executor (call before the engine launches). Waits, at most one lease,
        while another worker is recovering this executor id's runs."""
        deadline = time.monotonic() + 2 * self.dead_after.total_seconds()
        while True:
            now = self._clock()
            with self.database.session() as session:
                claimed = session.execute(
                    update(workers)
                    .where(
                        workers.c.executor_id == self.executor_id,
                        (workers.c.recovered_at.is_(None))
                        | (workers.c.recovered_at < now - self.dead_after),
                    )
                    .values(started_at=now, heartbeat_at=now, recovered_at=None)
                )
                if _rowcount(claimed) == 1:
                    break
                exists = session.execute(
                    select(workers.c.executor_id).where(workers.c.executor_id == self.executor_id)
                ).first()
            if exists is None:
                try:
                    with self.database.session() as session:
                        session.execute(
                            insert(workers).values(
                                executor_id=self.executor_id, started_at=now, heartbeat_at=now
                            )
                        )
                    break
                except IntegrityError:  # another process with the same id inserted it first
                    pass
            elif time.monotonic() > deadline:
                raise RuntimeError(f"executor {self.executor_id!r} stays claimed for recovery")
            else:
                log.info(
                    "executor %s is being recovered by another worker; waiting", self.executor_id
                )
            time.sleep(self.heartbeat_seconds)
        self._last_beat = time.monotonic()

    def beat(self) -> None:
        now = self._clock()
        with self.database.session() as session:
            updated = session.execute(
                update(workers)
                .where(workers.c.executor_id == self.executor_id)
                .values(heartbeat_at=now)
            )
            if _rowcount(updated) == 0:
                log.warning(
                    "executor %s was declared dead and its runs were handed to other workers; "
                    "its heartbeat stalled for longer than %s",
                    self.executor_id,
                    self.dead_after,
                )
                session.execute(
                    insert(workers).values(
                        executor_id=self.executor_id, started_at=now, heartbeat_at=now
                    )
                )
        self._last_beat = time.monotonic()

    def healthy(self) -> bool:
        """Whether this worker's heartbeat is current (others would not consider it dead)."""
        return (
            self._last_beat is not None
            and time.monotonic() - self._last_beat < self.dead_after.total_seconds()
        )

    # -- other workers ---------------------------------------------------------------------

    def dead_executors(self) -> list[str]:
        cutoff = self._clock() - self.dead_after
        with self.database.session() as session:
            rows = session.execute(
                select(workers.c.executor_id).where(
                    workers.c.executor_id != self.executor_id,
                    workers.c.heartbeat_at < cutoff,
                    (workers.c.recovered_at.is_(None)) | (workers.c.recovered_at < cutoff),
                )
            )
            return [row[0] for row in rows]

    def claim(self, executor_id: str) -> datetime | None:
        """Take the recovery lease of a dead executor; None when it is alive or already taken."""
        now = self._clock()
        cutoff = now - self.dead_after
        with self.database.session() as session:
            result = session.execute(
                update(workers)
                .where(
                    workers.c.executor_id == executor_id,
                    workers.c.executor_id != self.executor_id,
                    workers.c.heartbeat_at < cutoff,
                    (workers.c.recovered_at.is_(None)) | (workers.c.recovered_at < cutoff),
                )
                .values(recovered_at=now)
            )
            return now if _rowcount(result) == 1 else None

    def recover_dead(self) -> dict[str, int]:
        """Claim and recover every dead executor; returns executor id -> runs handed back."""
        recovered: dict[str, int] = {}
        for executor_id in self.dead_executors():
            lease = self.claim(executor_id)
            if lease is None:
                continue
            try:
                count = self._recover(executor_id)
            except Exception:
                log.exception("recovering the runs of executor %s failed", executor_id)
                with self.database.session() as session:
                    session.execute(
                        update(workers)
                        .where(
                            workers.c.executor_id == executor_id, workers.c.recovered_at == lease
                        )
                        .values(recovered_at=None)
                    )
                continue
            with self.database.session() as session:
                session.execute(
                    delete(workers).where(
                        workers.c.executor_id == executor_id, workers.c.recovered_at == lease
                    )
                )
            log.log(
                logging.WARNING if count else logging.INFO,
                "executor %s stopped its heartbeat; %d of its runs were handed back to the queues",
                executor_id,
                count,
            )
            recovered[executor_id] = count
        return recovered

    # -- background thread -----------------------------------------------------------------

    def tick(self) -> None:
        self.beat()
        self.recover_dead()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("liveness thread already started")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"deputy-jobs-heartbeat-{self.executor_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, 2 * self.heartbeat_seconds))
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("jobs heartbeat of executor %s failed", self.executor_id)
