"""`deputy probes` with typer's CliRunner, and `AsyncDeputyClient.probes`, against the real app
in process: add (from a scenario or a suite), list, show, run (exit 1 when it did not pass),
runs, update, remove; durations as people write them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import yaml

from deputy.api.app import create_app
from deputy.cli.probes import duration_text, seconds_of
from deputy.config import load_settings
from deputy.llm.registry import ModelRegistry
from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.sdk.testing import SyncASGITransport
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.testing import FunctionModel
from tests.integration.probe_agent import GOOD_HOURS, MODEL, Switch, hours_spec
from tests.unit.test_cli import BASE, FAST, Cli

SUITE = {
    "name": "front desk",
    "scenarios": [
        {
            "id": "hours",
            "title": "Opening hours",
            "customer": {"persona": "A shopper.", "goal": "Know when to come."},
            "script": ["When are you open?"],
            "assertions": {"must_communicate": [GOOD_HOURS]},
        },
        {
            "id": "greeting",
            "title": "Greeting",
            "customer": {"persona": "A shopper.", "goal": "Say hello."},
            "script": ["Hello"],
        },
    ],
}


def serve_hours_model(platform: Platform) -> None:
    hub = platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(platform.db),
        served={MODEL: FunctionModel(Switch().answer, name=MODEL)},
    )


def front_desk(sdk: DeputyClient) -> str:
    """The agent with the good hours (1) deployed and other hours (2) stored."""
    agent = sdk.agents.create("front-desk")
    sdk.agents.update(agent.id, model=MODEL)
    sdk.agents.versions.create(agent.id, hours_spec(GOOD_HOURS))
    sdk.agents.versions.create(agent.id, hours_spec("by appointment only"))
    sdk.deployments.deploy(agent.id, 1)
    return agent.id


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    serve_hours_model(platform)
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


def test_durations() -> None:
    assert [seconds_of(text, "--every") for text in ("90", "90s", "5m", "1.5h", "1d")] == [
        90,
        90,
        300,
        5400,
        86_400,
    ]
    with pytest.raises(typer.Exit):
        seconds_of("five minutes", "--every")
    assert [duration_text(s) for s in (45, 300, 3600, 86_400, 90)] == [
        "45s",
        "5m",
        "1h",
        "1d",
        "90s",
    ]


def test_the_probe_commands(cli: Cli) -> None:
    with DeputyClient(BASE, cli.owner_key, transport=cli.transport, retry=FAST) as sdk:
        agent_id = front_desk(sdk)
    suite = cli.tmp / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    add = ("probes", "add", "--agent", "front-desk", "--name", "hours", "--scenario", str(suite))

    ambiguous = cli.run(*add)
    assert ambiguous.exit_code == 2 and "--scenario-id (hours, greeting)" in ambiguous.output
    too_often = cli.run(*add, "--scenario-id", "hours", "--every", "30s")
    assert too_often.exit_code == 2 and "at least 60" in too_often.output
    created = cli.json(*add, "--scenario-id", "hours", "--every", "5m", "--disabled")
    assert (created["agent_id"], created["interval_seconds"]) == (agent_id, 300)
    assert created["enabled"] is False and created["scenario"]["id"] == "hours"

    listed = cli.run("probes", "list", "--agent", "front-desk")
    assert listed.exit_code == 0 and "hours" in listed.output and "5m" in listed.output

    passed = cli.run("probes", "run", "hours")
    assert passed.exit_code == 0, passed.output
    assert "PASSED (version 1)" in passed.output and f"We are open {GOOD_HOURS}." in passed.output
    with DeputyClient(BASE, cli.owner_key, transport=cli.transport, retry=FAST) as sdk:
        sdk.deployments.deploy(agent_id, 2)
    failed = cli.run("probes", "run", created["id"])
    assert failed.exit_code == 1, failed.output
    assert "FAILED (version 2)" in failed.output and f"never said '{GOOD_HOURS}'" in failed.output
    assert "opened (ticket)" in failed.output

    runs = cli.json("probes", "runs", "hours")
    assert [run["status"] for run in runs["data"]] == ["failed", "passed"]
    only = cli.json("probes", "runs", "hours", "--status", "passed")
    assert [run["status"] for run in only["data"]] == ["passed"]
    assert cli.run("probes", "runs", "hours", "--status", "maybe").exit_code == 2

    shown = cli.run("probes", "show", "hours")
    assert shown.exit_code == 0
    assert "1. When are you open?" in shown.output and "Latest run:" in shown.output

    changed = cli.json("probes", "update", "hours", "--every", "1h", "--enable")
    assert (changed["interval_seconds"], changed["enabled"]) == (3600, True)
    assert cli.run("probes", "update", "hours").exit_code == 2

    removed = cli.run("probes", "remove", "hours", "--yes")
    assert removed.exit_code == 0 and created["id"] in removed.output
    assert cli.run("probes", "show", "hours").exit_code == 4


def test_the_async_client(cli: Cli) -> None:
    with DeputyClient(BASE, cli.owner_key, transport=cli.transport, retry=FAST) as sdk:
        agent_id = front_desk(sdk)
    app = create_app(cli.platform)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncDeputyClient(BASE, cli.owner_key, transport=transport, retry=FAST) as sdk:
            probe = await sdk.probes.create(
                agent_id,
                "hours",
                SUITE["scenarios"][0],  # type: ignore[index]
                interval_seconds=600,
                enabled=False,
            )
            assert [p.id async for p in sdk.probes.iter_all(agent_id=agent_id)] == [probe.id]
            run = await sdk.probes.run(probe.id)
            assert run.status == "passed" and run.turns[0].reply == f"We are open {GOOD_HOURS}."
            assert [r.id async for r in sdk.probes.iter_runs(probe.id)] == [run.id]
            changed = await sdk.probes.update(probe.id, max_turn_latency_ms=60_000)
            assert changed.max_turn_latency_ms == 60_000
            assert (await sdk.probes.get(probe.id)).name == "hours"
            await sdk.probes.delete(probe.id)
            assert (await sdk.probes.list()).data == []
            with pytest.raises(ValueError, match="no setting"):
                await sdk.probes.update(probe.id, colour="blue")

    asyncio.run(scenario())
