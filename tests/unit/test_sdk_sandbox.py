"""`client.sandbox` of both SDK clients against the real app in process: an agent without tools
on a scripted model, scripted customers, a scorecard, trials, a comparison, cancelling."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.ids import new_id
from deputy.domain.sandbox import SandboxRun
from deputy.domain.scenarios import ScenarioSuite
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.sdk import AsyncDeputyClient, DeputyClient, DeputyTimeoutError
from deputy.sdk.errors import ConflictError, ValidationFailedError
from deputy.sdk.testing import SyncASGITransport
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, reply
from tests.unit.test_sdk_async import BASE, FAST

MODEL = "openai:sandbox-sdk"
SPEC = {"name": "Support", "goal": "Answer order questions.", "mode": "reasoning"}
SHIPPED = "Your order has shipped and arrives on Friday."


def suite(name: str = "orders") -> dict[str, Any]:
    """Two scripted scenarios: the agent says what the first wants, not the second."""

    def scenario(sid: str, asks: str, fact: str) -> dict[str, Any]:
        return {
            "id": sid,
            "title": asks,
            "customer": {"persona": "A customer.", "goal": asks},
            "script": [asks],
            "assertions": {"must_communicate": [fact]},
        }

    return {
        "name": name,
        "scenarios": [
            scenario("where_is_it", "Where is my order?", "shipped"),
            scenario("refund", "Refund my order.", "refunded"),
        ],
    }


def serve(platform: Platform) -> list[ModelRequest]:
    """The agent's model, `MODEL`: always the same answer. Returns the requests it got."""
    requests: list[ModelRequest] = []

    def answer(request: ModelRequest) -> ModelResponse:
        requests.append(request)
        return reply(SHIPPED)

    hub = platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(platform.db),
        served={MODEL: FunctionModel(answer, name=MODEL)},
    )
    return requests


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    deployed, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        yield deployed, bootstrap.created.owner_key.secret
    finally:
        deployed.close()


def test_async_client_runs_reads_and_compares(platform: tuple[Platform, str]) -> None:
    deployed, key = platform
    requests = serve(deployed)
    app = create_app(deployed)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncDeputyClient(BASE, key, transport=transport, retry=FAST) as client:
            agent = await client.agents.create("support")
            await client.agents.versions.create(agent.id, SPEC)
            run = await client.sandbox.create(
                agent.id, suite=ScenarioSuite.model_validate(suite()), trials=2, model=MODEL
            )
            assert (run.status, run.scenario_count, run.trials) == ("queued", 2, 2)
            seen: list[SandboxRun] = []
            done = await client.sandbox.wait(run.id, timeout=60, poll=0.02, on_progress=seen.append)
            assert done.status == "succeeded" and seen[-1] == done
            moves = [(r.status, r.progress) for r in seen]
            assert all(a != b for a, b in itertools.pairwise(moves))
            assert done.progress.model_dump() == {"done": 4, "total": 4, "passed": 2, "errors": 0}
            card = await client.sandbox.scorecard(run.id)
            assert card == done.scorecard and card.pass_hat[1].value == 0.5
            trials = [t async for t in client.sandbox.iter_trials(run.id, page_size=3)]
            assert [(t.scenario_id, t.trial, t.passed) for t in trials] == [
                ("where_is_it", 0, True),
                ("where_is_it", 1, True),
                ("refund", 0, False),
                ("refund", 1, False),
            ]
            assert trials[0].scenario_title == "Where is my order?"
            assert trials[0].transcript[-1].text == SHIPPED
            page = await client.sandbox.trials(run.id, scenario_id="refund")
            assert [t.trial for t in page.data] == [0, 1]

            subset = await client.sandbox.run(
                agent.id,
                suite=suite(),
                scenario_ids=["refund"],
                model=MODEL,
                timeout=60,
                poll=0.02,
            )
            comparison = await client.sandbox.compare(run.id, subset.id)
            assert comparison.scenarios == 1 and comparison.only_in_baseline == ("where_is_it",)
            listed = await client.sandbox.list(agent_id=agent.id)
            assert [r.id for r in listed.data] == [subset.id, run.id]
            with pytest.raises(ConflictError):
                await client.sandbox.cancel(run.id)

    asyncio.run(scenario())
    assert len(requests) == 5  # one agent turn per trial


def test_sync_client_reports_errors_and_gives_up_waiting(platform: tuple[Platform, str]) -> None:
    deployed, key = platform
    serve(deployed)
    with (
        SyncASGITransport(create_app(deployed)) as transport,
        DeputyClient(BASE, key, transport=transport, retry=FAST) as client,
    ):
        agent = client.agents.create("support")
        client.agents.versions.create(agent.id, SPEC)
        with pytest.raises(ValidationFailedError) as refused:
            client.sandbox.create(
                agent.id, suite=suite(), model=MODEL, world={"orders": {"target": "recorded"}}
            )
        assert refused.value.details["sources"] == ["orders"]

        with deployed.db.session() as session:
            workspace_id = session.scalars(select(t.Workspace.id)).one()
        held = t.SandboxRun(
            id=new_id("sbx"),
            workspace_id=workspace_id,
            agent_id=agent.id,
            agent_version=1,
            status="running",
            suite=suite(),
            suite_sha256="x",
            scenario_ids=[],
            trials=1,
            seed=0,
            concurrency=1,
            model=MODEL,
            world={"sources": {}},
            world_description={},
            progress={"done": 1, "total": 2, "passed": 1, "errors": 0},
            attempts=1,
            lease_owner="another-process",
            lease_expires_at=utcnow() + timedelta(hours=1),
            created_by_key_id="key_test",
        )
        with deployed.db.tenant_session(workspace_id) as session:
            session.add(held)
        seen: list[SandboxRun] = []
        with pytest.raises(DeputyTimeoutError, match="did not finish"):
            client.sandbox.wait(held.id, timeout=0.3, poll=0.05, on_progress=seen.append)
        assert [r.progress.done for r in seen] == [1]  # reported once: nothing moved
        with pytest.raises(ConflictError):
            client.sandbox.scorecard(held.id)
        cancelled = client.sandbox.cancel(held.id)
        assert cancelled.status == "cancelled"
        assert client.sandbox.wait(held.id, timeout=5).status == "cancelled"
