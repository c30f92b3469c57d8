"""`deputy improve` and `client.improvement` (sync and async) against the real app in process:
the outdoor store's agent that never offers exchanges (the scripted model of
tests/integration/test_improvement_api.py), a run with its stage progress and its readable
report, show, list, and the errors scripts rely on."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deputy.api.app import create_app
from deputy.cli.improve import parse_world
from deputy.config import load_settings
from deputy.domain.improvement import ImprovementRun
from deputy.llm.registry import ModelRegistry
from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.sdk.errors import ConflictError, DeputyTimeoutError
from deputy.sdk.testing import SyncASGITransport
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.startup import prepare
from deputy.testing import FunctionModel
from tests.integration.test_improvement_api import EXCHANGES, MODEL, RETURNS, SPEC, Store
from tests.unit.test_cli import BASE, Cli


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    hub = platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(platform.db),
        served={MODEL: FunctionModel(Store(), name=MODEL)},
    )
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


def _http(cli: Cli) -> httpx.Client:
    return httpx.Client(
        transport=cli.transport,
        base_url=BASE,
        headers={"Authorization": f"Bearer {cli.owner_key}"},
    )


def store_agent(cli: Cli) -> str:
    """The agent (never deployed: a manual run needs no deployment) and its production
    conversations: four exchange requests it cannot serve, one return it resolves."""
    with _http(cli) as http:
        agent_id: str = http.post("/v1/agents", json={"name": "store-support"}).json()["id"]
        assert http.post(f"/v1/agents/{agent_id}/versions", json={"spec": SPEC}).status_code == 201
        assert http.patch(f"/v1/agents/{agent_id}", json={"model": MODEL}).status_code == 200
        for text, outcome in [*((e, "abandoned") for e in EXCHANGES), (RETURNS[0], "resolved")]:
            conversation = http.post("/v1/conversations", json={"agent_id": agent_id}).json()
            base = f"/v1/conversations/{conversation['id']}"
            assert http.post(f"{base}/messages", json={"text": text}).status_code == 200
            assert http.post(f"{base}/close", json={"outcome": outcome}).status_code == 200
    return agent_id


def test_run_prints_the_report_and_the_run_can_be_read(cli: Cli) -> None:
    store_agent(cli)
    ran = cli.run("improve", "run", "store-support", "--trials", "1")
    assert ran.exit_code == 0, ran.output
    assert "Improvement run imp_" in ran.stderr
    out = ran.stdout
    assert "succeeded (manual)" in out and f"model: {MODEL}" in out
    assert "evaluations: 5, failed 4 (80%), resolved 1" in out
    assert "by cause: missing_procedure 4" in out
    assert "c1: missing_procedure, 4 conversations (80%): exchange a delivered item" in out
    assert "regressions: none" in out
    assert "c1: PROPOSED: no scenario regressed" in out
    assert "change: Also handle exchanges of delivered items." in out
    assert "version 2" in out
    ab = re.search(r"(better|no_significant_difference), pass\^1 (\S+) -> (\S+), p = ", out)
    assert ab is not None and float(ab[3]) > float(ab[2])
    assert "      regressions: none\n      improvements: reg_" in out
    assert "proposal: prp_" in out

    (listed,) = cli.json("improve", "list", "--agent", "store-support")["data"]
    assert listed["status"] == "succeeded" and listed["proposal_ids"]
    shown = cli.run("improve", "show", listed["id"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"Improvement run {listed['id']}: succeeded")
    assert f"proposals: {listed['proposal_ids'][0]}" in shown.stdout
    as_json = ImprovementRun.model_validate(cli.json("improve", "show", listed["id"]))
    assert as_json.report is not None and len(as_json.report.evaluations) == 5
    table = cli.run("improve", "list")
    assert listed["id"] in table.stdout and listed["proposal_ids"][0] in table.stdout

    queued = cli.json("improve", "run", "store-support", "--no-wait")
    assert queued["status"] == "queued" and queued["report"] is None


def test_usage_errors(cli: Cli) -> None:
    bad = cli.run("improve", "run", "store-support", "--world", "{not json")
    assert bad.exit_code == 2 and "not JSON" in bad.output
    missing = cli.run("improve", "run", "nobody")
    assert missing.exit_code == 4 and "no agent is named 'nobody'" in missing.stderr
    store_agent(cli)
    since = cli.run("improve", "run", "store-support", "--since", "2999-01-01")
    assert since.exit_code == 2 and "the window is empty" in since.stderr
    assert parse_world('{"sources": {"shop": {"target": "recorded"}}}') == {
        "shop": {"target": "recorded"}
    }


def test_the_sdks_start_wait_list_and_cancel(cli: Cli) -> None:
    agent_id = store_agent(cli)
    seen: list[tuple[str, str | None]] = []
    with DeputyClient(BASE, cli.owner_key, transport=cli.transport) as sdk:
        started = sdk.improvement.start(agent_id, trials=1, max_candidates=1)
        assert started.status == "queued" and started.trigger == "manual"
        with pytest.raises(DeputyTimeoutError):
            sdk.improvement.wait(started.id, timeout=0)
        run = sdk.improvement.wait(
            started.id, poll=0.02, on_progress=lambda r: seen.append((r.status, r.progress.stage))
        )
        assert run.status == "succeeded" and run.report is not None
        assert seen[-1][0] == "succeeded" and len(seen) >= 2
        assert [r.id for r in sdk.improvement.list(agent_id=agent_id).data] == [run.id]
        assert sdk.improvement.get(run.id) == run
        with pytest.raises(ConflictError):
            sdk.improvement.cancel(run.id)
    assert run.proposal_ids and run.report.candidates[0].proposal_id == run.proposal_ids[0]

    async def scenario() -> ImprovementRun:
        async with AsyncDeputyClient(
            BASE, cli.owner_key, transport=httpx.ASGITransport(app=create_app(cli.platform))
        ) as client:
            again = await client.improvement.start(agent_id)
            done = await client.improvement.wait(again.id, poll=0.02)
            assert next(r.id for r in (await client.improvement.list()).data) == again.id
            return done

    done = asyncio.run(scenario())
    assert done.status == "succeeded", done.error
    assert done.report is not None and done.report.conversations == 0
    assert json.loads(done.model_dump_json())["report"]["previous_conversations"] == 5
