"""The SLO and status endpoints on a real database: what each SLI counts (turns that failed or
whose model failed, slow answers, probe runs, the improvement loop's evaluations), the status
sections (health, SLOs, budget, incidents, probes), and who may read and change what: scopes
and tenant isolation for every alerts route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from deputy.domain.ids import new_id
from deputy.domain.improvement import ConversationEvaluation, ImprovementReport
from deputy.services.alerts import close_alert, open_alert
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.conftest import Api
from tests.integration.slo_agent import Traffic, breakable_agent, quiet_api

pytestmark = pytest.mark.integration
__all__ = ["quiet_api"]  # a fixture

SLOS = {"availability": 0.9, "latency_p95_ms": 5000, "accuracy": 0.8, "window_days": 7}
BILLED = {"billing": {"model": "outcome_based", "price_per_resolution": "0.50"}}


def workspace_of(api: Api, key: str | None = None) -> str:
    workspace_id: str = api.client.get("/v1/workspace", headers=api.headers(key)).json()["id"]
    return workspace_id


def add_probe_runs(api: Api, workspace_id: str, agent_id: str) -> dict[str, str]:
    """Probes `alive` (passed, then failed), `broken` (error, the latest run) and `new` (never
    run), with their runs; their ids by name."""
    now = utcnow()
    ids = {}
    with api.platform.db.tenant_session(workspace_id) as session:
        for name in ("alive", "broken", "new"):
            ids[name] = new_id("prb")
            session.add(
                t.Probe(
                    id=ids[name],
                    workspace_id=workspace_id,
                    agent_id=agent_id,
                    name=name,
                    channel="api",
                    scenario={},
                    interval_seconds=300,
                )
            )
        session.flush()
        for probe, status, minutes_ago in (
            ("alive", "passed", 50),
            ("alive", "failed", 40),
            ("broken", "error", 30),
        ):
            started = now - timedelta(minutes=minutes_ago)
            session.add(
                t.ProbeRun(
                    id=new_id("prr"),
                    workspace_id=workspace_id,
                    probe_id=ids[probe],
                    agent_id=agent_id,
                    agent_version=1,
                    status=status,
                    latency_ms=120,
                    details={},
                    started_at=started,
                    finished_at=started + timedelta(seconds=1),
                )
            )
    return ids


def add_evaluations(
    api: Api, workspace_id: str, agent_id: str, verdicts: list[list[tuple[str, bool, bool]]]
) -> None:
    """One succeeded improvement run per list of (conversation, resolved, failed), in order."""
    now = utcnow()
    with api.platform.db.tenant_session(workspace_id) as session:
        for n, run in enumerate(verdicts):
            end = now - timedelta(minutes=len(verdicts) - n)
            report = ImprovementReport(
                window_start=now - timedelta(days=1),
                window_end=end,
                conversations=len(run),
                evaluations=tuple(
                    ConversationEvaluation(
                        conversation_id=conversation_id,
                        agent_version=1,
                        outcome=None,
                        resolved=resolved,
                        policy_adherence=True,
                        tone_ok=True,
                        failed=failed,
                    )
                    for conversation_id, resolved, failed in run
                ),
            )
            session.add(
                t.ImprovementRun(
                    id=new_id("imp"),
                    workspace_id=workspace_id,
                    agent_id=agent_id,
                    trigger="manual",
                    status="succeeded",
                    request={},
                    model="none",
                    window_start=report.window_start,
                    window_end=end,
                    progress={},
                    report=report.model_dump(mode="json"),
                    proposal_ids=[],
                    attempts=1,
                    created_by_key_id="key_x",
                )
            )


def sli(slos: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in slos["slis"] if s["sli"] == name)
    return found


def test_each_sli_counts_what_it_says_and_the_status_shows_it(quiet_api: Api) -> None:
    api = quiet_api
    workspace_id = workspace_of(api)
    agent = breakable_agent(api, slos=SLOS, outcomes=BILLED)
    answered = Traffic(api, agent)
    answered.send(good=3)
    answered.say("oops")  # the model errs: the turn completes with an apology (bad)
    answered.say("please fail", 503)  # the model crashes: the turn fails (bad)
    handed_over = Traffic(api, agent)
    handed_over.say("down")  # the model is out: handed to a human (bad)
    handed_over.say("hello?")  # a human has the conversation: the agent does not run
    with api.platform.db.tenant_session(workspace_id) as session:  # one answer came late
        slow = session.scalars(
            select(t.Turn)
            .where(t.Turn.conversation_id == answered.id, t.Turn.status == "completed")
            .order_by(t.Turn.number)
        ).first()
        assert slow is not None and slow.finished_at is not None
        slow.created_at = slow.finished_at - timedelta(seconds=8)
    probes = add_probe_runs(api, workspace_id, agent)
    add_evaluations(
        api,
        workspace_id,
        agent,
        [
            [(answered.id, False, True)],  # judged failed first ...
            [
                (answered.id, True, False),  # ... then resolved: the latest verdict counts
                (handed_over.id, False, True),
                ("cnv_01ARZ3NDEKTSV4RRFFQ69G5FAV", True, False),  # not a conversation of it
            ],
        ],
    )

    response = api.client.get(f"/v1/agents/{agent}/slos", headers=api.headers())
    assert response.status_code == 200, response.text
    slos = response.json()
    assert (slos["deployed"], slos["live_version"], slos["min_events"]) == (True, 1, 10)
    availability = sli(slos, "availability")
    assert (availability["good"], availability["total"]) == (5, 9)  # 3 + 2 probes; 3 + 1 bad
    assert availability["objective"] == 0.9 and availability["window_days"] == 7
    assert availability["compliance"] == pytest.approx(5 / 9)
    assert availability["error_budget"] == pytest.approx(0.1)
    assert availability["budget_remaining"] == pytest.approx(1 - (4 / 9) / 0.1)  # overspent
    hour = next(w for w in availability["windows"] if w["window"] == "1h")
    assert (hour["good"], hour["total"]) == (5, 9)
    assert hour["burn_rate"] == pytest.approx((4 / 9) / 0.1)
    five = next(w for w in availability["windows"] if w["window"] == "5m")
    assert (five["good"], five["total"]) == (3, 6)  # the probe runs are older than 5 minutes
    assert [r["fires"] for r in availability["rules"]] == [False] * 4  # too few events
    latency = sli(slos, "latency")
    assert (latency["good"], latency["total"], latency["objective"]) == (2, 3, 0.95)
    accuracy = sli(slos, "accuracy")
    assert (accuracy["good"], accuracy["total"]) == (2, 4)  # probes 1/2, evaluations 1/2
    assert accuracy["alert"] is None

    with api.platform.db.tenant_session(workspace_id) as session:
        old, _ = open_alert(
            session,
            workspace_id,
            key=f"probe:{probes['alive']}",
            kind="probe",
            severity="ticket",
            title="alive failed",
            details={},
            agent_id=agent,
        )
        close_alert(session, old, by="system:probe")
        burning, _ = open_alert(
            session,
            workspace_id,
            key=f"slo:{agent}:accuracy:ticket",
            kind="slo_burn",
            severity="ticket",
            title="accuracy burns",
            details={},
            agent_id=agent,
        )
        burning_id = burning.id
    budget = api.client.put(
        f"/v1/billing/budgets/{agent}", json={"amount": "100"}, headers=api.headers()
    )
    assert budget.status_code == 200, budget.text

    response = api.client.get(f"/v1/agents/{agent}/status", headers=api.headers())
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["agent_name"] == "echo"
    health = status["health"]
    assert health["state"] == "degraded"
    assert (health["events_last_hour"], health["error_ratio_last_hour"]) == (
        9,
        pytest.approx(4 / 9),
    )
    assert any("4 of 9" in reason for reason in health["reasons"])
    assert "firing: accuracy burns" in health["reasons"]
    assert health["last_probe_run"]["probe_name"] == "broken"
    assert sli(status["slos"], "accuracy")["alert"]["id"] == burning_id
    assert [(i["title"], i["status"]) for i in status["incidents"]] == [
        ("accuracy burns", "firing"),
        ("alive failed", "resolved"),
    ]
    runs = {p["probe_name"]: p for p in status["probes"]}
    assert (runs["alive"]["status"], runs["broken"]["status"]) == ("failed", "error")
    assert runs["new"]["run_id"] is None and runs["new"]["status"] is None
    assert [b["scope"] for b in status["budget"]] == [agent]
    assert float(status["budget"][0]["amount"]) == 100.0


def test_an_agent_that_is_not_deployed_is_idle(quiet_api: Api) -> None:
    api = quiet_api
    agent = api.client.post("/v1/agents", json={"name": "draft"}, headers=api.headers()).json()
    status = api.client.get(f"/v1/agents/{agent['id']}/status", headers=api.headers()).json()
    assert status["health"]["state"] == "idle"
    assert status["health"]["reasons"] == ["the agent is not deployed"]
    assert (status["slos"]["deployed"], status["slos"]["slis"]) == (False, [])
    assert status["incidents"] == [] and status["probes"] == [] and status["budget"] == []
    missing = api.client.get(
        "/v1/agents/agt_01ARZ3NDEKTSV4RRFFQ69G5FAV/slos", headers=api.headers()
    )
    assert missing.status_code == 404


def test_a_healthy_agent_is_ok(quiet_api: Api) -> None:
    api = quiet_api
    agent = breakable_agent(api, slos=SLOS)
    Traffic(api, agent).send(good=3)
    health = api.client.get(f"/v1/agents/{agent}/status", headers=api.headers()).json()["health"]
    assert health["state"] == "ok", health
    assert health["reasons"] == ["3 turns and probe runs in the last hour, 0 failed"]


def member_key(api: Api, role: str) -> str:
    member = api.client.post(
        "/v1/members",
        json={"email": f"{role}@example.com", "name": role, "role": role},
        headers=api.headers(),
    ).json()
    created = api.client.post(
        "/v1/keys", json={"name": role, "member_id": member["id"]}, headers=api.headers()
    )
    secret: str = created.json()["secret"]
    return secret


TARGET = {
    "name": "hook",
    "kind": "webhook",
    "config": {"url": "http://127.0.0.1:9/never"},
    "secret": "whsec-0123456789abcdef",
}


def calls(target_id: str, alert_id: str, agent_id: str) -> list[tuple[str, str, Any]]:
    """Every alerts route: (method, path, body)."""
    return [
        ("POST", "/v1/alert-targets", TARGET | {"name": "other"}),
        ("GET", "/v1/alert-targets", None),
        ("GET", f"/v1/alert-targets/{target_id}", None),
        ("PATCH", f"/v1/alert-targets/{target_id}", {"enabled": False}),
        ("DELETE", f"/v1/alert-targets/{target_id}", None),
        ("POST", "/v1/alerts/test", {"target_id": target_id}),
        ("GET", "/v1/alerts", None),
        ("GET", f"/v1/alerts/{alert_id}", None),
        ("POST", f"/v1/alerts/{alert_id}/silence", {"minutes": 5, "reason": "x"}),
        ("POST", f"/v1/alerts/{alert_id}/resolve", {"reason": "x"}),
        ("GET", f"/v1/agents/{agent_id}/slos", None),
        ("GET", f"/v1/agents/{agent_id}/status", None),
    ]


WRITES = {"POST", "PATCH", "DELETE"}


def test_scopes_and_tenants(quiet_api: Api) -> None:
    api = quiet_api
    workspace_id = workspace_of(api)
    agent = breakable_agent(api, slos=SLOS)
    target = api.client.post("/v1/alert-targets", json=TARGET, headers=api.headers()).json()
    assert target["secret_set"] is True and "whsec" not in str(target)
    with api.platform.db.tenant_session(workspace_id) as session:
        alert, _ = open_alert(
            session,
            workspace_id,
            key="probe:prb_secret",
            kind="probe",
            severity="page",
            title="Secret A alert",
            details={},
            agent_id=agent,
        )
    every = calls(target["id"], alert.id, agent)

    # A viewer reads everything and changes nothing.
    viewer = member_key(api, "viewer")
    for method, path, body in every:
        response = api.client.request(method, path, json=body, headers=api.headers(viewer))
        expected = 403 if method in WRITES else 200
        assert response.status_code == expected, f"{method} {path}: {response.text}"
        if expected == 403:
            assert response.json()["error"]["details"]["required_scope"] == "alerts:write"

    # A channel key may only talk.
    channel = api.client.post(
        "/v1/keys",
        json={"name": "site", "kind": "channel", "agent_id": agent},
        headers=api.headers(),
    ).json()["secret"]
    for method, path, body in every:
        response = api.client.request(method, path, json=body, headers=api.headers(channel))
        assert response.status_code == 403, f"{method} {path}: {response.text}"

    # Another workspace's owner sees none of it and changes none of it.
    _, other = api.new_workspace("Bee")
    for method, path, body in every:
        response = api.client.request(method, path, json=body, headers=api.headers(other))
        if path in ("/v1/alert-targets", "/v1/alerts") and method == "GET":
            listed = {item["id"] for item in response.json()["data"]}
            assert not listed & {target["id"], alert.id}, path
        elif (method, path) == ("POST", "/v1/alert-targets"):
            assert response.status_code == 201  # in its own workspace
        else:
            assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert "Secret A alert" not in response.text
        assert agent in path or agent not in response.text  # echoing the URL reveals nothing

    # A reviewer may act on alerts.
    reviewer = member_key(api, "reviewer")
    silenced = api.client.post(
        f"/v1/alerts/{alert.id}/silence",
        json={"minutes": 5, "reason": "on it"},
        headers=api.headers(reviewer),
    )
    assert silenced.status_code == 200 and silenced.json()["silenced_by"] is not None
    kept = api.client.get(f"/v1/alert-targets/{target['id']}", headers=api.headers()).json()
    assert kept == target  # nobody changed it


def test_targets_are_validated_and_their_secrets_stay_hidden(quiet_api: Api) -> None:
    api = quiet_api
    h = api.headers()
    bad = [
        TARGET | {"config": {"url": "ftp://example.com/x"}},
        TARGET | {"config": {"url": "not a url"}},
        TARGET | {"secret": "short"},
        {k: v for k, v in TARGET.items() if k != "secret"},
        TARGET | {"kind": "email", "config": {"to": ["not-an-address"], "from_address": "a@b.c"}},
        TARGET
        | {
            "kind": "email",
            "config": {"to": [], "from_address": "deputy@example.com", "smtp_host": "mail"},
        },
        TARGET | {"config": {"url": "https://example.com", "extra": 1}},
        TARGET | {"name": "Not A Slug"},
    ]
    for body in bad:
        response = api.client.post("/v1/alert-targets", json=body, headers=h)
        assert response.status_code == 422, f"{body}: {response.text}"
        assert "whsec" not in response.text
    created = api.client.post("/v1/alert-targets", json=TARGET, headers=h)
    assert created.status_code == 201
    again = api.client.post("/v1/alert-targets", json=TARGET, headers=h)
    assert again.status_code == 409
    target_id = created.json()["id"]
    changed = api.client.patch(
        f"/v1/alert-targets/{target_id}",
        json={"config": {"url": "https://hooks.example.com/deputy"}, "min_severity": "page"},
        headers=h,
    ).json()
    assert changed["config"] == {"url": "https://hooks.example.com/deputy"}
    assert (changed["min_severity"], changed["secret_set"]) == ("page", True)
    refused = api.client.patch(f"/v1/alert-targets/{target_id}", json={"secret": ""}, headers=h)
    assert refused.status_code == 422  # a webhook cannot go unsigned
    with api.platform.db.session() as session:
        stored = session.scalars(select(t.AlertTarget.secret_encrypted)).one()
        assert stored is not None and "whsec" not in stored
    assert api.client.delete(f"/v1/alert-targets/{target_id}", headers=h).status_code == 204
    assert api.client.get(f"/v1/alert-targets/{target_id}", headers=h).status_code == 404


def test_silencing_and_resolving_are_checked(quiet_api: Api) -> None:
    api = quiet_api
    workspace_id = workspace_of(api)
    with api.platform.db.tenant_session(workspace_id) as session:
        alert, _ = open_alert(
            session, workspace_id, key="k", kind="budget", severity="page", title="t", details={}
        )
    h = api.headers()
    too_long = api.client.post(
        f"/v1/alerts/{alert.id}/silence", json={"minutes": 10**6, "reason": "x"}, headers=h
    )
    assert too_long.status_code == 422
    done = api.client.post(f"/v1/alerts/{alert.id}/resolve", json={"reason": "fixed"}, headers=h)
    assert done.json()["resolved_by"] is not None
    for action, body in (
        ("resolve", {"reason": "again"}),
        ("silence", {"minutes": 1, "reason": "x"}),
    ):
        response = api.client.post(f"/v1/alerts/{alert.id}/{action}", json=body, headers=h)
        assert response.status_code == 409, response.text
    listed = api.client.get(
        "/v1/alerts", params={"status": "resolved", "kind": "budget"}, headers=h
    )
    assert [a["id"] for a in listed.json()["data"]] == [alert.id]
    with api.platform.db.session() as session:
        session.execute(update(t.Alert).values(opened_at=utcnow()))
    paged = api.client.get("/v1/alerts", params={"limit": 1, "status": "firing"}, headers=h)
    assert paged.json() == {"data": [], "next_cursor": None}
