"""SLOs and burn-rate alerts end to end, on a real database through the API: a deployed echo
agent answers, then fails (its model raises), the SLO evaluator opens a page with the burn
rates, a real webhook receiver gets the signed POST and a real SMTP server the email;
resolving by hand is audited and the evaluator opens a new alert while the condition holds;
a silenced alert notifies no one; healthy traffic again resolves the page and the resolution
is delivered; a webhook answering 500 is retried and gets the notification once.

The app runs without its lifespan here, so the tests drive the evaluator (`check_slos`) and
the sender (`deliver_due`) themselves; `test_the_background_loops_evaluate_and_deliver` checks
the lifespan's own loops."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.services.alert_delivery import deliver_due
from deputy.services.alerts import open_alert
from deputy.services.slo_evaluator import check_slos
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.alert_receivers import (
    MailCatcher,
    WebhookReceiver,
    mail_catcher,
    webhook_receiver,
)
from tests.integration.conftest import Api
from tests.integration.slo_agent import PUBLIC_URL, Traffic, breakable_agent, quiet_api

pytestmark = pytest.mark.integration
__all__ = ["quiet_api"]  # a fixture

SECRET = "whsec-test-0123456789abcdef"
# 10 % of turns may fail: a page needs more than 60 % failing over 6h and 30m (burn rate 6),
# a ticket more than 30 % over 1d and 2h (burn rate 3).
SLOS = {"availability": 0.9, "latency_p95_ms": 60_000, "accuracy": 0.8, "window_days": 28}


def deliver(api: Api) -> int:
    return asyncio.run(deliver_due(api.platform))


def firing(api: Api, agent_id: str) -> dict[str, dict[str, Any]]:
    response = api.client.get(
        "/v1/alerts", params={"status": "firing", "agent_id": agent_id}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    return {alert["key"]: alert for alert in response.json()["data"]}


def add_targets(api: Api, hook: WebhookReceiver, mail: MailCatcher) -> None:
    for body in (
        {
            "name": "ops-hook",
            "kind": "webhook",
            "config": {"url": hook.url},
            "secret": SECRET,
        },
        {
            "name": "oncall-mail",
            "kind": "email",
            "config": {
                "to": ["oncall@example.com", "lead@example.com"],
                "from_address": "deputy@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": mail.port,
                "smtp_security": "none",
            },
            "min_severity": "page",
        },
    ):
        response = api.client.post("/v1/alert-targets", json=body, headers=api.headers())
        assert response.status_code == 201, response.text
        assert "secret" not in response.json() and SECRET not in response.text


def audit_actions(api: Api) -> list[tuple[str, str]]:
    entries = api.client.get("/v1/audit", headers=api.headers()).json()["data"]
    return [(e["action"], e["subject_id"]) for e in entries]


def test_burn_rate_alerts_open_notify_silence_and_resolve(quiet_api: Api) -> None:
    api = quiet_api
    agent = breakable_agent(api, slos=SLOS)
    page_key = f"slo:{agent}:availability:page"
    ticket_key = f"slo:{agent}:availability:ticket"
    with webhook_receiver() as hook, mail_catcher() as mail:
        add_targets(api, hook, mail)
        traffic = Traffic(api, agent)

        traffic.send(good=4)
        check_slos(api.platform)
        assert firing(api, agent) == {}

        # 12 of 16 turns fail: 75 % against a 10 % budget, a burn rate of 7.5 over 30m and 6h.
        traffic.send(bad=12)
        check_slos(api.platform)
        alerts = firing(api, agent)
        assert set(alerts) == {page_key}
        first = alerts[page_key]
        assert (first["kind"], first["severity"]) == ("slo_burn", "page")
        windows = first["details"]["windows"]
        assert windows["30m"] == {"good": 4, "total": 16, "burn_rate": pytest.approx(7.5)}
        assert windows["6h"]["burn_rate"] == pytest.approx(7.5)
        assert first["details"]["objective"] == 0.9
        fired = {
            (r["severity"], r["long_window"], r["short_window"]) for r in first["details"]["fired"]
        }
        # 1h/5m would need a burn rate over 14.4: more than 100 % failing here.
        assert fired == {("page", "6h", "30m"), ("ticket", "1d", "2h"), ("ticket", "3d", "6h")}

        assert deliver(api) == 2  # the webhook, and the email target (a page reaches it)
        assert hook.events() == [("alert.opened", first["id"])]
        assert hook.deliveries[0].signed_by(SECRET)
        assert not hook.deliveries[0].signed_by("another secret")
        sent = hook.deliveries[0].payload
        assert sent["status"] == "firing" and sent["key"] == page_key
        assert sent["link"] == f"/v1/agents/{agent}/status"
        assert sent["url"] == f"{PUBLIC_URL}/v1/agents/{agent}/status"
        assert sorted(to for to, _ in mail.messages) == [
            ["lead@example.com"],
            ["oncall@example.com"],
        ]
        assert set(mail.subjects()) == {f"[FIRING page] {first['title']}"}
        assert page_key in mail.messages[0][1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert deliver(api) == 0  # sent once

        # Resolved by hand: audited and notified; the condition holds, so a new alert opens.
        response = api.client.post(
            f"/v1/alerts/{first['id']}/resolve",
            json={"reason": "looking into it"},
            headers=api.headers(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "resolved"
        assert ("alert.resolved", first["id"]) in audit_actions(api)
        deliver(api)
        assert hook.events()[-1] == ("alert.resolved", first["id"])
        assert mail.subjects()[-1] == f"[RESOLVED] {first['title']}"
        check_slos(api.platform)
        second = firing(api, agent)[page_key]
        assert second["id"] != first["id"]
        deliver(api)
        assert hook.events()[-1] == ("alert.opened", second["id"])

        # Silenced: the page resolves when traffic is healthy again, and no one hears of it.
        response = api.client.post(
            f"/v1/alerts/{second['id']}/silence",
            json={"minutes": 60, "reason": "known model outage"},
            headers=api.headers(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["silenced_until"] is not None
        assert ("alert.silenced", second["id"]) in audit_actions(api)
        heard, mailed = len(hook.deliveries), len(mail.messages)
        traffic.send(good=4)  # 12 of 20 fail: 60 %, no longer above the page's 6x
        check_slos(api.platform)
        alerts = firing(api, agent)
        assert set(alerts) == {ticket_key}  # still above the ticket's 3x
        deliver(api)
        assert [e for e in hook.events()[heard:] if e[1] == second["id"]] == []
        assert hook.events()[heard:] == [("alert.opened", alerts[ticket_key]["id"])]
        assert len(mail.messages) == mailed  # the email target takes pages only
        resolved = api.client.get(f"/v1/alerts/{second['id']}", headers=api.headers()).json()
        assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "system:slo")

        # Burning again pages again (and the ticket gives way to the page); healthy traffic
        # then clears the short window and the resolution reaches everyone.
        traffic.send(bad=28)  # 40 of 48 fail
        check_slos(api.platform)
        third = firing(api, agent)[page_key]
        assert ticket_key not in firing(api, agent)
        deliver(api)
        traffic.send(good=19)  # 40 of 67 fail: 59.7 %
        check_slos(api.platform)
        assert page_key not in firing(api, agent)
        heard, mailed = len(hook.deliveries), len(mail.messages)
        deliver(api)
        assert ("alert.resolved", third["id"]) in hook.events()[heard:]
        assert mail.subjects()[mailed:] == [f"[RESOLVED] {third['title']}"] * 2


def test_a_webhook_that_fails_is_retried_and_gets_it_once(quiet_api: Api) -> None:
    api = quiet_api
    workspace_id = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
    with webhook_receiver() as hook:
        hook.statuses = [500]
        response = api.client.post(
            "/v1/alert-targets",
            json={
                "name": "flaky",
                "kind": "webhook",
                "config": {"url": hook.url},
                "secret": SECRET,
            },
            headers=api.headers(),
        )
        assert response.status_code == 201, response.text
        with api.platform.db.tenant_session(workspace_id) as session:
            alert, opened = open_alert(
                session,
                workspace_id,
                key="probe:prb_x",
                kind="probe",
                severity="ticket",
                title="a probe failed",
                details={"probe_id": "prb_x"},
            )
            alert_id = alert.id
        assert opened

        assert deliver(api) == 1  # answered 500: retried later
        with api.platform.db.session() as session:
            row = session.scalars(select(t.AlertNotification)).one()
            assert (row.status, row.attempts) == ("pending", 1)
            assert row.last_error is not None and "500" in row.last_error
            assert row.next_attempt_at > utcnow()
        assert deliver(api) == 0  # not due yet
        with api.platform.db.session() as session:  # time passes
            session.execute(update(t.AlertNotification).values(next_attempt_at=utcnow()))
        assert deliver(api) == 1
        assert deliver(api) == 0
        with api.platform.db.session() as session:
            row = session.scalars(select(t.AlertNotification)).one()
            assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
        assert hook.events() == [("alert.opened", alert_id)] * 2
        assert len({d.headers["x-deputy-delivery"] for d in hook.deliveries}) == 1
        assert all(d.signed_by(SECRET) for d in hook.deliveries)

        # A 4xx other than 408/429 is final.
        hook.statuses = [410]
        with api.platform.db.tenant_session(workspace_id) as session:
            open_alert(
                session,
                workspace_id,
                key="probe:prb_y",
                kind="probe",
                severity="page",
                title="another probe failed",
                details={},
            )
        deliver(api)
        with api.platform.db.session() as session:
            statuses = sorted(row.status for row in session.scalars(select(t.AlertNotification)))
        assert statuses == ["failed", "sent"]

        # Disabling the target drops what is still queued for it.
        hook.statuses = [500]
        with api.platform.db.tenant_session(workspace_id) as session:
            queued, _ = open_alert(
                session, workspace_id, key="probe:prb_z", kind="probe", severity="page",
                title="a third probe failed", details={},
            )  # fmt: skip
        deliver(api)
        target_id = response.json()["id"]
        disabled = api.client.patch(
            f"/v1/alert-targets/{target_id}", json={"enabled": False}, headers=api.headers()
        )
        assert disabled.status_code == 200, disabled.text
        with api.platform.db.session() as session:
            session.execute(update(t.AlertNotification).values(next_attempt_at=utcnow()))
        heard = len(hook.deliveries)
        deliver(api)
        assert len(hook.deliveries) == heard
        with api.platform.db.session() as session:
            row = session.scalars(
                select(t.AlertNotification).where(t.AlertNotification.alert_id == queued.id)
            ).one()
        assert (row.status, row.last_error) == (
            "failed",
            "the target was disabled before this was sent",
        )


def test_a_test_send_reports_what_happened(quiet_api: Api) -> None:
    api = quiet_api
    with webhook_receiver() as hook, mail_catcher() as mail:
        add_targets(api, hook, mail)
        targets = api.client.get("/v1/alert-targets", headers=api.headers()).json()["data"]
        ids = {target["name"]: target["id"] for target in targets}
        for name in ("ops-hook", "oncall-mail"):
            response = api.client.post(
                "/v1/alerts/test", json={"target_id": ids[name]}, headers=api.headers()
            )
            assert response.json() == {"target_id": ids[name], "sent": True, "error": None}
        assert [event for event, _ in hook.events()] == ["alert.test"]
        assert hook.deliveries[0].signed_by(SECRET)
        assert all(s.startswith("[TEST] ") for s in mail.subjects()) and len(mail.subjects()) == 2
        hook.statuses = [503]
        response = api.client.post(
            "/v1/alerts/test", json={"target_id": ids["ops-hook"]}, headers=api.headers()
        )
        assert response.status_code == 200
        assert response.json()["sent"] is False and "503" in response.json()["error"]


def test_the_background_loops_evaluate_and_deliver(database_url: str, tmp_path: Path) -> None:
    """With the app's lifespan, the evaluator and the sender run by themselves: failing
    traffic pages, and the page reaches the webhook without anyone calling either."""
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        slo_check_seconds=0.2,
        improvement_interval_hours=0,
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with (
        TestClient(create_app(platform), raise_server_exceptions=False) as client,
        webhook_receiver() as hook,
    ):
        api = Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
        response = api.client.post(
            "/v1/alert-targets",
            json={"name": "hook", "kind": "webhook", "config": {"url": hook.url}, "secret": SECRET},
            headers=api.headers(),
        )
        assert response.status_code == 201, response.text
        agent = breakable_agent(api, slos=SLOS)
        Traffic(api, agent).send(good=2, bad=10)
        deadline = time.monotonic() + 60
        while not hook.deliveries:
            assert time.monotonic() < deadline, "the background loops sent nothing"
            time.sleep(0.1)
        sent = hook.deliveries[0].payload
        assert (sent["event"], sent["key"]) == ("opened", f"slo:{agent}:availability:page")
        assert hook.deliveries[0].signed_by(SECRET)
    platform.close()


def test_several_processes_open_an_alert_once_and_send_each_notification_once(
    quiet_api: Api,
) -> None:
    """Evaluators and senders running side by side (threads here, processes in production,
    one database): one alert per key, and every notification sent exactly once."""
    api = quiet_api
    agent = breakable_agent(api, slos=SLOS)
    with webhook_receiver() as hook:
        response = api.client.post(
            "/v1/alert-targets",
            json={"name": "hook", "kind": "webhook", "config": {"url": hook.url}, "secret": SECRET},
            headers=api.headers(),
        )
        assert response.status_code == 201, response.text
        Traffic(api, agent).send(good=2, bad=10)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: check_slos(api.platform), range(4)))
        with api.platform.db.session() as session:
            keys = session.scalars(select(t.Alert.key).where(t.Alert.status == "firing")).all()
        assert keys == [f"slo:{agent}:availability:page"]

        workspace_id = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
        with api.platform.db.tenant_session(workspace_id) as session:
            for n in range(5):
                open_alert(
                    session,
                    workspace_id,
                    key=f"probe:prb_{n}",
                    kind="probe",
                    severity="ticket",
                    title=f"probe {n} failed",
                    details={},
                )
        with ThreadPoolExecutor(3) as pool:
            tried = sum(pool.map(lambda _: deliver(api), range(3)))
        assert tried == 6
        deliveries = [d.headers["x-deputy-delivery"] for d in hook.deliveries]
        assert len(deliveries) == len(set(deliveries)) == 6


def test_a_silence_holds_queued_notifications(quiet_api: Api) -> None:
    """A notification still queued when its alert is silenced waits for the silence's end;
    then it goes out if the alert still fires, and is dropped if it resolved meanwhile."""
    api = quiet_api
    workspace_id = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
    with webhook_receiver() as hook:
        hook.statuses = [503, 503]
        target = {"kind": "webhook", "config": {"url": hook.url}, "secret": SECRET}
        response = api.client.post(
            "/v1/alert-targets", json={"name": "hook", **target}, headers=api.headers()
        )
        assert response.status_code == 201, response.text
        ids = []
        with api.platform.db.tenant_session(workspace_id) as session:
            for key in ("probe:still", "probe:gone"):
                alert, _ = open_alert(
                    session, workspace_id, key=key, kind="probe", severity="page", title=key,
                    details={},
                )  # fmt: skip
                ids.append(alert.id)
        assert deliver(api) == 2  # both answered 503: queued for a retry
        for alert_id in ids:
            response = api.client.post(
                f"/v1/alerts/{alert_id}/silence",
                json={"minutes": 30, "reason": "maintenance"},
                headers=api.headers(),
            )
            assert response.status_code == 200, response.text
        with api.platform.db.session() as session:  # the retries fall due
            session.execute(update(t.AlertNotification).values(next_attempt_at=utcnow()))
        assert deliver(api) == 2
        assert len(hook.deliveries) == 2  # nothing new: both wait for the silence's end
        with api.platform.db.session() as session:
            waiting = session.scalars(select(t.AlertNotification)).all()
            silenced_until = session.scalars(select(t.Alert.silenced_until)).all()
            assert {n.next_attempt_at for n in waiting} == set(silenced_until)
            assert {(n.status, n.attempts) for n in waiting} == {("pending", 1)}
        resolved = api.client.post(
            f"/v1/alerts/{ids[1]}/resolve", json={"reason": "gone"}, headers=api.headers()
        )
        assert resolved.status_code == 200
        with api.platform.db.session() as session:  # the silences end
            session.execute(update(t.Alert).values(silenced_until=utcnow()))
            session.execute(update(t.AlertNotification).values(next_attempt_at=utcnow()))
        deliver(api)
        assert hook.events()[2:] == [("alert.opened", ids[0])]
        with api.platform.db.session() as session:
            rows = {
                n.alert_id: (n.status, n.last_error)
                for n in session.scalars(select(t.AlertNotification))
            }
        assert rows[ids[0]] == ("sent", None)
        assert rows[ids[1]] == (
            "failed",
            "the alert was silenced and resolved before this was sent",
        )
