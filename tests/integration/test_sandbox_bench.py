"""Acceptance: the oracle check, as a user runs it. `deputy bench tau2 --oracle` (a real process)
drives every retail train task's reference actions through Deputy's runtime, tool executor and
OpenAPI client against the retail simulation; every task must score 1.0 on the DB component
(the harness, the backend and the evaluator agree with tau2's ground truth). With each task's
last write skipped, exactly the tasks whose reference actions change the database must score 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import REPO, SHARED_DATA, base_env

pytestmark = [pytest.mark.integration, pytest.mark.acceptance, pytest.mark.timeout(900)]

RETAIL = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
GROUND_TRUTH = REPO / "examples" / "retail" / "tau2_expected_states.json"
BENCH_TIMEOUT = 900


def _bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    output = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deputy.cli.main",
            "bench",
            "tau2",
            "--oracle",
            "--domain-dir",
            str(RETAIL),
            "--output",
            str(output),
            *args,
        ],
        env=base_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(output.read_text())
    return report, done.stdout


def test_the_oracle_scores_one_on_every_retail_train_task(tmp_path: Path) -> None:
    report, summary = _bench(tmp_path)
    tasks = {task["id"]: task for task in report["tasks"]}
    expected_ids = {t["id"] for t in json.loads((RETAIL / "tasks.json").read_text())}
    assert set(tasks) == expected_ids and len(tasks) == 74
    below = {i: t["failures"] for i, t in tasks.items() if t["reward"] != 1.0}
    assert not below, below
    assert all(t["components"] == {"DB": 1.0} for t in tasks.values())
    assert report["mode"] == "oracle" and report["mean_reward"] == 1.0
    assert "74 tasks, 74 with reward 1.0" in summary


def test_skipping_a_write_scores_zero_exactly_where_the_write_matters(tmp_path: Path) -> None:
    report, _ = _bench(tmp_path, "--oracle-skip-write")
    truth = json.loads(GROUND_TRUTH.read_text())
    unchanged = {
        task_id
        for task_id, replay in truth["tasks"].items()
        if replay["final_sha256"] == truth["initial_sha256"]
    }
    rewards = {task["id"]: task["reward"] for task in report["tasks"]}
    assert {i for i, r in rewards.items() if r == 1.0} == unchanged
    assert all(rewards[i] == 0.0 for i in rewards.keys() - unchanged)
    assert len(rewards.keys() - unchanged) >= 60
    failing = next(t for t in report["tasks"] if t["reward"] == 0.0)
    assert "end state differs from the reference" in " ".join(failing["failures"])
