"""Acceptance: a `kill -9` of a worker in the middle of a multi-step job, followed by a restart
(and, on PostgreSQL, by a second worker taking over), finishes the job with every completed step
run once. Real worker processes (`deputy worker`), real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deputy.config import Settings
from deputy.jobs.dbos_client import DbosJobClient
from tests.integration.jobs_fixture import (
    QUEUE,
    STEPS,
    LedgerLine,
    ledger_pipeline,
    read_ledger,
)

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 0.5
DEAD_AFTER_SECONDS = 3.0


class Workers:
    """Worker subprocesses of one test; all of them are killed at the end, whatever happens."""

    def __init__(self, data_dir: Path, logs: Path, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.database_url = database_url
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def spawn(self, executor_id: str) -> subprocess.Popen[bytes]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("DEPUTY_")}
        env.update(
            DEPUTY_ENVIRONMENT="test",
            DEPUTY_DATA_DIR=str(self.data_dir),
            DEPUTY_EXECUTOR_ID=executor_id,
            DEPUTY_WORKER_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
            DEPUTY_WORKER_DEAD_AFTER_SECONDS=str(DEAD_AFTER_SECONDS),
            DEPUTY_LOG_LEVEL="INFO",
            DEPUTY_TEST_STEP_SECONDS="0.8",
            PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
        )
        if self.database_url is not None:
            env["DEPUTY_DATABASE_URL"] = self.database_url
        log_path = self.logs / f"{executor_id}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "deputy.cli.main",
                    "worker",
                    "--import",
                    "tests.integration.jobs_fixture",
                ],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log_path))
        return process

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        wait_until(lambda: b" ready: " in self.log_of(process), timeout, "worker ready", self)

    def log_of(self, process: subprocess.Popen[bytes]) -> bytes:
        return next(path for started, path in self.started if started is process).read_bytes()

    def kill9(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    def kill_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def logs_text(self) -> str:
        return "\n".join(
            f"--- {path.name} (exit {process.poll()})\n{path.read_text(errors='replace')[-4000:]}"
            for process, path in self.started
        )

    def check_alive(self, *processes: subprocess.Popen[bytes]) -> None:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"worker {process.pid} exited early\n{self.logs_text()}")


def wait_until(check: Callable[[], bool], timeout: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{workers.logs_text()}")
        time.sleep(0.05)


@pytest.fixture
def workers_for(tmp_path: Path) -> Iterator[Callable[[str | None], Workers]]:
    made: list[Workers] = []

    def make(database_url: str | None) -> Workers:
        (tmp_path / "logs").mkdir(exist_ok=True)
        workers = Workers(tmp_path / "worker-data", tmp_path / "logs", database_url)
        made.append(workers)
        return workers

    yield make
    for workers in made:
        workers.kill_all()


def check_ledger(
    ledger: list[LedgerLine], run_id: str, before_kill: list[LedgerLine], survivor_pid: int
) -> None:
    """Every step ran; each step completed before the kill ran exactly once; the step that was
    running at the kill ran twice (interrupted, then again) and is the only one that did; every
    step after the kill ran in the surviving worker."""
    assert {line.run_id for line in ledger} == {run_id}
    counts = Counter(line.step for line in ledger)
    interrupted = before_kill[-1].step
    completed_before_kill = [line.step for line in before_kill[:-1]]
    assert set(counts) == set(STEPS)
    assert counts[interrupted] == 2, counts
    assert [step for step, n in counts.items() if n > 1] == [interrupted]
    for step in completed_before_kill:
        assert counts[step] == 1
    after_kill = ledger[len(before_kill) :]
    assert [line.step for line in after_kill] == list(STEPS[STEPS.index(interrupted) :])
    assert {line.pid for line in after_kill} == {survivor_pid}
    killed_pid = before_kill[0].pid
    assert {line.pid for line in before_kill} == {killed_pid} != {survivor_pid}


def test_sqlite_worker_killed_mid_job_finishes_after_restart(
    workers_for: Callable[[str | None], Workers],
) -> None:
    workers = workers_for(None)
    settings = Settings(data_dir=workers.data_dir)
    run_id = "kill-test-sqlite"
    try:
        first = workers.spawn("worker-a")
        workers.wait_ready(first)
        with DbosJobClient(settings.resolved_jobs_database_url) as client:
            handle = client.enqueue(QUEUE, ledger_pipeline.call("sqlite"), run_id=run_id)
            # Kill while the third step sleeps: two steps are complete, the third is not.
            wait_until(lambda: len(read_ledger(workers.data_dir)) >= 3, 30, "step 3", workers)
            workers.kill9(first)
            before_kill = read_ledger(workers.data_dir)
            assert [line.step for line in before_kill] == list(STEPS[:3])
            assert client.status(run_id).status == "pending"

            restarted = workers.spawn("worker-a")  # same executor id: DBOS resumes at launch
            result = client.result(handle, timeout=60)
            workers.check_alive(restarted)

            assert result[0] == "sqlite"
            assert result[1:] == [f"{step}@worker-a:{first.pid}" for step in STEPS[:2]] + [
                f"{step}@worker-a:{restarted.pid}" for step in STEPS[2:]
            ]
            check_ledger(read_ledger(workers.data_dir), run_id, before_kill, restarted.pid)
            status = client.status(run_id)
            assert (status.status, status.executor_id) == ("success", "worker-a")
    finally:
        workers.kill_all()


def test_postgres_second_worker_takes_over_a_killed_worker(
    workers_for: Callable[[str | None], Workers], postgres_url: str
) -> None:
    workers = workers_for(postgres_url)
    run_id = "kill-test-postgres"
    try:
        first = workers.spawn("worker-a")
        workers.wait_ready(first)
        with DbosJobClient(postgres_url) as client:
            handle = client.enqueue(QUEUE, ledger_pipeline.call("postgres"), run_id=run_id)
            wait_until(lambda: len(read_ledger(workers.data_dir)) >= 1, 30, "step 1", workers)
            assert client.status(run_id).executor_id == "worker-a"

            second = workers.spawn("worker-b")  # already running when the first one dies
            workers.wait_ready(second)
            steps_so_far = len(read_ledger(workers.data_dir))
            assert steps_so_far < len(STEPS) - 1, "the job ran too far before worker-b was up"
            wait_until(
                lambda: len(read_ledger(workers.data_dir)) > steps_so_far,
                30,
                "the next step",
                workers,
            )
            workers.kill9(first)
            before_kill = read_ledger(workers.data_dir)
            assert client.status(run_id).status == "pending"

            result = client.result(handle, timeout=60)
            workers.check_alive(second)

            ledger = read_ledger(workers.data_dir)
            check_ledger(ledger, run_id, before_kill, second.pid)
            interrupted = before_kill[-1].step
            resumed = STEPS[STEPS.index(interrupted) :]
            assert result[1:] == [
                f"{line.step}@worker-a:{first.pid}" for line in before_kill[:-1]
            ] + [f"{step}@worker-b:{second.pid}" for step in resumed]
            status = client.status(run_id)
            assert (status.status, status.executor_id) == ("success", "worker-b")
            # worker-b took over through the heartbeat (not a restart of worker-a).
            assert b"executor worker-a stopped its heartbeat; 1 of its runs" in workers.log_of(
                second
            )
    finally:
        workers.kill_all()
