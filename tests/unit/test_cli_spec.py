"""`deputy spec`: schema, lint, diff and fmt on local files, and diff of stored versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.api.app import create_app
from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.config import load_settings
from deputy.domain.spec import dump_json, dump_yaml, load_spec
from deputy.sdk import DeputyClient, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "examples" / "specs" / "retail_support.yaml"
BROKEN = ROOT / "examples" / "specs" / "broken.yaml"
BASE = "http://deputy.test"


def run(*args: str, state: CliState | None = None) -> Result:
    return CliRunner().invoke(app, list(args), obj=state or CliState())


def test_schema_prints_the_published_schema(tmp_path: Path) -> None:
    published = (ROOT / "schemas" / "agentspec-v1.schema.json").read_text(encoding="utf-8")
    result = run("spec", "schema")
    assert result.exit_code == 0 and result.stdout == published
    target = tmp_path / "schema.json"
    written = run("spec", "schema", "--output", str(target))
    assert written.exit_code == 0 and target.read_text(encoding="utf-8") == published


def test_lint_a_clean_spec_exits_0() -> None:
    result = run("spec", "lint", str(RETAIL))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{RETAIL}: no findings\n"


def test_lint_errors_exit_1_with_severity_code_path_and_message() -> None:
    result = run("spec", "lint", str(RETAIL), str(BROKEN))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{RETAIL}: no findings"
    assert (
        f"{BROKEN}: error [unknown_tool] procedures[voucher].steps[notify].tool: step `notify` of "
        "procedure `voucher` calls tool `notify_customer`, which the spec does not declare in "
        "`tools`"
    ) in lines
    assert f"{BROKEN}: warning [unused_slot] procedures[voucher].slots[phone]: " in result.stdout
    assert lines[-1] == f"{BROKEN}: 15 errors, 6 warnings"


def test_lint_json_lists_findings_per_file(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: x\nmode: fast\n")
    result = run("spec", "lint", "--json", str(BROKEN), str(invalid))
    assert result.exit_code == 2  # an invalid file outranks lint errors
    broken, bad = json.loads(result.stdout)
    assert broken["valid"] is True and len(broken["findings"]) == 21
    assert broken["findings"][0] == {
        "severity": "error",
        "code": "unknown_exit",
        "path": "procedures[refund].steps[declined].exit",
        "message": broken["findings"][0]["message"],
    }
    assert bad["valid"] is False
    assert {problem["loc"] for problem in bad["errors"]} == {"goal", "mode"}


def test_lint_invalid_or_unreadable_files_exit_2(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("name: x\ngoal: [unclosed\n")
    result = run("spec", "lint", str(invalid), str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert f"{invalid}: invalid: the agent spec is not valid YAML" in result.stderr
    assert "  line 3, column 1: while parsing a flow sequence" in result.stderr
    assert f"{tmp_path / 'missing.yaml'}: invalid: cannot read" in result.stderr


def modified_retail(tmp_path: Path) -> Path:
    data = load_spec(RETAIL.read_text(encoding="utf-8")).model_dump(mode="json")
    cancel = data["procedures"][1]
    next(s for s in cancel["steps"] if s["id"] == "cancel")["tool"] = "return_delivered_order_items"
    data["guardrails"]["preset"] = "regulated"
    target = tmp_path / "retail_v2.json"
    target.write_text(json.dumps(data))
    return target


def test_diff_of_two_files(tmp_path: Path) -> None:
    new = modified_retail(tmp_path)
    result = run("spec", "diff", str(RETAIL), str(new))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 changes, 1 widening what the agent may do.\n")
    assert (
        "  ~ procedures[cancel_pending_order].steps[cancel].tool: step `cancel` now calls "
        "`return_delivered_order_items` instead of `cancel_pending_order`"
    ) in result.stdout
    as_json = json.loads(run("spec", "diff", "--json", str(RETAIL), str(new)).stdout)
    assert as_json["widens_permissions"] is True
    assert [c["path"] for c in as_json["changes"]] == [
        "procedures[cancel_pending_order].steps[cancel].tool",
        "guardrails.preset",
    ]
    assert run("spec", "diff", str(RETAIL), str(RETAIL)).stdout == "No changes.\n"


def test_diff_usage_errors(tmp_path: Path) -> None:
    assert run("spec", "diff", str(RETAIL)).exit_code == 2
    assert run("spec", "diff", str(RETAIL), str(RETAIL), "--agent", "agt_x").exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a spec\n")
    result = run("spec", "diff", str(RETAIL), str(bad))
    assert result.exit_code == 2 and "the document must be a mapping" in result.stderr


def test_fmt_prints_checks_and_rewrites(tmp_path: Path) -> None:
    spec = load_spec(RETAIL.read_text(encoding="utf-8"))
    copy = tmp_path / "retail.yaml"
    copy.write_text(RETAIL.read_text(encoding="utf-8"))
    printed = run("spec", "fmt", str(copy))
    assert printed.exit_code == 0 and printed.stdout == dump_yaml(spec)
    assert run("spec", "fmt", "--check", str(copy)).exit_code == 1
    assert run("spec", "fmt", "--write", str(copy)).exit_code == 0
    assert copy.read_text(encoding="utf-8") == dump_yaml(spec)
    assert run("spec", "fmt", "--check", str(copy)).exit_code == 0
    as_json = tmp_path / "retail.json"
    as_json.write_text(json.dumps(spec.model_dump(mode="json")))
    assert run("spec", "fmt", "--write", str(as_json)).exit_code == 0
    assert as_json.read_text(encoding="utf-8") == dump_json(spec)
    assert load_spec(as_json.read_text(encoding="utf-8")) == spec


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliState]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, boot = prepare(load_settings())
    assert boot.created is not None
    try:
        with SyncASGITransport(create_app(platform)) as in_process:
            transport = httpx.MockTransport(in_process.handle_request)
            yield CliState(
                url=BASE,
                api_key=boot.created.owner_key.secret,
                transport=transport,
                retry=RetryPolicy(max_retries=1, backoff=0.0, jitter=False),
            )
    finally:
        platform.close()


def test_diff_of_two_stored_versions(server: CliState, tmp_path: Path) -> None:
    with DeputyClient(BASE, server.api_key, transport=server.transport) as sdk:
        agent = sdk.agents.create("retail")
        v1 = load_spec(RETAIL.read_text(encoding="utf-8")).model_dump(mode="json")
        sdk.agents.versions.create(agent.id, v1)
        v2 = json.loads(modified_retail(tmp_path).read_text(encoding="utf-8"))
        sdk.agents.versions.create(agent.id, v2)
    result = run("spec", "diff", "--agent", agent.id, state=server)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{agent.id}: version 1 → 2\n2 changes, 1 widening")
    same = run("spec", "diff", "--agent", agent.id, "--from", "2", "--to", "2", state=server)
    assert same.stdout.endswith("No changes.\n")
    as_json = json.loads(run("spec", "diff", "--agent", agent.id, "--json", state=server).stdout)
    assert (as_json["from_version"], as_json["to_version"]) == (1, 2)
    assert as_json["widens_permissions"] is True
    missing = run("spec", "diff", "--agent", agent.id, "--from", "7", state=server)
    assert missing.exit_code == 4


def test_versions_create_prints_lint_warnings_and_refuses_lint_errors(
    server: CliState, tmp_path: Path
) -> None:
    with DeputyClient(BASE, server.api_key, transport=server.transport) as sdk:
        agent = sdk.agents.create("retail")
    spec = load_spec(RETAIL.read_text(encoding="utf-8")).model_dump(mode="json")
    spec["procedures"][0]["slots"].append({"id": "nickname"})
    warned = tmp_path / "warned.json"
    warned.write_text(json.dumps(spec))
    created = run("agents", "versions", "create", agent.id, str(warned), state=server)
    assert created.exit_code == 0, created.output
    assert created.stderr == (
        "warning [unused_slot] procedures[authenticate_user].slots[nickname]: slot `nickname` of "
        "procedure `authenticate_user` is never asked, saved or used\n"
    )
    refused = run("agents", "versions", "create", agent.id, str(BROKEN), state=server)
    assert refused.exit_code == 2
    assert "error: validation_error: the agent spec has 15 lint errors" in refused.stderr
    assert "details:" not in refused.stderr
    assert "  procedures[voucher].steps[notify].tool: step `notify` of procedure" in refused.stderr
    repeated = tmp_path / "repeated.yaml"
    repeated.write_text("name: a\ngoal: b\nname: c\n")
    duplicate = run("agents", "versions", "create", agent.id, str(repeated), state=server)
    assert duplicate.exit_code == 2 and "found the key 'name' twice" in duplicate.stderr
