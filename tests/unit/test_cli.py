"""The `deputy` client commands, run with typer's CliRunner against the real app in process.

The CLI reaches the app only through the SDK's HTTP client (an in-process transport here)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.api.app import create_app
from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.config import load_settings
from deputy.llm.errors import ModelOutputInvalid, ModelUnavailable
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Usage
from deputy.sdk import RetryPolicy
from deputy.sdk.credentials import credentials_path
from deputy.sdk.testing import SyncASGITransport
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.testing import ScriptedModel, reply, structured

BASE = "http://deputy.test"
FAST = RetryPolicy(max_retries=1, backoff=0.0, jitter=False)


@dataclass
class Cli:
    transport: httpx.BaseTransport
    owner_key: str
    tmp: Path
    platform: Platform

    def run(
        self,
        *args: str,
        key: str | None = "owner",
        url: str | None = BASE,
        input: str | None = None,
    ) -> Result:
        api_key = self.owner_key if key == "owner" else key
        state = CliState(url=url, api_key=api_key, transport=self.transport, retry=FAST)
        return CliRunner().invoke(app, list(args), obj=state, input=input)

    def json(self, *args: str, key: str | None = "owner") -> Any:
        result = self.run(*args, "--json", key=key)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        with SyncASGITransport(create_app(platform)) as in_process:
            # A MockTransport in front, so each command closing its client leaves the app up.
            yield Cli(
                httpx.MockTransport(in_process.handle_request),
                bootstrap.created.owner_key.secret,
                tmp_path,
                platform,
            )
    finally:
        platform.close()


def test_login_whoami_logout(cli: Cli) -> None:
    result = cli.run("login", "--url", BASE, "--key", cli.owner_key, key=None, url=None)
    assert result.exit_code == 0, result.output
    assert "Default workspace" in result.stdout
    path = credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": BASE, "api_key": cli.owner_key}

    whoami = cli.run("whoami", key=None, url=None)  # from the saved login
    assert whoami.exit_code == 0, whoami.output
    assert "Default workspace" in whoami.stdout and "owner key" in whoami.stdout
    payload = cli.json("whoami", key=None)
    assert payload["key_source"] == "credentials file"
    assert payload["workspace"]["name"] == "Default workspace"
    assert payload["key"]["kind"] == "member" and "workspaces:create" in payload["key"]["scopes"]
    assert cli.owner_key not in whoami.stdout

    assert cli.run("logout").exit_code == 0
    assert not path.exists()
    assert "Not logged in" in cli.run("logout").stdout
    after = cli.run("whoami", key=None, url=None)
    assert after.exit_code == 3
    assert "deputy login" in after.stderr


def test_login_checks_the_key_first(cli: Cli) -> None:
    result = cli.run("login", "--url", BASE, "--key", "dpy_key_bogus_secret", key=None, url=None)
    assert result.exit_code == 3
    assert "error: unauthenticated" in result.stderr
    assert not credentials_path().exists()


def test_login_asks_for_the_key_when_not_given(cli: Cli) -> None:
    result = cli.run("login", "--url", BASE, key=None, url=None, input=cli.owner_key + "\n")
    assert result.exit_code == 0, result.output
    assert cli.owner_key not in result.stdout  # the prompt hides it
    assert json.loads(credentials_path().read_text())["api_key"] == cli.owner_key


def test_workspace_show_and_rename(cli: Cli) -> None:
    assert cli.json("workspace", "show")["name"] == "Default workspace"
    renamed = cli.run("workspace", "rename", "Acme")
    assert renamed.exit_code == 0 and "Acme" in renamed.stdout
    assert cli.json("workspace", "show")["name"] == "Acme"


def test_workspaces_create_prints_the_owner_key_once(cli: Cli) -> None:
    result = cli.run(
        "workspaces",
        "create",
        "Second",
        "--owner-email",
        "boss@example.com",
        "--owner-name",
        "Boss",
    )
    assert result.exit_code == 0, result.output
    assert "dpy_" in result.stdout
    assert "shown now and never again" in result.stderr
    created = cli.json(
        "workspaces", "create", "Third", "--owner-email", "c@example.com", "--owner-name", "C"
    )
    assert created["owner_key"]["secret"].startswith("dpy_")
    assert cli.json("workspace", "show", key=created["owner_key"]["secret"])["name"] == "Third"


def test_members_commands(cli: Cli) -> None:
    member = cli.json("members", "add", "ada@example.com", "--name", "Ada", "--role", "builder")
    assert member["role"] == "builder"
    listed = cli.json("members", "list")
    assert {m["email"] for m in listed["data"]} == {
        "owner@localhost.localdomain",
        "ada@example.com",
    }
    table = cli.run("members", "list")
    assert table.exit_code == 0 and "ada@example.com" in table.stdout
    assert cli.json("members", "show", member["id"])["name"] == "Ada"
    assert cli.json("members", "update", member["id"], "--role", "viewer")["role"] == "viewer"
    assert cli.run("members", "update", member["id"]).exit_code == 2
    bad_role = cli.run("members", "add", "x@example.com", "--name", "X", "--role", "boss")
    assert bad_role.exit_code == 2

    kept = cli.run("members", "remove", member["id"], input="n\n")
    assert kept.exit_code == 1
    assert cli.json("members", "show", member["id"])["id"] == member["id"]
    assert cli.run("members", "remove", member["id"], "--yes").exit_code == 0
    assert cli.run("members", "show", member["id"]).exit_code == 4


def test_keys_commands(cli: Cli) -> None:
    result = cli.run("keys", "create", "ci", "--scope", "agents:read", "--scope", "workspace:read")
    assert result.exit_code == 0, result.output
    assert "never again" in result.stderr
    secret = next(word for word in result.stdout.split() if word.startswith("dpy_"))
    assert cli.json("workspace", "show", key=secret)["name"] == "Default workspace"

    keys = cli.json("keys", "list")["data"]
    ci = next(k for k in keys if k["name"] == "ci")
    assert ci["scopes"] == ["agents:read", "workspace:read"]
    assert all("secret" not in k for k in keys)
    assert cli.json("keys", "show", ci["id"])["revoked_at"] is None
    listed = cli.run("keys", "list")
    assert "active" in listed.stdout

    assert cli.run("keys", "revoke", ci["id"]).exit_code == 0
    assert cli.json("keys", "show", ci["id"])["revoked_at"] is not None
    assert "revoked" in cli.run("keys", "list").stdout
    assert cli.run("workspace", "show", key=secret).exit_code == 3

    assert cli.run("keys", "create", "x", "--scope", "everything").exit_code == 2
    assert cli.run("keys", "create", "x", "--expires-at", "tomorrow").exit_code == 2
    later = cli.json("keys", "create", "temp", "--expires-at", "2999-01-01T00:00:00")
    assert later["key"]["expires_at"].startswith("2999-01-01")


def test_materials_upload_several_files_and_report_failures(cli: Cli) -> None:
    good = cli.tmp / "policy.md"
    good.write_text("# Policy\nRefunds within 30 days.\n")
    other = cli.tmp / "faq.txt"
    other.write_text("Q: Where is my order?\nA: Let me check.\n")
    missing = cli.tmp / "missing.md"

    result = cli.run("materials", "upload", str(good), str(missing), str(other))
    assert result.exit_code == 2  # the only failure was a local file
    assert "policy.md" in result.stdout and "faq.txt" in result.stdout
    assert "missing.md" in result.stderr and "1 of 3 file(s) failed" in result.stderr

    disguised = cli.tmp / "image.png"
    disguised.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    mixed = cli.run("materials", "upload", str(disguised), str(missing), "--json")
    assert mixed.exit_code == 1  # different kinds of failure
    report = json.loads(mixed.stdout)
    assert report["uploaded"] == []
    assert {f["code"] for f in report["failed"]} == {"unsupported_media_type", "local_file_error"}
    assert all(f["request_id"] for f in report["failed"] if f["code"] != "local_file_error")

    listed = cli.json("materials", "list", "--limit", "1", "--all")
    assert [m["filename"] for m in listed["data"]] == ["faq.txt", "policy.md"]
    assert listed["next_cursor"] is None
    first_page = cli.run("materials", "list", "--limit", "1")
    assert first_page.exit_code == 0 and "--cursor" in first_page.stderr


def test_materials_show_download_delete(cli: Cli) -> None:
    source = cli.tmp / "sop.md"
    source.write_bytes(b"# SOP\n" + b"step\n" * 20_000)
    uploaded = cli.json("materials", "upload", str(source))["uploaded"][0]
    assert cli.json("materials", "show", uploaded["id"])["sha256"] == uploaded["sha256"]

    downloads = cli.tmp / "downloads"
    downloads.mkdir()
    result = cli.run("materials", "download", uploaded["id"], "-o", str(downloads))
    assert result.exit_code == 0, result.output
    copy = downloads / "sop.md"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == uploaded["sha256"]
    again = cli.run("materials", "download", uploaded["id"], "-o", str(copy))
    assert again.exit_code == 1 and "--force" in again.stderr
    forced = cli.run("materials", "download", uploaded["id"], "-o", str(copy), "--force")
    assert forced.exit_code == 0
    to_stdout = cli.run("materials", "download", uploaded["id"], "-o", "-")
    assert to_stdout.stdout_bytes == source.read_bytes()

    assert cli.run("materials", "delete", uploaded["id"], "-y").exit_code == 0
    gone = cli.run("materials", "show", uploaded["id"])
    assert gone.exit_code == 4


def test_agents_and_versions(cli: Cli) -> None:
    agent = cli.json("agents", "create", "refunds", "--description", "Refund desk")
    assert cli.json("agents", "show", agent["id"])["description"] == "Refund desk"
    assert "refunds" in cli.run("agents", "list").stdout

    spec_yaml = cli.tmp / "spec.yaml"
    spec_yaml.write_text(
        "name: refunds\ngoal: Refund orders within policy.\n"
        "policies:\n  - id: thirty_days\n    text: Never refund after 30 days.\n"
    )
    created = cli.run("agents", "versions", "create", agent["id"], str(spec_yaml), "--note", "v1")
    assert created.exit_code == 0, created.output
    assert "Created version 1" in created.stdout
    spec_json = cli.tmp / "spec.json"
    spec_json.write_text(json.dumps({"name": "refunds", "goal": "Refund faster."}))
    second = cli.json("agents", "versions", "create", agent["id"], str(spec_json))
    assert second["number"] == 2 and second["spec"]["goal"] == "Refund faster."

    versions = cli.json("agents", "versions", "list", agent["id"])
    assert [v["number"] for v in versions["data"]] == [2, 1]
    shown = cli.run("agents", "versions", "show", agent["id"], "1")
    assert shown.exit_code == 0
    assert "Never refund after 30 days." in shown.stdout and "v1" in shown.stdout
    assert cli.json("agents", "show", agent["id"])["latest_version"] == 2


def test_invalid_spec_files(cli: Cli) -> None:
    agent = cli.json("agents", "create", "checker")
    broken = cli.tmp / "broken.yaml"
    broken.write_text("goal: [unclosed\n")
    assert cli.run("agents", "versions", "create", agent["id"], str(broken)).exit_code == 2
    listed = cli.tmp / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert cli.run("agents", "versions", "create", agent["id"], str(listed)).exit_code == 2
    incomplete = cli.tmp / "incomplete.yaml"
    incomplete.write_text("name: checker\n")
    result = cli.run("agents", "versions", "create", agent["id"], str(incomplete))
    assert result.exit_code == 2
    assert "error: validation_error" in result.stderr
    assert "request id: req_" in result.stderr and "goal" in result.stderr
    missing_file = cli.run("agents", "versions", "create", agent["id"], str(cli.tmp / "no.yaml"))
    assert missing_file.exit_code == 2


def test_errors_print_code_message_request_id_and_exit_codes(cli: Cli) -> None:
    not_found = cli.run("agents", "show", "agt_missing")
    assert not_found.exit_code == 4
    assert "error: not_found: agent 'agt_missing' not found" in not_found.stderr
    assert "request id: req_" in not_found.stderr
    assert not_found.stdout == ""

    assert cli.run("agents", "show", "agt_missing", key="dpy_key_wrong_secret").exit_code == 3
    assert cli.run("agents", "list", key=None).exit_code == 3  # no key anywhere
    viewer = cli.json("members", "add", "v@example.com", "--name", "V", "--role", "viewer")
    viewer_key = cli.json("keys", "create", "v", "--member-id", viewer["id"])["secret"]
    denied = cli.run("agents", "create", "nope", key=viewer_key)
    assert denied.exit_code == 3 and "permission_denied" in denied.stderr
    assert cli.run("agents", "create", "bad/name").exit_code == 2
    assert cli.run("agents", "list", "--cursor", "garbage").exit_code == 2
    assert cli.run("agents", "bogus-command").exit_code == 2
    cli.run("agents", "create", "twice")
    assert cli.run("agents", "create", "twice").exit_code == 1  # conflict


def test_unreachable_server_exits_5(cli: Cli) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    cli.transport = httpx.MockTransport(refuse)
    result = cli.run("workspace", "show")
    assert result.exit_code == 5
    assert "cannot reach Deputy at http://deputy.test" in result.stderr


def test_version_and_help(cli: Cli) -> None:
    version = cli.run("--version")
    assert version.exit_code == 0 and version.stdout.startswith("deputy ")
    help_text = cli.run("--help").stdout
    for command in (
        "serve",
        "quickstart",
        "login",
        "logout",
        "whoami",
        "workspaces",
        "workspace",
        "members",
        "keys",
        "materials",
        "agents",
        "models",
        "worker",
    ):
        assert command in help_text


async def _no_wait(_seconds: float) -> None:
    return None


def serve_fake(cli: Cli, *answers: Any) -> ScriptedModel:
    """`openai:gpt-test`, answering from a script behind the real registry stack."""
    fake = ScriptedModel(list(answers), name="openai:gpt-test")
    hub = cli.platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(cli.platform.db),
        served={fake.name: fake},
        sleep=_no_wait,
    )
    return fake


def test_models_list(cli: Cli) -> None:
    result = cli.run("models", "list")
    assert result.exit_code == 0, result.output
    assert "local:qwen2.5-coder-1.5b" in result.stdout and "local:smollm2-135m" in result.stdout
    assert "Default model: local:qwen2.5-coder-1.5b (the platform default)" in result.stdout
    assert "openai (no key)" in result.stdout
    catalog = cli.json("models", "list")
    assert catalog["default_model"] == "local:qwen2.5-coder-1.5b"
    for model in catalog["local"]:
        if model["state"] == "not_installed":
            assert model["install_command"] in result.stdout.replace("\n", "")


def test_models_try_prints_the_answer_and_its_cost(cli: Cli) -> None:
    fake = serve_fake(
        cli,
        reply("Refunds take 5-7 days.", usage=Usage(42, 7)),
        structured({"order_id": "W2378156"}),
        reply("from stdin"),
        reply("as json"),
    )
    result = cli.run(
        "models", "try", "--model", "openai:gpt-test", "How long?", "--system", "Be brief."
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Refunds take 5-7 days.\n"
    assert "model openai:gpt-test" in result.stderr and "42 in, 7 out" in result.stderr
    assert [m.role for m in fake.last_request.messages] == ["system", "user"]

    schema = cli.tmp / "order.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"order_id": {}}}))
    structured_result = cli.run(
        "models", "try", "Order id?", "--model", "openai:gpt-test", "--schema", str(schema)
    )
    assert structured_result.exit_code == 0, structured_result.output
    assert json.loads(structured_result.stdout) == {"order_id": "W2378156"}

    piped = cli.run(
        "models", "try", "-", "--model", "openai:gpt-test", "--max-tokens", "9", input="Hi?\n"
    )
    assert piped.stdout == "from stdin\n"
    assert fake.last_request.messages[-1].content == "Hi?"
    assert fake.last_request.max_tokens == 9
    payload = cli.json("models", "try", "openai:gpt-test", "x")  # the model as first argument
    assert (payload["text"], payload["model"]) == ("as json", "openai:gpt-test")
    fake.assert_all_used()
    twice = cli.run("models", "try", "openai:gpt-test", "x", "--model", "openai:gpt-test")
    assert twice.exit_code == 2

    not_a_schema = cli.tmp / "list.json"
    not_a_schema.write_text("[1, 2]")
    assert cli.run("models", "try", "x", "--schema", str(not_a_schema)).exit_code == 2
    broken = cli.tmp / "broken.json"
    broken.write_text("{")
    assert cli.run("models", "try", "x", "--schema", str(broken)).exit_code == 2
    assert cli.run("models", "try", "x", "--max-tokens", "0").exit_code == 2


def test_models_try_failures_exit_codes(cli: Cli) -> None:
    fake = serve_fake(
        cli, *[ModelUnavailable("provider down")] * 3, ModelOutputInvalid("could not follow")
    )
    down = cli.run("models", "try", "hi", "--model", "openai:gpt-test")
    assert down.exit_code == 5
    assert "error: unavailable:" in down.stderr and "provider down" in down.stderr
    assert "request id: req_" in down.stderr
    assert down.stdout == ""
    invalid = cli.run("models", "try", "hi", "--model", "openai:gpt-test")
    assert invalid.exit_code == 1 and "error: model_output_invalid" in invalid.stderr
    fake.assert_all_used()  # neither failure was retried by the CLI
    unknown = cli.run("models", "try", "hi", "--model", "local:gpt-9")
    assert unknown.exit_code == 2 and "local:gpt-9" in unknown.stderr


def test_model_endpoints_never_echo_the_key(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("OLLAMA_KEY", secret)
    added = cli.run(
        "models",
        "endpoints",
        "add",
        "ollama",
        "http://127.0.0.1:11434/v1",
        "--api-key-env",
        "OLLAMA_KEY",
    )
    assert added.exit_code == 0, added.output
    assert "openai-compatible:ollama/<model>" in added.stderr
    from_stdin = cli.run(
        "models",
        "endpoints",
        "add",
        "vllm",
        "http://127.0.0.1:8000/v1",
        "--api-key-stdin",
        "--json",
        input=secret + "\n",
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    assert json.loads(from_stdin.stdout)["has_api_key"] is True
    keyless = cli.json("models", "endpoints", "add", "local", "http://127.0.0.1:9000/v1")
    assert keyless["has_api_key"] is False

    listed = cli.run("models", "endpoints", "list")
    assert listed.exit_code == 0 and "ollama" in listed.stdout and "stored" in listed.stdout
    endpoints = cli.json("models", "endpoints", "list")
    assert [e["name"] for e in endpoints] == ["local", "ollama", "vllm"]
    assert "ollama" in cli.json("models", "list")["endpoints"]
    for result in (added, from_stdin, listed):
        assert secret not in result.output
    assert secret not in json.dumps(endpoints)

    duplicate = cli.run("models", "endpoints", "add", "ollama", "http://127.0.0.1:1/v1")
    assert duplicate.exit_code == 1 and "conflict" in duplicate.stderr
    monkeypatch.delenv("OLLAMA_KEY")
    missing = cli.run(
        "models", "endpoints", "add", "x", "http://127.0.0.1:1/v1", "--api-key-env", "OLLAMA_KEY"
    )
    assert missing.exit_code == 2 and "OLLAMA_KEY" in missing.stderr
    both = cli.run(
        "models",
        "endpoints",
        "add",
        "x",
        "http://127.0.0.1:1/v1",
        "--api-key-env",
        "A",
        "--api-key-stdin",
    )
    assert both.exit_code == 2
    empty = cli.run(
        "models", "endpoints", "add", "x", "http://127.0.0.1:1/v1", "--api-key-stdin", input="\n"
    )
    assert empty.exit_code == 2
    assert cli.run("models", "endpoints", "add", "x", "not-a-url").exit_code == 2
    # no option takes the key itself
    as_argument = cli.run("models", "endpoints", "add", "x", "http://h/v1", "--api-key", secret)
    assert as_argument.exit_code == 2 and secret not in as_argument.output

    assert cli.run("models", "endpoints", "remove", "ollama", input="n\n").exit_code == 1
    assert cli.run("models", "endpoints", "remove", "ollama", "--yes").exit_code == 0
    assert cli.run("models", "endpoints", "remove", "ollama", "-y").exit_code == 4
    assert [e["name"] for e in cli.json("models", "endpoints", "list")] == ["local", "vllm"]


def test_set_model_for_the_workspace_and_an_agent(cli: Cli) -> None:
    result = cli.run("workspace", "set-model", "local:smollm2-135m")
    assert result.exit_code == 0, result.output
    assert "now uses local:smollm2-135m" in result.stdout
    assert cli.json("workspace", "show")["default_model"] == "local:smollm2-135m"
    assert cli.json("models", "list")["default_model"] == "local:smollm2-135m"
    cli.run("workspace", "rename", "Acme")
    assert cli.json("workspace", "show")["default_model"] == "local:smollm2-135m"
    reset = cli.json("workspace", "set-model", "--platform-default")
    assert (reset["name"], reset["default_model"]) == ("Acme", None)
    assert "platform default" in cli.run("workspace", "set-model", "--platform-default").stdout
    assert cli.run("workspace", "set-model").exit_code == 2
    assert cli.run("workspace", "set-model", "local:x", "--platform-default").exit_code == 2
    invalid = cli.run("workspace", "set-model", "gpt-4")
    assert invalid.exit_code == 2 and "validation_error" in invalid.stderr

    agent = cli.json("agents", "create", "refunds", "--description", "Refund desk")
    chosen = cli.run("agents", "set-model", agent["id"], "openai:gpt-4.1-mini")
    assert chosen.exit_code == 0 and "now uses openai:gpt-4.1-mini" in chosen.stdout
    shown = cli.json("agents", "show", agent["id"])
    assert (shown["model"], shown["description"]) == ("openai:gpt-4.1-mini", "Refund desk")
    back = cli.json("agents", "set-model", agent["id"], "--workspace-default")
    assert back["model"] is None
    assert (
        "workspace's model"
        in cli.run("agents", "set-model", agent["id"], "--workspace-default").stdout
    )
    assert cli.run("agents", "set-model", agent["id"]).exit_code == 2
    assert cli.run("agents", "set-model", "agt_missing", "local:x").exit_code == 4
