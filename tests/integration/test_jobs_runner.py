"""The DBOS jobs runner in this process, on the backend under test (SQLite file, or PostgreSQL in
the PostgreSQL pass): steps, run ids, signals, durable sleep, queue limits, status, errors,
cancellation, readiness, and the client that only submits and observes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deputy.jobs import (
    JobCancelled,
    JobContext,
    JobFailed,
    JobRegistry,
    JobsUnavailable,
    ResultTimeout,
    RunConflict,
    RunHandle,
    RunNotFound,
    UnknownJob,
)
from deputy.jobs.dbos_client import DbosJobClient
from deputy.jobs.dbos_runner import DbosJobRunner
from deputy.store.db import Database
from deputy.store.migrate import upgrade

pytestmark = pytest.mark.integration

registry = JobRegistry()
calls: Counter[str] = Counter()
calls_lock = threading.Lock()
concurrency = {"now": 0, "max": 0}
finished = {name: threading.Event() for name in ("cancellable",)}
SMALL_QUEUE = registry.queue("small", concurrency=2)


def count(name: str, result: object = None) -> object:
    with calls_lock:
        calls[name] += 1
    return result


@registry.job("three-steps")
def three_steps(ctx: JobContext, label: str) -> list[object]:
    return [
        ctx.step("one", count, f"{label}:one", 1),
        ctx.step("two", count, f"{label}:two", 2),
        ctx.step("three", count, f"{label}:three", ctx.run_id),
    ]


@registry.job("other")
def other(ctx: JobContext) -> str:
    return "other"


@registry.job("wait-for-signal")
def wait_for_signal(ctx: JobContext, timeout: float) -> object:
    message = ctx.recv("go", timeout=timeout)
    ctx.step("after-recv", count, f"{ctx.run_id}:after-recv")
    return message


@registry.job("ping-pong")
def ping_pong(ctx: JobContext, partner: str) -> object:
    ctx.send(partner, "go", {"from": ctx.run_id})
    return ctx.recv("reply", timeout=10.0)


@registry.job("sleeper")
def sleeper(ctx: JobContext, seconds: float) -> float:
    started = ctx.step("started", time.monotonic)
    ctx.sleep(seconds)
    return ctx.step("ended", time.monotonic) - started


def _busy(seconds: float) -> None:
    with calls_lock:
        concurrency["now"] += 1
        concurrency["max"] = max(concurrency["max"], concurrency["now"])
    time.sleep(seconds)
    with calls_lock:
        concurrency["now"] -= 1


@registry.job("busy")
def busy(ctx: JobContext, seconds: float) -> str:
    ctx.step("busy", _busy, seconds)
    return ctx.run_id


class Boom(ValueError):
    pass


def _explode(what: str) -> None:
    raise Boom(f"bad input: {what}")


@registry.job("fails")
def fails(ctx: JobContext, what: str) -> None:
    ctx.step("explode", _explode, what)


@registry.job("cancellable")
def cancellable(ctx: JobContext) -> None:
    try:
        ctx.recv("never", timeout=1.0)
        ctx.step("after-cancel", count, f"{ctx.run_id}:after-cancel")
    finally:
        finished["cancellable"].set()


@pytest.fixture
def jobs_url(database_url: str, tmp_path: Path) -> str:
    return database_url if database_url.startswith("postgresql") else f"sqlite:///{tmp_path}/j.db"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def make_runner(database: Database, jobs_url: str) -> Iterator[Callable[[], DbosJobRunner]]:
    made: list[DbosJobRunner] = []

    def make() -> DbosJobRunner:
        runner = DbosJobRunner(
            database,
            jobs_database_url=jobs_url,
            executor_id="test-runner",
            registry=registry,
            heartbeat_seconds=0.2,
            dead_after_seconds=2.0,
            poll_seconds=0.1,
            log_level="WARNING",
        )
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.stop()


@pytest.fixture
def runner(make_runner: Callable[[], DbosJobRunner]) -> DbosJobRunner:
    started = make_runner()
    started.start()
    return started


def test_a_multi_step_job_runs_each_step_once(runner: DbosJobRunner) -> None:
    handle = runner.start_run(three_steps.call("a"), run_id="steps-a")
    assert runner.result(handle, timeout=20) == [1, 2, "steps-a"]
    assert [calls[f"a:{step}"] for step in ("one", "two", "three")] == [1, 1, 1]
    status = runner.status("steps-a")
    assert (status.run_id, status.job, status.status) == ("steps-a", "three-steps", "success")
    assert status.finished and status.executor_id == "test-runner" and status.error is None
    assert status.created_at is not None and status.updated_at is not None


def test_a_run_id_starts_one_run(runner: DbosJobRunner) -> None:
    first = runner.start_run(three_steps.call("b"), run_id="steps-b")
    again = runner.start_run(three_steps.call("b"), run_id="steps-b")
    queued = runner.enqueue(SMALL_QUEUE, three_steps.call("b"), run_id="steps-b")
    assert first == again == queued == RunHandle("steps-b")
    assert runner.result(again, timeout=20) == [1, 2, "steps-b"]
    assert runner.start_run(three_steps.call("b"), run_id="steps-b") == first
    assert calls["b:one"] == calls["b:three"] == 1
    with pytest.raises(RunConflict):
        runner.start_run(other.call(), run_id="steps-b")
    generated = runner.start_run(other.call())
    assert generated.run_id and runner.result(generated, timeout=20) == "other"


def test_signals_reach_a_waiting_run_and_recv_times_out(runner: DbosJobRunner) -> None:
    waiting = runner.start_run(wait_for_signal.call(30.0), run_id="signal-1")
    deadline = time.monotonic() + 10
    while runner.status("signal-1").status != "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.send("signal-1", "go", {"approved": True, "by": ["ann"]})
    assert runner.result(waiting, timeout=20) == {"approved": True, "by": ["ann"]}
    assert calls["signal-1:after-recv"] == 1

    silent = runner.start_run(wait_for_signal.call(0.2), run_id="signal-2")
    assert runner.result(silent, timeout=20) is None


def test_runs_signal_each_other(runner: DbosJobRunner) -> None:
    receiver = runner.start_run(wait_for_signal.call(20.0), run_id="receiver")
    sender = runner.start_run(ping_pong.call("receiver"), run_id="sender")
    assert runner.result(receiver, timeout=20) == {"from": "sender"}
    runner.send("sender", "reply", "thanks")
    assert runner.result(sender, timeout=20) == "thanks"


def test_durable_sleep_sleeps(runner: DbosJobRunner) -> None:
    handle = runner.start_run(sleeper.call(0.3))
    assert runner.result(handle, timeout=20) >= 0.3


def test_a_queue_runs_at_most_its_concurrency(runner: DbosJobRunner) -> None:
    handles = [runner.enqueue("small", busy.call(0.4), run_id=f"busy-{i}") for i in range(6)]
    assert [runner.result(handle, timeout=30) for handle in handles] == [
        f"busy-{i}" for i in range(6)
    ]
    assert concurrency["max"] == 2  # the limit, reached and never exceeded
    assert runner.status("busy-0").queue == "small"


def test_an_error_surfaces_as_error_status(runner: DbosJobRunner) -> None:
    handle = runner.start_run(fails.call("x"), run_id="fails-1")
    with pytest.raises(JobFailed) as caught:
        runner.result(handle, timeout=20)
    assert caught.value.error_type == "Boom"
    assert "bad input: x" in caught.value.message
    status = runner.status("fails-1")
    assert (status.status, status.error) == ("error", "Boom: bad input: x")


def test_a_cancelled_run_stops_at_its_next_step(runner: DbosJobRunner) -> None:
    finished["cancellable"].clear()
    handle = runner.start_run(cancellable.call(), run_id="cancel-1")
    runner.cancel("cancel-1")
    assert runner.status("cancel-1").status == "cancelled"
    with pytest.raises(JobCancelled):
        runner.result(handle, timeout=20)
    assert finished["cancellable"].wait(10)
    assert calls["cancel-1:after-cancel"] == 0
    runner.cancel("no-such-run")  # nothing to do


def test_unknown_jobs_runs_and_slow_results(runner: DbosJobRunner) -> None:
    with pytest.raises(UnknownJob):
        runner.start_run(JobRegistry().job("not-here")(lambda ctx: None).call())
    with pytest.raises(RunNotFound):
        runner.status("no-such-run")
    with pytest.raises(RunNotFound):
        runner.result(RunHandle[object]("no-such-run"), timeout=1)
    waiting = runner.start_run(wait_for_signal.call(5.0), run_id="slow")
    with pytest.raises(ResultTimeout):
        runner.result(waiting, timeout=0.2)
    runner.send("slow", "go", "now")
    assert runner.result(waiting, timeout=20) == "now"


def test_ping_start_and_stop(make_runner: Callable[[], DbosJobRunner]) -> None:
    runner = make_runner()
    with pytest.raises(JobsUnavailable):
        runner.ping()
    runner.start()
    runner.ping()
    with pytest.raises(RuntimeError, match="already started"):
        make_runner().start()
    runner.stop()
    with pytest.raises(JobsUnavailable):
        runner.ping()
    with pytest.raises(JobsUnavailable):
        runner.start_run(other.call())
    runner.stop()  # idempotent
    # A stopped runner can start again (DBOS was destroyed cleanly).
    runner.start()
    assert runner.result(runner.start_run(other.call()), timeout=20) == "other"


def test_an_async_lifespan_starts_and_stops_the_runner(
    make_runner: Callable[[], DbosJobRunner],
) -> None:
    runner = make_runner()

    async def lifespan() -> object:
        runner.start()  # DBOS refuses parts of its launch on a loop thread; the runner copes
        try:
            with pytest.raises(RuntimeError, match="event loop"):
                runner.status("anything")
            handle = await asyncio.to_thread(runner.start_run, other.call())
            return await asyncio.to_thread(lambda: runner.result(handle, timeout=20))
        finally:
            runner.stop()

    assert asyncio.run(lifespan()) == "other"
    with pytest.raises(JobsUnavailable):
        runner.ping()


def test_the_client_submits_and_observes_runs_executed_by_the_runner(
    runner: DbosJobRunner, jobs_url: str
) -> None:
    with DbosJobClient(jobs_url) as client:
        client.ping()
        handle = client.enqueue("small", three_steps.call("c"), run_id="client-1")
        assert client.enqueue("small", three_steps.call("c"), run_id="client-1") == handle
        assert client.result(handle, timeout=20) == [1, 2, "client-1"]
        assert client.status("client-1").status == "success"
        assert calls["c:one"] == 1

        waiting = client.enqueue("small", wait_for_signal.call(20.0), run_id="client-2")
        deadline = time.monotonic() + 10
        while client.status("client-2").status != "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
        client.send("client-2", "go", [1, 2])
        assert client.result(waiting, timeout=20) == [1, 2]

        failing = client.enqueue("small", fails.call("y"))
        with pytest.raises(JobFailed, match="bad input: y"):
            client.result(failing, timeout=20)
        with pytest.raises(RunNotFound):
            client.status("nope")
    with pytest.raises(JobsUnavailable):
        client.ping()


def test_importing_the_port_does_not_import_dbos() -> None:
    code = "import sys, deputy.jobs, deputy.jobs.inline; assert 'dbos' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
