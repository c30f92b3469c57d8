"""Jobs for the kill-and-restart tests, imported by worker subprocesses with
`deputy worker --import tests.integration.jobs_fixture`.

Every step of `ledger-pipeline` appends one line (run id, step, executor id, pid) to a ledger file
in the data directory, flushed to disk, and then sleeps: a worker killed during the sleep leaves
the line of a step that did not complete, so the ledger shows which steps ran more than once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from deputy.jobs import JobContext, define_queue, job

STEPS = ("fetch", "parse", "embed", "index", "notify")
QUEUE = define_queue("kill-test", concurrency=1)
JOB_NAME = "ledger-pipeline"


@dataclass(frozen=True)
class LedgerLine:
    run_id: str
    step: str
    executor_id: str
    pid: int


def ledger_path(data_dir: Path) -> Path:
    return data_dir / "ledger.txt"


def read_ledger(data_dir: Path) -> list[LedgerLine]:
    path = ledger_path(data_dir)
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text().splitlines():
        run_id, step, executor_id, pid = raw.split(" ")
        lines.append(LedgerLine(run_id, step, executor_id, int(pid)))
    return lines


def _record(run_id: str, step: str) -> str:
    executor_id = os.environ.get("DEPUTY_EXECUTOR_ID", "?")
    fd = os.open(
        ledger_path(Path(os.environ["DEPUTY_DATA_DIR"])), os.O_WRONLY | os.O_APPEND | os.O_CREAT
    )
    try:
        os.write(fd, f"{run_id} {step} {executor_id} {os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    time.sleep(float(os.environ.get("DEPUTY_TEST_STEP_SECONDS", "0.8")))
    return f"{step}@{executor_id}:{os.getpid()}"


@job(JOB_NAME)
def ledger_pipeline(ctx: JobContext, label: str) -> list[str]:
    done = [label]
    for step in STEPS:
        done.append(ctx.step(step, _record, ctx.run_id, step))
        ctx.sleep(0.05)
    return done
