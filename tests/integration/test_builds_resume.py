"""Builds a dead process left behind are run again by the server's resume loop (a short lease
here), a build interrupted too often is given up, and a run that cannot read its inputs fails
with a stable code while its inputs stay on record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.services.build_runs import BUILD_ATTEMPTS
from deputy.services.startup import prepare
from deputy.store.tables import utcnow
from tests.integration.conftest import Api
from tests.integration.test_builds_api import POLICY, get, insert_build, upload, wait

LEASE_SECONDS = 0.5


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        turn_lease_seconds=LEASE_SECONDS,
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def test_a_build_whose_process_died_is_run_again(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    orphan = insert_build(
        api,
        [material],
        status="running",
        lease_owner="a-process-that-died",
        lease_expires_at=utcnow() - timedelta(seconds=1),
        attempts=1,
        progress={"stage": "extract", "done": 3, "total": 9},
    )
    finished = wait(api, orphan, timeout=60)
    assert finished["status"] == "succeeded", finished
    assert (finished["attempts"], finished["revision"]) == (2, 1)
    assert get(api, f"/v1/builds/{orphan}/spec")["procedures"]


def test_a_build_held_by_a_live_process_is_left_to_it(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    held = insert_build(
        api,
        [material],
        status="running",
        lease_owner="a-live-process",
        lease_expires_at=utcnow() + timedelta(hours=1),
        attempts=1,
    )
    orphan = insert_build(api, [material])  # queued, never started: nobody holds it
    assert wait(api, orphan, timeout=60)["status"] == "succeeded"
    kept = get(api, f"/v1/builds/{held}")
    assert (kept["status"], kept["attempts"]) == ("running", 1)


def test_a_build_interrupted_too_often_is_given_up(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    orphan = insert_build(
        api,
        [material],
        status="running",
        lease_owner="a-process-that-died",
        lease_expires_at=utcnow() - timedelta(seconds=1),
        attempts=BUILD_ATTEMPTS,
    )
    finished = wait(api, orphan, timeout=60)
    assert finished["status"] == "failed"
    assert finished["error"]["code"] == "build_interrupted"
    assert finished["attempts"] == BUILD_ATTEMPTS + 1
    assert finished["material_ids"] == [material]


def test_a_run_that_cannot_read_its_inputs_fails_and_keeps_them(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    api.client.delete(f"/v1/materials/{material}", headers=api.headers())
    orphan = insert_build(api, [material], constraints=["Be kind."])
    finished = wait(api, orphan, timeout=60)
    assert finished["status"] == "failed"
    assert finished["error"]["code"] == "not_found"
    assert material in finished["error"]["message"]
    assert (finished["material_ids"], finished["constraints"]) == ([material], ["Be kind."])
    response = api.client.get(f"/v1/builds/{orphan}/report", headers=api.headers())
    assert response.status_code == 409
