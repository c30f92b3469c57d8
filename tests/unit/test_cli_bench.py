"""`deputy bench`: tau2 tasks written as a suite the sandbox API accepts, the oracle on a few
tasks in process, and the usage errors a script can rely on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deputy.cli.main import app
from deputy.domain.scenarios import ScenarioSuite
from tests.processes import SHARED_DATA

RETAIL = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
runner = CliRunner()


def test_tau2_tasks_become_a_suite_file(tmp_path: Path) -> None:
    output = tmp_path / "suite.json"
    args = ["bench", "tau2-suite", "--domain-dir", str(RETAIL), "--output", str(output)]
    done = runner.invoke(app, [*args, "--task", "0", "--task", "6"])
    assert done.exit_code == 0, done.output
    suite = ScenarioSuite.model_validate_json(output.read_text())
    assert [s.id for s in suite.scenarios] == ["task_0", "task_6"]
    assert suite.scenarios[0].assertions.reference_actions[-1].tool == (
        "exchange_delivered_order_items"
    )
    assert "2 scenarios written" in done.output


def test_an_unknown_task_is_a_usage_error(tmp_path: Path) -> None:
    done = runner.invoke(
        app,
        [
            "bench",
            "tau2-suite",
            "--domain-dir",
            str(RETAIL),
            "--output",
            str(tmp_path / "s.json"),
            "--task",
            "9999",
        ],
    )
    assert done.exit_code == 2 and "no such tasks" in done.output
    assert not (tmp_path / "s.json").exists()


def test_the_oracle_runs_in_process_and_writes_per_task_rewards(tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    done = runner.invoke(
        app,
        [
            "bench",
            "tau2",
            "--oracle",
            "--domain-dir",
            str(RETAIL),
            "--task",
            "0",
            "--task",
            "24",
            "--output",
            str(output),
        ],
    )
    assert done.exit_code == 0, done.output
    report = json.loads(output.read_text())
    assert [(t["id"], t["reward"]) for t in report["tasks"]] == [("0", 1.0), ("24", 1.0)]
    assert "2 tasks, 2 with reward 1.0" in done.output


def test_a_domain_without_a_known_backend_needs_one(tmp_path: Path) -> None:
    domain = tmp_path / "airline"
    domain.mkdir()
    shutil.copy(RETAIL / "tasks.json", domain / "tasks.json")
    done = runner.invoke(app, ["bench", "tau2", "--oracle", "--domain-dir", str(domain)])
    assert done.exit_code == 2 and "--backend" in done.output


@pytest.mark.parametrize("ref", ["no_such_module:factory", "json:no_such_attribute", "bad"])
def test_a_broken_backend_reference_is_a_usage_error(ref: str) -> None:
    done = runner.invoke(
        app, ["bench", "tau2", "--oracle", "--domain-dir", str(RETAIL), "--backend", ref]
    )
    assert done.exit_code == 2, done.output
    assert "error" in done.output.lower()


def test_an_agent_run_needs_a_spec_and_a_model() -> None:
    done = runner.invoke(app, ["bench", "tau2", "--domain-dir", str(RETAIL), "--task", "0"])
    assert done.exit_code == 2 and "--agent" in done.output
