"""`deputy sandbox`, run with typer's CliRunner against the real app in process (through the
SDK's HTTP client): a run with its scorecard, show, list, trials' transcripts, compare, and
the usage errors scripts rely on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import yaml

from deputy.api.app import create_app
from deputy.cli.sandbox import parse_world
from deputy.config import load_settings
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare
from tests.unit.test_cli import Cli
from tests.unit.test_sdk_sandbox import MODEL, SHIPPED, SPEC, serve, suite


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv(
        "DEPUTY_SANDBOX_BACKENDS", json.dumps({"retail": "examples.retail.sandbox:world_factory"})
    )
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    assert platform.settings.sandbox_backends == {"retail": "examples.retail.sandbox:world_factory"}
    serve(platform)
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
def suite_file(cli: Cli) -> Path:
    agent = cli.json("agents", "create", "support")
    path = cli.tmp / "spec.json"
    path.write_text(json.dumps(SPEC))
    pushed = cli.run("agents", "versions", "create", agent["id"], str(path))
    assert pushed.exit_code == 0, pushed.output
    written = cli.tmp / "suite.yaml"
    written.write_text(yaml.safe_dump(suite()))
    return written


def test_run_prints_the_scorecard_and_the_run_can_be_read(cli: Cli, suite_file: Path) -> None:
    ran = cli.run(
        "sandbox", "run", "--agent", "support", "--suite", str(suite_file), "--trials", "2",
        "--model", MODEL,
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "Sandbox run sbx_" in ran.stderr
    assert "2 scenarios x 2 trials (4 conversations, 0 errors)" in ran.stdout
    assert "pass^1  0.500" in ran.stdout and "pass^2  0.500" in ran.stdout
    (listed,) = cli.json("sandbox", "list", "--agent", "support")["data"]
    assert listed["status"] == "succeeded" and listed["progress"]["passed"] == 2

    shown = cli.run("sandbox", "show", listed["id"])
    assert shown.exit_code == 0, shown.output
    assert f"Run {listed['id']}: succeeded" in shown.stdout
    assert "progress: 4/4 done, 2 passed, 0 errors" in shown.stdout
    table = cli.run("sandbox", "list")
    assert listed["id"] in table.stdout and "0.500" in table.stdout

    trials = cli.run("sandbox", "trials", listed["id"], "--scenario", "refund")
    assert trials.exit_code == 0, trials.output
    assert trials.stdout.count("refund #") == 2 and "FAILED" in trials.stdout
    assert "  customer Refund my order." in trials.stdout
    assert f"  agent    {SHIPPED}" in trials.stdout
    assert "✗ communicate" in trials.stdout
    as_json = cli.json("sandbox", "trials", listed["id"])
    assert [(t["scenario_id"], t["passed"]) for t in as_json] == [
        ("where_is_it", True),
        ("where_is_it", True),
        ("refund", False),
        ("refund", False),
    ]

    again = cli.json(
        "sandbox", "run", "--agent", listed["agent_id"], "--suite", str(suite_file),
        "--scenario", "where_is_it", "--model", MODEL,
    )  # fmt: skip
    assert again["status"] == "succeeded" and again["scenario_count"] == 1
    compared = cli.run("sandbox", "compare", listed["id"], again["id"])
    assert compared.exit_code == 0, compared.output
    assert "verdict: no significant difference" in compared.stdout
    comparison = cli.json("sandbox", "compare", listed["id"], again["id"])
    assert comparison["only_in_baseline"] == ["refund"]


def test_no_wait_prints_the_id(cli: Cli, suite_file: Path) -> None:
    started = cli.run(
        "sandbox", "run", "--agent", "support", "--suite", str(suite_file), "--model", MODEL,
        "--no-wait",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    run_id = started.stdout.strip()
    assert run_id.startswith("sbx_")
    assert cli.json("sandbox", "show", run_id)["id"] == run_id


def test_usage_errors_exit_with_their_codes(cli: Cli, suite_file: Path) -> None:
    both = cli.run(
        "sandbox", "run", "--agent", "support", "--suite", str(suite_file), "--build", "bld_x"
    )
    assert both.exit_code == 2 and "--suite FILE or --build" in both.stderr
    nobody = cli.run("sandbox", "run", "--agent", "nobody", "--suite", str(suite_file))
    assert nobody.exit_code == 4 and "no agent is named 'nobody'" in nobody.stderr
    mapped = cli.run(
        "sandbox", "run", "--agent", "support", "--suite", str(suite_file), "--model", MODEL,
        "--world", "orders=simulation:retail",
    )  # fmt: skip
    assert mapped.exit_code == 2 and "validation_error" in mapped.stderr
    assert "no tool source orders" in mapped.stderr
    bad = cli.run(
        "sandbox", "run", "--agent", "support", "--suite", str(suite_file), "--world", "orders"
    )
    assert bad.exit_code == 2
    broken = cli.tmp / "broken.yaml"
    broken.write_text("- just\n- a list\n")
    listed = cli.run("sandbox", "run", "--agent", "support", "--suite", str(broken))
    assert listed.exit_code == 2 and "is a mapping" in listed.stderr
    missing = cli.run("sandbox", "show", "sbx_missing")
    assert missing.exit_code == 4 and "not_found" in missing.stderr
    assert cli.json("sandbox", "list")["data"] == []


def test_world_options_become_the_api_mapping() -> None:
    assert parse_world(
        [
            "retail=simulation:retail",
            "crm=simulation:crm:small",
            "billing=staging:billing_staging",
            "hooks=recorded",
        ]
    ) == {
        "retail": {"target": "simulation", "backend": "retail"},
        "crm": {"target": "simulation", "backend": "crm", "seed": "small"},
        "billing": {"target": "staging", "source": "billing_staging"},
        "hooks": {"target": "recorded"},
    }
    for wrong in ("retail", "retail=simulation", "=recorded", "x=recorded:y", "x=live:y"):
        with pytest.raises(typer.BadParameter):
            parse_world([wrong])
