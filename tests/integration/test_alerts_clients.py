"""Alerts, alert targets and SLOs through the SDK (`client.alerts`, `client.slos`, sync and
async) and the CLI (`deputy alerts ...`, `deputy status`), against the real app in process and
a real webhook receiver: secrets go in and never come back out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.sdk.errors import ConflictError, NotFoundError, PermissionDeniedError
from deputy.sdk.testing import SyncASGITransport
from deputy.services.alerts import open_alert
from tests.integration.alert_receivers import webhook_receiver
from tests.integration.conftest import Api
from tests.integration.slo_agent import Traffic, breakable_agent, quiet_api

pytestmark = pytest.mark.integration
__all__ = ["quiet_api"]  # a fixture

BASE = "http://deputy.test"
SECRET = "whsec-never-shown-0123456789"


@pytest.fixture
def in_process(quiet_api: Api) -> Iterator[httpx.BaseTransport]:
    with SyncASGITransport(quiet_api.client.app) as transport:
        yield httpx.MockTransport(transport.handle_request)


def open_probe_alert(api: Api, agent_id: str | None = None) -> str:
    workspace_id = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
    with api.platform.db.tenant_session(workspace_id) as session:
        alert, _ = open_alert(
            session,
            workspace_id,
            key="probe:prb_1",
            kind="probe",
            severity="page",
            title="the order probe fails",
            details={"probe_id": "prb_1"},
            agent_id=agent_id,
        )
        return alert.id


def test_the_sdk(quiet_api: Api, in_process: httpx.BaseTransport) -> None:
    api = quiet_api
    agent = breakable_agent(api)
    Traffic(api, agent).send(good=2)
    alert_id = open_probe_alert(api, agent)
    with webhook_receiver() as hook, DeputyClient(BASE, api.owner_key, transport=in_process) as c:
        target = c.alerts.targets.create("ops", "webhook", {"url": hook.url}, secret=SECRET)
        assert (target.kind, target.secret_set, target.min_severity) == ("webhook", True, "ticket")
        with pytest.raises(ConflictError):
            c.alerts.targets.create("ops", "webhook", {"url": hook.url}, secret=SECRET)
        assert [t.name for t in c.alerts.targets.iter_all()] == ["ops"]
        assert c.alerts.test(target.id).sent
        assert hook.events() == [("alert.test", "alr_test")] and hook.deliveries[0].signed_by(
            SECRET
        )
        paged = c.alerts.targets.update(target.id, min_severity="page", enabled=False)
        assert (paged.min_severity, paged.enabled) == ("page", False)

        firing = c.alerts.list(status="firing", agent_id=agent)
        assert [a.id for a in firing.data] == [alert_id]
        assert [a.id for a in c.alerts.iter_all(kind="probe", page_size=1)] == [alert_id]
        assert c.alerts.get(alert_id).details == {"probe_id": "prb_1"}
        silenced = c.alerts.silence(alert_id, 30, "deploying a fix")
        assert silenced.silenced_until is not None
        resolved = c.alerts.resolve(alert_id, "fixed")
        assert (resolved.status, resolved.resolved_by) == ("resolved", silenced.silenced_by)
        assert c.alerts.list(status="firing").data == []

        slos = c.slos.get(agent)
        assert slos.deployed and {s.sli for s in slos.slis} == {
            "availability",
            "latency",
            "accuracy",
        }
        status = c.slos.status(agent)
        assert status.health.state == "ok" and status.incidents[0].id == alert_id
        c.alerts.targets.delete(target.id)
        with pytest.raises(NotFoundError):
            c.alerts.targets.get(target.id)
        assert SECRET not in target.model_dump_json() + paged.model_dump_json()

    viewer = api.client.post(
        "/v1/members",
        json={"email": "v@x.io", "name": "V", "role": "viewer"},
        headers=api.headers(),
    ).json()
    viewer_key = api.client.post(
        "/v1/keys", json={"name": "v", "member_id": viewer["id"]}, headers=api.headers()
    ).json()["secret"]
    with DeputyClient(BASE, viewer_key, transport=in_process) as c:
        assert c.slos.status(agent).agent_id == agent
        with pytest.raises(PermissionDeniedError):
            c.alerts.targets.create("mine", "webhook", {"url": "http://x.io"}, secret=SECRET)

    async def with_async_client() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(BASE, api.owner_key, transport=transport) as aio:
            mail = await aio.alerts.targets.create(
                "mail",
                "email",
                {"to": ["oncall@x.io"], "from_address": "deputy@x.io", "smtp_host": "mail"},
            )
            assert [t.id async for t in aio.alerts.targets.iter_all()] == [mail.id]
            assert (await aio.alerts.targets.update(mail.id, enabled=False)).enabled is False
            assert [a.id async for a in aio.alerts.iter_all(status="resolved")] == [alert_id]
            assert (await aio.alerts.get(alert_id)).status == "resolved"
            assert (await aio.slos.get(agent)).live_version == 1
            assert (await aio.slos.status(agent)).agent_name == "echo"
            await aio.alerts.targets.delete(mail.id)

    asyncio.run(with_async_client())


def cli(transport: httpx.BaseTransport, key: str, *args: str) -> Result:
    state = CliState(url=BASE, api_key=key, transport=transport)
    return CliRunner().invoke(app, list(args), obj=state)


def test_the_cli(quiet_api: Api, in_process: httpx.BaseTransport, tmp_path: Path) -> None:
    api = quiet_api
    agent = breakable_agent(api)
    Traffic(api, agent).send(good=1, bad=1)
    alert_id = open_probe_alert(api, agent)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    key = api.owner_key
    with webhook_receiver() as hook:
        added = cli(
            in_process, key, "alerts", "targets", "add", "ops", "webhook",
            "--url", hook.url, "--secret", f"@{secret_file}", "--json",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert json.loads(added.stdout)["secret_set"] is True and SECRET not in added.stdout
        missing = cli(in_process, key, "alerts", "targets", "add", "m", "email", "--to", "a@x.io")
        assert missing.exit_code == 2 and "--from" in missing.output
        listed = cli(in_process, key, "alerts", "targets", "list")
        assert "ops" in listed.stdout and hook.url in listed.stdout
        tested = cli(in_process, key, "alerts", "targets", "test", "ops")
        assert tested.exit_code == 0 and "Sent a test notification" in tested.stdout
        assert hook.deliveries[0].signed_by(SECRET)
        hook.statuses = [410]
        refused = cli(in_process, key, "alerts", "targets", "test", "ops")
        assert refused.exit_code == 1 and "410" in refused.output

        firing = cli(in_process, key, "alerts", "list", "--status", "firing", "--agent", "echo")
        assert alert_id in firing.stdout and "the order probe fails" in firing.stdout
        shown = cli(in_process, key, "alerts", "show", alert_id)
        assert '"probe_id": "prb_1"' in shown.stdout
        silenced = cli(
            in_process, key, "alerts", "silence", alert_id, "--minutes", "15", "--reason", "x"
        )
        assert silenced.exit_code == 0, silenced.output
        status = cli(in_process, key, "status", "echo")
        assert status.exit_code == 0, status.output
        assert f"echo ({agent}) v1: DOWN" in status.stdout  # 1 of 2 turns failed
        assert "1 of 2 turns and probe runs failed in the last hour" in status.stdout
        assert "availability" in status.stdout and "the order probe fails" in status.stdout
        as_json = json.loads(cli(in_process, key, "status", agent, "--json").stdout)
        assert as_json["health"]["state"] == "down"
        resolved = cli(in_process, key, "alerts", "resolve", alert_id, "--reason", "fixed")
        assert resolved.exit_code == 0 and "resolved" in resolved.stdout
        bad = cli(in_process, key, "alerts", "list", "--status", "open")
        assert bad.exit_code == 2
        removed = cli(in_process, key, "alerts", "targets", "remove", "ops", "--yes")
        assert removed.exit_code == 0, removed.output
        gone = cli(in_process, key, "alerts", "targets", "test", "ops")
        assert gone.exit_code == 4
