"""Real processes: `deputy serve` / `deputy quickstart` on a free port with a temporary data
directory, driven by the real `deputy` CLI in subprocesses, over real HTTP."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import stat
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    KEY,
    SHARED_DATA,
    START_TIMEOUT,
    base_env,
    deputy,
    deputy_json,
    deputy_server,
)

pytestmark = pytest.mark.integration

DATA = SHARED_DATA
POLICY = DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "policy.md"
GUIDELINES = DATA / "abcd" / "data" / "guidelines.json"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SPEC = """\
name: retail-support
goal: Help retail customers with orders, returns and exchanges, following the store policy.
persona:
  name: Robin
  tone: friendly and precise
procedures:
  - id: return_order
    title: Return a delivered order
    when: The customer wants to return items from a delivered order
    provenance: {{source: {material}, span: "Return delivered order"}}
    steps:
      - id: authenticate
        kind: ask
        text: Please tell me your email, or your name and zip code.
        slot: identity
      - id: confirm
        kind: say
        text: I will list the items and the refund method, then ask you to confirm.
      - id: explained
        kind: end
        exit: explained
        text: Tell me when you are ready.
    exits:
      - id: explained
        outcome: resolved
policies:
  - id: one_user_only
    text: Help only one user per conversation.
    provenance: {{source: {material}}}
"""


def test_serve_then_cli_end_to_end(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env["DEPUTY_DATA_DIR"] = str(tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    policy = work / POLICY.name
    guidelines = work / "abcd-guidelines.json"
    shutil.copyfile(POLICY, policy)
    shutil.copyfile(GUIDELINES, guidelines)

    with deputy_server("serve", env, tmp_path / "serve.log") as server:
        owner_key = server.read_until(KEY, START_TIMEOUT).group(0)
        server.wait_healthy()
        assert "will NOT be shown again" in server.output

        login = deputy(env, "login", "--url", server.url, "--key", owner_key)
        assert login.returncode == 0, login.stderr
        saved = Path(env["XDG_CONFIG_HOME"]) / "deputy" / "credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert deputy_json(env, "whoami")["workspace"]["name"] == "Default workspace"

        upload = deputy(env, "materials", "upload", str(policy), str(guidelines))
        assert upload.returncode == 0, upload.stderr
        materials = deputy_json(env, "materials", "list")["data"]
        by_name = {m["filename"]: m for m in materials}
        assert set(by_name) == {policy.name, guidelines.name}
        assert by_name[policy.name]["sha256"] == sha256_of(policy)
        assert by_name[guidelines.name]["media_type"] == "application/json"

        downloads = tmp_path / "downloads"
        downloads.mkdir()
        download = deputy(
            env, "materials", "download", by_name[policy.name]["id"], "-o", str(downloads)
        )
        assert download.returncode == 0, download.stderr
        assert sha256_of(downloads / policy.name) == sha256_of(POLICY)

        agent = deputy_json(
            env,
            "agents",
            "create",
            "retail-support",
            "--description",
            "Orders, returns and exchanges",
        )
        spec = work / "retail-support.yaml"
        spec.write_text(SPEC.format(material=by_name[policy.name]["id"]))
        created = deputy(
            env,
            "agents",
            "versions",
            "create",
            agent["id"],
            str(spec),
            "--note",
            "first draft from the retail policy",
        )
        assert created.returncode == 0, created.stderr
        versions = deputy_json(env, "agents", "versions", "list", agent["id"])["data"]
        assert [v["number"] for v in versions] == [1]
        assert (
            versions[0]["spec"]["procedures"][0]["provenance"]["source"]
            == by_name[policy.name]["id"]
        )
        assert deputy_json(env, "agents", "show", agent["id"])["latest_version"] == 1

        missing = deputy(env, "agents", "show", "agt_missing")
        assert missing.returncode == 4
        assert "not_found" in missing.stderr and "request id: req_" in missing.stderr
    # SIGTERM stops it gracefully (uvicorn then re-raises the signal, so -15 is a clean stop).
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()

    # A restart keeps the data and never shows a key again.
    with deputy_server("serve", env, tmp_path / "serve2.log") as again:
        again.read_until(re.compile(r"Serving the Deputy API"), START_TIMEOUT)
        again.wait_healthy()
        assert "set up before" in again.output
        assert not KEY.search(again.output)
        env_login = {**env, "DEPUTY_URL": again.url, "DEPUTY_API_KEY": owner_key}
        names = {m["filename"] for m in deputy_json(env_login, "materials", "list")["data"]}
        assert names == {policy.name, guidelines.name}


QUICKSTART_TIMEOUT = 1200.0
"""The whole loop, one sandbox scenario on the local 0.5B model included (minutes on 2 cores)."""


@pytest.mark.timeout(1800)
def test_quickstart_on_a_fresh_machine(tmp_path: Path) -> None:
    """The README's first command: build → sandbox scorecard → proposal approved → deployed
    (no terminal: no chat), then the platform keeps serving; a second start skips what only
    the first start's owner key could do."""
    env = base_env(tmp_path)
    env["DEPUTY_DATA_DIR"] = str(tmp_path / "fresh-data")
    env["DEPUTY_DEFAULT_MODEL"] = "local:qwen2.5-coder-0.5b"
    with deputy_server("quickstart", env, tmp_path / "quickstart.log", "--yes") as quick:
        quick.read_until(re.compile(r"Press Ctrl-C to stop"), QUICKSTART_TIMEOUT)
        owner_key = quick.read_until(KEY, 1).group(0)
        output = quick.output
        assert f"Deputy is running at {quick.url}" in output
        assert f"{quick.url}/docs" in output
        assert f"deputy login --url {quick.url} --key {owner_key}" in output
        assert f"curl -H 'Authorization: Bearer {owner_key}' {quick.url}/v1/workspace" in output
        assert httpx.get(f"{quick.url}/docs", timeout=10).status_code == 200
        client_env = {**env, "DEPUTY_URL": quick.url, "DEPUTY_API_KEY": owner_key}
        whoami = deputy(client_env, "whoami")
        assert whoami.returncode == 0 and "Default workspace" in whoami.stdout
        # the builder drafted the retail sample agent, its tools bound to the retail example
        built = re.search(r"(\d+) procedures, .*\n\s+filed as agent (agt_\w+) version 1", output)
        assert built is not None, output
        assert int(built.group(1)) >= 6
        agent_id = built.group(2)
        agent = deputy_json(client_env, "agents", "show", agent_id)
        assert agent["name"] == "retail-support"
        draft = (tmp_path / "fresh-data" / "retail-support.yaml").read_text()
        assert "source: retail" in draft and "provenance" in draft
        assert "admin_reset" not in draft  # the backend's operator endpoints are not tools
        # the sandbox proved it (a scorecard, whatever its score), the proposal was shown with
        # that evidence, approved and deployed
        assert re.search(r"1 scenarios x 1 trials \(1 conversations", output), output
        assert re.search(r"pass\^1\s+\d\.\d{3}", output)
        proposal_id = re.search(r"Proposal (prp_\w+):", output)
        assert proposal_id is not None and "Widens permissions" in output
        assert f"approved: {proposal_id.group(1)}" in output
        assert "version 1 is live on all channels" in output
        assert "skipped (no terminal)" in output
        proposal = deputy_json(client_env, "proposals", "show", proposal_id.group(1), "--json")
        assert proposal["status"] == "deployed" and proposal["gate"] == "passed"
        assert proposal["evidence"]["scorecard"]["conversations"] == 1
        deployments = deputy_json(client_env, "deployments", "list", agent_id, "--json")
        assert [d["live_version"] for d in deployments] == [1]
        verified = deputy(client_env, "audit", "verify")
        assert verified.returncode == 0 and "ok" in verified.stdout
        # the deployed agent answers, on its deployed version
        conversation = httpx.post(
            f"{quick.url}/v1/conversations",
            json={"agent_id": agent_id, "channel": "chat"},
            headers={"Authorization": f"Bearer {owner_key}"},
            timeout=30,
        ).json()
        assert conversation["agent_version"] == 1 and conversation["deployment_arm"] == "live"
    assert quick.process.returncode == 0
    assert (tmp_path / "fresh-data" / "deputy.sqlite3").exists()

    with deputy_server("quickstart", env, tmp_path / "quickstart2.log") as second:
        second.read_until(re.compile(r"Press Ctrl-C to stop"), START_TIMEOUT)
        assert "shown on first start" in second.output
        assert "deputy keys create" in second.output
        assert "the sample agent was built on first start" in second.output
        assert not KEY.search(second.output)
