"""The probe API's edges on a real database: what creation refuses (no script, a tool world's
end state, a too short interval, natural-language assertions without a judge that can run,
expected irreversible calls), judged assertions, changes, removal (its alert resolved), the
lease that keeps two runs of a probe apart, scopes and tenant isolation on every route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from deputy.services.probe_store import claim_due, release
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.conftest import Api
from tests.integration.probe_agent import GOOD_HOURS, Switch, deploy, hours_agent, request
from tests.integration.test_probes import probe_body, run

pytestmark = pytest.mark.integration


def refused(api: Api, body: dict[str, Any], status: int = 422, key: str | None = None) -> Any:
    response = api.client.post("/v1/probes", json=body, headers=api.headers(key))
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_creation_refuses_what_a_probe_cannot_check(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    simulated = probe_body(agent_id, scenario={"assertions": {"must_communicate": ["9am"]}})
    assert "needs a scripted customer" in refused(api, simulated)["message"]
    world = probe_body(
        agent_id,
        scenario={
            "script": ["hi"],
            "assertions": {"reference_actions": [{"tool": "note", "arguments": {"fact": "x"}}]},
        },
    )
    assert "reference_actions" in refused(api, world)["message"]
    db_basis = probe_body(
        agent_id, scenario={"script": ["hi"], "assertions": {"reward_basis": ["DB"]}}
    )
    assert "DB reward" in refused(api, db_basis)["message"]
    long_script = probe_body(agent_id, scenario={"script": ["hi"] * 3, "max_turns": 2})
    assert "more messages than max_turns" in refused(api, long_script)["message"]
    too_often = refused(api, probe_body(agent_id, interval_seconds=30))
    assert too_often["details"] == {"interval_seconds": 30, "minimum": 60}
    refused(api, probe_body(agent_id, interval_seconds=86_401))
    assert refused(api, probe_body("agt_01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404)["code"] == "not_found"
    request(api, "POST", "/v1/probes", probe_body(agent_id))
    assert refused(api, probe_body(agent_id), 409)["code"] == "conflict"


def test_judged_assertions_need_a_judge_that_can_run(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    judged = {"script": ["When are you open?"], "assertions": {"judge": ["The hours are given"]}}
    for judge in ("openai-compatible:nowhere/judge", "openai:blocked-here"):
        cannot = refused(api, probe_body(agent_id, scenario=judged, judge_model=judge))
        assert "need a judge model this platform can run" in cannot["message"]
        assert cannot["details"] == {"judge_model": judge}

    probe = request(api, "POST", "/v1/probes", probe_body(agent_id, scenario=judged))
    assert probe["judge_model"] is None  # the agent's model judges
    passed = run(api, probe["id"])
    assert passed["status"] == "passed", passed
    [check] = passed["checks"]
    assert check["kind"] == "nl_assertion" and check["reasoning"] == "the agent's reply"
    deploy(api, agent_id, 2)
    failed = run(api, probe["id"])
    assert failed["status"] == "failed"
    assert failed["reason"] == "'The hours are given' — does not hold (The hours are given)"


def test_expected_irreversible_calls_need_explicit_consent(api: Api) -> None:
    agent_id = hours_agent(api, Switch(), note_effect="irreversible")
    scenario = {
        "script": ["remember the customer likes blue"],
        "assertions": {"expected_tool_calls": [{"tool": "note"}]},
    }
    risky = refused(api, probe_body(agent_id, scenario=scenario))
    assert risky["details"] == {"irreversible_tools": ["note"]}
    forbidden_only = {
        "script": ["hello"],
        "assertions": {"forbidden_tool_calls": [{"tool": "note"}]},
    }
    request(api, "POST", "/v1/probes", probe_body(agent_id, name="safe", scenario=forbidden_only))
    allowed = probe_body(agent_id, name="consented", scenario=scenario, allow_irreversible=True)
    assert request(api, "POST", "/v1/probes", allowed)["allow_irreversible"] is True


def test_changes_are_checked_again_and_enabling_makes_a_probe_due(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id, max_turn_latency_ms=5000))
    path = f"/v1/probes/{probe['id']}"
    changed = request(
        api,
        "PATCH",
        path,
        {"name": "hours", "interval_seconds": 3600, "max_turn_latency_ms": None, "enabled": True},
    )
    assert (changed["name"], changed["interval_seconds"]) == ("hours", 3600)
    assert changed["max_turn_latency_ms"] is None and changed["enabled"] is True
    assert changed["next_run_at"] >= probe["created_at"]
    response = api.client.patch(path, json={"scenario": {"assertions": {}}}, headers=api.headers())
    assert response.status_code == 422 and "scripted customer" in response.text
    assert request(api, "GET", path)["scenario"]["script"] == ["When are you open?"]
    renamed = request(api, "PATCH", path, {"scenario": {"script": ["Open on Sunday?"]}})
    assert renamed["scenario"]["script"] == ["Open on Sunday?"]
    listed = request(api, "GET", f"/v1/probes?agent_id={agent_id}")["data"]
    assert [p["id"] for p in listed] == [probe["id"]]
    assert request(api, "GET", "/v1/probes?agent_id=agt_01ARZ3NDEKTSV4RRFFQ69G5FAV")["data"] == []


def test_removing_a_probe_resolves_its_alert_and_drops_its_runs(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id))
    deploy(api, agent_id, 2)
    failed = run(api, probe["id"])
    assert failed["alert"]["change"] == "opened"
    request(api, "DELETE", f"/v1/probes/{probe['id']}")
    assert api.client.get(f"/v1/probes/{probe['id']}", headers=api.headers()).status_code == 404
    with api.platform.db.session() as session:
        alert = session.get_one(t.Alert, failed["alert"]["id"])
        assert alert.status == "resolved" and alert.resolved_by.startswith("key_")
        left = session.scalars(select(t.ProbeRun).where(t.ProbeRun.probe_id == probe["id"]))
        assert left.all() == []


def test_one_run_of_a_probe_at_a_time(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    due = request(api, "POST", "/v1/probes", probe_body(agent_id))
    db = api.platform.db
    with db.session() as session:  # enabled while another process holds it
        session.execute(
            update(t.Probe)
            .where(t.Probe.id == due["id"])
            .values(
                enabled=True,
                lease_owner="elsewhere",
                lease_until=utcnow() + timedelta(minutes=5),
            )
        )
    assert claim_due(db, "first", 5) == []  # held by another process
    busy = api.client.post(f"/v1/probes/{due['id']}/run", headers=api.headers())
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
    assert request(api, "GET", f"/v1/probes/{due['id']}")["running"] is True
    with db.session() as session:  # that process died: its lease expires
        session.execute(
            update(t.Probe)
            .where(t.Probe.id == due["id"])
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    [job] = claim_due(db, "second", 5)
    assert job.probe_id == due["id"] and claim_due(db, "third", 5) == []
    request(api, "PATCH", f"/v1/probes/{due['id']}", {"enabled": False})  # the app's own
    release(db, job.workspace_id, job.probe_id, "second")  # scheduler leaves it alone now
    passed = run(api, due["id"])
    assert passed["status"] == "passed"
    shown = request(api, "GET", f"/v1/probes/{due['id']}")
    assert shown["running"] is False and shown["next_run_at"] > passed["finished_at"][:19]


def test_scopes_and_tenant_isolation_on_every_probe_route(api: Api) -> None:
    agent_id = hours_agent(api, Switch())
    probe = request(api, "POST", "/v1/probes", probe_body(agent_id))
    ran = run(api, probe["id"])
    member = request(
        api, "POST", "/v1/members", {"email": "v@example.com", "name": "Vi", "role": "viewer"}
    )
    viewer = request(api, "POST", "/v1/keys", {"name": "vi", "member_id": member["id"]})["secret"]
    _, other = api.new_workspace("Bee")
    path = f"/v1/probes/{probe['id']}"
    writes = [
        ("POST", "/v1/probes", probe_body(agent_id, name="by viewer")),
        ("PATCH", path, {"enabled": True}),
        ("POST", f"{path}/run", None),
        ("DELETE", path, None),
    ]
    reads = [("GET", "/v1/probes", None), ("GET", path, None), ("GET", f"{path}/runs", None)]
    for method, url, body in writes:
        response = api.client.request(method, url, json=body, headers=api.headers(viewer))
        assert response.status_code == 403, f"{method} {url}: {response.text}"
        assert response.json()["error"]["details"]["required_scope"] == "agents:write"
    for method, url, body in reads:
        response = api.client.request(method, url, json=body, headers=api.headers(viewer))
        assert response.status_code == 200, f"{method} {url}: {response.text}"
    for method, url, body in [*writes[1:], *reads[1:]]:
        response = api.client.request(method, url, json=body, headers=api.headers(other))
        assert response.status_code == 404, f"{method} {url}: {response.text}"
        for private in (agent_id, "opening hours", "When are you open?", ran["id"]):
            assert private not in response.text, f"{method} {url} leaked {private}"
    assert request(api, "GET", "/v1/probes", key=other)["data"] == []
    stolen = api.client.post("/v1/probes", json=writes[0][2], headers=api.headers(other))
    assert stolen.status_code == 404 and agent_id in stolen.text  # names only what B sent
    runs = request(api, "GET", f"{path}/runs")["data"]
    assert [r["id"] for r in runs] == [ran["id"]]
    assert GOOD_HOURS in runs[0]["turns"][0]["reply"]
