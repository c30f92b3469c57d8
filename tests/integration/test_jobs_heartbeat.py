"""Worker heartbeats and the take-over of dead workers, on the backend under test."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from deputy.jobs.heartbeat import ExecutorLiveness, workers
from deputy.store.db import Database
from deputy.store.migrate import upgrade

pytestmark = pytest.mark.integration

DEAD_AFTER = 2.0


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


def now() -> datetime:
    return datetime.now(UTC)


def add_worker(
    database: Database, executor_id: str, beat_ago: float, recovered_ago: float | None = None
) -> None:
    with database.session() as session:
        session.execute(
            insert(workers).values(
                executor_id=executor_id,
                started_at=now() - timedelta(hours=1),
                heartbeat_at=now() - timedelta(seconds=beat_ago),
                recovered_at=None
                if recovered_ago is None
                else now() - timedelta(seconds=recovered_ago),
            )
        )


def row(database: Database, executor_id: str) -> dict[str, object] | None:
    with database.session() as session:
        found = session.execute(select(workers).where(workers.c.executor_id == executor_id)).first()
        return None if found is None else dict(found._mapping)


class Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, executor_id: str) -> int:
        with self.lock:
            self.calls.append(executor_id)
            if self.fail_first and len(self.calls) == 1:
                raise RuntimeError("engine not reachable")
        return 3


@pytest.fixture
def liveness(database: Database) -> Callable[..., ExecutorLiveness]:
    def make(executor_id: str, recover: Recorder | None = None) -> ExecutorLiveness:
        return ExecutorLiveness(
            database,
            executor_id,
            heartbeat_seconds=0.1,
            dead_after_seconds=DEAD_AFTER,
            recover=recover or Recorder(),
        )

    return make


def test_register_and_beat_keep_the_row_current(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    me = liveness("me")
    assert not me.healthy()
    me.register()
    first = row(database, "me")
    assert first is not None and first["recovered_at"] is None
    me.beat()
    second = row(database, "me")
    assert second is not None
    assert second["heartbeat_at"] >= first["heartbeat_at"]  # type: ignore[operator]
    assert me.healthy()


def test_exactly_one_live_worker_recovers_a_dead_one(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    add_worker(database, "dead", beat_ago=60)
    add_worker(database, "alive", beat_ago=0)
    recorders = [Recorder() for _ in range(4)]
    rescuers = [liveness(f"rescuer-{i}", recorders[i]) for i in range(4)]
    for rescuer in rescuers:
        rescuer.register()
    barrier = threading.Barrier(len(rescuers))
    results: list[dict[str, int]] = []

    def rescue(rescuer: ExecutorLiveness) -> None:
        barrier.wait()
        results.append(rescuer.recover_dead())

    threads = [threading.Thread(target=rescue, args=(rescuer,)) for rescuer in rescuers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [call for recorder in recorders for call in recorder.calls] == ["dead"]
    assert sorted(map(str, results)) == ["{'dead': 3}", "{}", "{}", "{}"]
    assert row(database, "dead") is None  # recovered and forgotten
    assert row(database, "alive") is not None


def test_a_worker_never_recovers_itself(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    recorder = Recorder()
    me = liveness("me", recorder)
    add_worker(database, "me", beat_ago=60)
    assert me.dead_executors() == []
    assert me.claim("me") is None
    assert me.recover_dead() == {}
    assert recorder.calls == []


def test_a_failed_recovery_is_retried(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    add_worker(database, "dead", beat_ago=60)
    recorder = Recorder(fail_first=True)
    rescuer = liveness("rescuer", recorder)
    assert rescuer.recover_dead() == {}
    found = row(database, "dead")
    assert found is not None and found["recovered_at"] is None  # the claim was released
    assert rescuer.recover_dead() == {"dead": 3}
    assert recorder.calls == ["dead", "dead"]


def test_a_recovery_lease_expires(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    add_worker(database, "being-recovered", beat_ago=60, recovered_ago=0.5)
    add_worker(database, "abandoned", beat_ago=60, recovered_ago=DEAD_AFTER + 5)
    recorder = Recorder()
    assert liveness("rescuer", recorder).recover_dead() == {"abandoned": 3}
    assert recorder.calls == ["abandoned"]


def test_a_restarted_worker_waits_while_it_is_being_recovered(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    add_worker(database, "me", beat_ago=60, recovered_ago=0)
    me = liveness("me")
    registered = threading.Event()

    def register() -> None:
        me.register()
        registered.set()

    thread = threading.Thread(target=register)
    thread.start()
    assert not registered.wait(0.5)  # the rescuer holds the lease
    with database.session() as session:  # the rescuer finishes and forgets the row
        session.execute(workers.delete().where(workers.c.executor_id == "me"))
    assert registered.wait(10)
    thread.join(timeout=10)
    found = row(database, "me")
    assert found is not None and found["recovered_at"] is None


def test_a_worker_declared_dead_comes_back(
    database: Database,
    liveness: Callable[..., ExecutorLiveness],
    caplog: pytest.LogCaptureFixture,
) -> None:
    me = liveness("me")
    me.register()
    with database.session() as session:
        session.execute(workers.delete().where(workers.c.executor_id == "me"))
    with caplog.at_level(logging.WARNING, logger="deputy.jobs.heartbeat"):
        me.beat()
    assert "was declared dead" in caplog.text
    assert row(database, "me") is not None


def test_the_background_thread_beats_and_recovers(
    database: Database, liveness: Callable[..., ExecutorLiveness]
) -> None:
    recorder = Recorder()
    me = liveness("me", recorder)
    me.register()
    with database.session() as session:
        session.execute(
            update(workers)
            .where(workers.c.executor_id == "me")
            .values(heartbeat_at=now() - timedelta(seconds=1))
        )
    add_worker(database, "dead", beat_ago=60)
    me.start()
    try:
        deadline = threading.Event()
        for _ in range(100):
            if recorder.calls and row(database, "dead") is None:
                break
            deadline.wait(0.05)
    finally:
        me.stop()
    assert recorder.calls == ["dead"]
    found = row(database, "me")
    assert found is not None
    assert found["heartbeat_at"] > now() - timedelta(seconds=1)  # type: ignore[operator]
