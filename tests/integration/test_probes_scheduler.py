"""The probe scheduler in real `deputy serve` processes: a probe with a one-second interval runs
by itself against the deployed agent (its model a scripted OpenAI-compatible server the test
controls); the agent's answer broken, a run fails and the probe's alert fires with a
notification for the workspace's target; repaired, a run passes and resolves it. A second
server on the same database runs the same schedule, and no two runs of the probe overlap: each
run is leased by one process."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from deputy.domain.ids import new_id
from deputy.store import tables as t
from deputy.store.db import Database
from tests.integration.probe_agent import BAD_HOURS, GOOD_HOURS, hours_spec
from tests.integration.scripted_openai import scripted_openai
from tests.processes import KEY, START_TIMEOUT, base_env, deputy_server

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

WAIT_SECONDS = 120.0


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _runs_until(
    api: httpx.Client, probe_id: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The newest run of the probe once one satisfies `wanted` (polled, with a deadline)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        runs = _ok(api.get(f"/v1/probes/{probe_id}/runs", params={"limit": 5}))["data"]
        found = next((run for run in runs if wanted(run)), None)
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"no such run; latest: {runs[:2]}"
        time.sleep(0.2)


def _add_target(db: Database, workspace_id: str) -> str:
    target_id = new_id("altg")
    with db.tenant_session(workspace_id) as session:
        session.add(
            t.AlertTarget(
                id=target_id,
                workspace_id=workspace_id,
                name="on-call",
                kind="webhook",
                config={"url": "http://127.0.0.1:9/alerts"},
                min_severity="ticket",
                enabled=True,
            )
        )
    return target_id


def test_scheduled_probes_alert_and_resolve_in_served_processes(
    tmp_path: Path, database_url: str
) -> None:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_DATABASE_URL=database_url,
        DEPUTY_PROBE_MIN_INTERVAL_SECONDS="1",
    )
    broken = {"now": False}

    def decide(messages: list[dict[str, Any]], _tools: list[str]) -> str:
        time.sleep(0.3)  # a run lasts a while: two processes would overlap without leases
        return f"We are open {BAD_HOURS if broken['now'] else GOOD_HOURS}."

    db = Database(database_url)
    with (
        scripted_openai(decide) as (model_url, _model),
        deputy_server("serve", env, tmp_path / "first.log") as first,
    ):
        key = first.read_until(KEY, START_TIMEOUT).group(0)
        first.wait_healthy()
        api = httpx.Client(
            base_url=first.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        workspace_id = _ok(api.get("/v1/workspace"))["id"]
        target = _add_target(db, workspace_id)
        _ok(api.post("/v1/model-endpoints", json={"name": "scripted", "base_url": model_url}))
        agent_id = _ok(api.post("/v1/agents", json={"name": "front-desk"}))["id"]
        _ok(api.patch(f"/v1/agents/{agent_id}", json={"model": "openai-compatible:scripted/m"}))
        _ok(api.post(f"/v1/agents/{agent_id}/versions", json={"spec": hours_spec(GOOD_HOURS)}))
        _ok(api.post(f"/v1/agents/{agent_id}/deployments", json={"version": 1}))
        probe = _ok(
            api.post(
                "/v1/probes",
                json={
                    "agent_id": agent_id,
                    "name": "opening hours",
                    "scenario": {
                        "script": ["When are you open?"],
                        "assertions": {"must_communicate": [GOOD_HOURS]},
                    },
                    "interval_seconds": 1,
                },
            )
        )
        with deputy_server("serve", env, tmp_path / "second.log") as second:
            second.wait_healthy()
            _runs_until(api, probe["id"], lambda run: run["status"] == "passed")

            broken["now"] = True
            failed = _runs_until(api, probe["id"], lambda run: run["status"] == "failed")
            opened = _runs_until(
                api, probe["id"], lambda run: (run["alert"] or {}).get("change") == "opened"
            )
            assert opened["status"] == "failed"
            assert failed["reason"] == f"never said '{GOOD_HOURS}'"

            broken["now"] = False
            resolved = _runs_until(
                api, probe["id"], lambda run: (run["alert"] or {}).get("change") == "resolved"
            )
            assert resolved["status"] == "passed"
            alert_id = opened["alert"]["id"]
            assert resolved["alert"]["id"] == alert_id
            shown = _ok(api.get(f"/v1/probes/{probe['id']}"))
            assert shown["next_run_at"] > resolved["finished_at"][:19]

        with db.session() as session:
            alert = session.get_one(t.Alert, alert_id)
            assert (alert.kind, alert.status, alert.resolved_by) == (
                "probe",
                "resolved",
                "system:probe",
            )
            sent = session.scalars(
                select(t.AlertNotification.event).where(
                    t.AlertNotification.alert_id == alert_id,
                    t.AlertNotification.target_id == target,
                )
            ).all()
            assert sorted(sent) == ["opened", "resolved"]
            spans = sorted(
                (row.started_at, row.finished_at)
                for row in session.scalars(
                    select(t.ProbeRun).where(t.ProbeRun.probe_id == probe["id"])
                )
            )
        api.close()
    db.dispose()
    assert len(spans) >= 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None and end <= start, "two runs of the probe overlapped"
