"""`deputy build` and `deputy builds`, run with typer's CliRunner against the real app in
process (through the SDK's HTTP client), on tau2's retail policy and tool file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from deputy.api.app import create_app
from deputy.builder.report import BuildReport
from deputy.config import load_settings
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import load_spec
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare
from tests.processes import SHARED_DATA
from tests.unit.test_cli import Cli

POLICY = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "policy.md"
TOOLS = SHARED_DATA / "tau2-bench" / "tools-data.json"
GOAL = "Help customers of our online retail store with their orders, returns and exchanges."


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        with SyncASGITransport(create_app(platform)) as in_process:
            yield Cli(
                httpx.MockTransport(in_process.handle_request),
                bootstrap.created.owner_key.secret,
                tmp_path,
                platform,
            )
    finally:
        platform.close()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "materials"
    folder.mkdir()
    copies = {
        "policy": Path(shutil.copy(POLICY, folder / "policy.md")),
        "tools": Path(shutil.copy(TOOLS, folder / "tools-data.json")),
        "empty": folder / "empty.md",
        "binary": folder / "logo.bin",
    }
    copies["empty"].write_bytes(b"")
    copies["binary"].write_bytes(b"\x89\x00\x01\x02binary" * 20)
    return copies


def test_build_writes_the_spec_scenarios_and_report(cli: Cli, files: dict[str, Path]) -> None:
    out = cli.tmp / "out"
    out.mkdir()
    result = cli.run(
        "build",
        "--goal",
        GOAL,
        "--name",
        "Retail support",
        "--constraint",
        "Never reveal another customer's orders.",
        "--model",
        "none",
        "--output",
        str(out / "spec.yaml"),
        "--scenarios",
        str(out / "scenarios.yaml"),
        "--report",
        str(out / "report.json"),
        str(files["policy"]),
        str(files["tools"]),
        str(files["empty"]),
        str(files["binary"]),
    )
    assert result.exit_code == 0, result.output
    spec = load_spec((out / "spec.yaml").read_text(), "yaml")
    assert spec.name == "Retail support" and spec.procedures
    suite = ScenarioSuite.model_validate(yaml.safe_load((out / "scenarios.yaml").read_text()))
    report = BuildReport.model_validate(json.loads((out / "report.json").read_text()))
    assert report.stats.scenarios == len(suite.scenarios) > 0

    # The refused files are reported with their reason; the build went on without them.
    assert "empty.md" in result.stderr and "the file is empty" in result.stderr
    assert "logo.bin" in result.stderr and "unsupported_media_type" in result.stderr
    assert {m.name for m in report.materials} == {"policy.md", "tools-data.json"}

    lines = result.stdout.splitlines()
    assert f"Procedures ({len(spec.procedures)}):" in lines
    first = spec.procedures[0]
    assert any(line.startswith(f"  {first.id}: {first.title} (") for line in lines)
    assert any("policy.md" in line for line in lines if line.startswith(f"  {first.id}:"))
    assert f"Scenarios: {len(suite.scenarios)}" in lines
    assert f"Open questions ({len(report.questions)}):" in lines
    assert f"Unmapped ({len(report.unmapped)}):" in lines


def test_build_with_no_usable_file_exits_2(cli: Cli, files: dict[str, Path]) -> None:
    result = cli.run(
        "build",
        "--goal",
        GOAL,
        "--output",
        str(cli.tmp / "spec.yaml"),
        str(files["empty"]),
        str(cli.tmp / "missing.md"),
    )
    assert result.exit_code == 2, result.output
    assert "nothing to build" in result.stderr and "missing.md" in result.stderr
    assert not (cli.tmp / "spec.yaml").exists()
    assert cli.json("builds", "list")["data"] == []


def test_builds_list_show_change_and_agent(cli: Cli, files: dict[str, Path]) -> None:
    spec_path = cli.tmp / "spec.yaml"
    built = cli.run(
        "build", "--goal", GOAL, "--model", "none", "--output", str(spec_path), str(files["policy"])
    )
    assert built.exit_code == 0, built.output
    (listed,) = cli.json("builds", "list")["data"]
    assert listed["status"] == "succeeded" and listed["revision"] == 1
    shown = cli.run("builds", "show", listed["id"])
    assert shown.exit_code == 0 and "succeeded" in shown.stdout

    changed = cli.run("builds", "change", listed["id"], "refunds over $100 need a manager")
    assert changed.exit_code == 0, changed.output
    assert "Revision 2." in changed.stdout and "Scenarios to run again:" in changed.stdout
    assert cli.json("builds", "show", listed["id"])["revision"] == 2

    filed = cli.json("builds", "agent", listed["id"], "--name", "retail-support")
    assert filed["number"] == 1
    agent = cli.json("agents", "show", filed["agent_id"])
    assert agent["name"] == "retail-support"
    missing = cli.run("builds", "show", "bld_missing")
    assert missing.exit_code == 4 and "not_found" in missing.stderr
