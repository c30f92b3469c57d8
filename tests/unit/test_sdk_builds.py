"""`client.builds` of both SDK clients against the real app in process."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.builds import Build
from deputy.domain.ids import new_id
from deputy.domain.spec import load_spec, spec_from_data
from deputy.sdk import AsyncDeputyClient, DeputyClient, DeputyTimeoutError
from deputy.sdk.testing import SyncASGITransport
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.processes import SHARED_DATA
from tests.unit.test_sdk_async import BASE, FAST

POLICY = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "policy.md"
GOAL = "Help customers of our online retail store with their orders, returns and exchanges."


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    deployed, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        yield deployed, bootstrap.created.owner_key.secret
    finally:
        deployed.close()


def test_async_client_builds_changes_and_files_a_draft(platform: tuple[Platform, str]) -> None:
    deployed, key = platform
    app = create_app(deployed)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncDeputyClient(BASE, key, transport=transport, retry=FAST) as client:
            material = await client.materials.upload(POLICY)
            build = await client.builds.create(
                GOAL, materials=[material.id], model="none", name="Retail support"
            )
            assert build.status == "queued"
            seen: list[Build] = []
            done = await client.builds.wait(
                build.id, timeout=120, poll=0.05, on_progress=seen.append
            )
            assert done.status == "succeeded" and seen[-1] == done
            moves = [(b.status, b.progress) for b in seen]
            assert all(a != b for a, b in itertools.pairwise(moves))

            as_json = await client.builds.spec(build.id)
            as_yaml = await client.builds.spec(build.id, format="yaml")
            assert load_spec(as_yaml, "yaml") == spec_from_data(as_json)
            suite = await client.builds.scenarios(build.id)
            report = await client.builds.report(build.id)
            assert report.stats.scenarios == len(suite.scenarios)

            change = await client.builds.change(build.id, "refunds over $100 need a manager")
            assert change.revision == 2 and change.changes
            assert [c.id for c in (await client.builds.changes(build.id)).data] == [change.id]
            version = await client.builds.create_agent(build.id, name="retail")
            assert version.spec == await client.builds.spec(build.id)
            assert [b.id async for b in client.builds.iter_all()] == [build.id]

    asyncio.run(scenario())


def test_wait_gives_up_after_its_timeout(platform: tuple[Platform, str]) -> None:
    deployed, key = platform
    with deployed.db.session() as session:
        workspace_id = session.scalars(select(t.Workspace.id)).one()
    held = t.Build(
        id=new_id("bld"),
        workspace_id=workspace_id,
        status="running",
        goal=GOAL,
        constraints=[],
        material_ids=["mat_x"],
        tool_source_ids=[],
        progress={"stage": "read", "done": 0, "total": 1},
        revision=0,
        attempts=1,
        lease_owner="another-process",
        lease_expires_at=utcnow() + timedelta(hours=1),
        created_by_key_id="key_test",
    )
    with deployed.db.tenant_session(workspace_id) as session:
        session.add(held)
    with (
        SyncASGITransport(create_app(deployed)) as transport,
        DeputyClient(BASE, key, transport=transport, retry=FAST) as client,
    ):
        seen: list[Build] = []
        with pytest.raises(DeputyTimeoutError, match="did not finish"):
            client.builds.wait(held.id, timeout=0.3, poll=0.05, on_progress=seen.append)
        assert [b.progress.stage for b in seen] == ["read"]  # reported once: nothing moved
