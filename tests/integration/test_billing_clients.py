"""Billing through the SDK (`client.billing`, sync and async) and the CLI (`deputy billing`),
against the real app in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.sdk import AsyncDeputyClient, DeputyClient, NotFoundError
from deputy.sdk.errors import ConflictError
from deputy.sdk.testing import SyncASGITransport
from tests.integration.billing_helpers import plan_body, previous_month
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import close, meter_at, start, workspace_id

pytestmark = pytest.mark.integration

BASE = "http://deputy.test"


@pytest.fixture
def in_process(api: Api) -> Iterator[httpx.BaseTransport]:
    with SyncASGITransport(api.client.app) as transport:
        yield httpx.MockTransport(transport.handle_request)


def test_the_sdk_bills(api: Api, in_process: httpx.BaseTransport) -> None:
    agent = echo_agent(api)
    period, middle = previous_month()
    for number in range(3):
        meter_at(api, workspace_id(api), f"outcome:cnv_{number}", "outcome", middle,
                 agent_id=agent, conversation_id=f"cnv_{number}", subject="resolved")  # fmt: skip
    conversation = start(api, agent)
    close(api, conversation, "resolved")
    with DeputyClient(BASE, api.owner_key, transport=in_process) as client:
        stored = client.billing.set_plan(plan_body(resolved_outcome=("0.75", "1")))
        assert stored.scope == "workspace" and stored.plan.components[0].unit_price == Decimal(
            "0.75"
        )
        own = client.billing.set_plan(plan_body(resolved_outcome="2"), agent_id=agent)
        assert client.billing.get_plan(agent_id=agent).id == own.id
        assert [p.source for p in client.billing.iter_plans(page_size=1)] == ["agent"]
        client.billing.remove_plan(agent_id=agent)
        with pytest.raises(NotFoundError):
            client.billing.get_plan(agent_id=agent)
        budget = client.billing.set_budget("20", hard_stop=True, alert_thresholds=[0.9])
        assert budget.burn.spend == Decimal("0.00") and budget.alert_thresholds == [0.9]
        preview = client.billing.preview()
        assert preview.total == 0 and preview.lines[0].free_allowance_used == 1
        issued = client.billing.issue(period)
        assert issued.total == Decimal("1.50") and issued.status == "issued"
        with pytest.raises(ConflictError):
            client.billing.issue(period)
        assert [i.id for i in client.billing.invoices().data] == [issued.id]
        assert client.billing.invoice(issued.id).lines == issued.lines
        events = list(client.billing.iter_line_events(issued.id, 1, page_size=2))
        assert sorted(e.event_id for e in events) == [f"outcome:cnv_{n}" for n in range(3)]
        assert issued.id in client.billing.invoice_html(issued.id)
        dispute = client.billing.open_dispute(conversation, "not resolved")
        assert client.billing.accept_dispute(dispute.id, note="ok").status == "accepted"
        assert client.billing.disputes(status="accepted").data[0].id == dispute.id
        assert client.billing.preview_line_events(1).data[0].kind in ("outcome", "conversation")
        client.billing.remove_budget()

    async def with_async_client() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(BASE, api.owner_key, transport=transport) as aio:
            budget = await aio.billing.set_budget("5", agent_id=agent)
            assert (await aio.billing.get_budget(agent_id=agent)).id == budget.id
            assert (await aio.billing.invoice(issued.id)).total == Decimal("1.50")
            listed = [e.event_id async for e in aio.billing.iter_line_events(issued.id, 1)]
            assert len(listed) == 3
            assert (await aio.billing.dispute(dispute.id)).status == "accepted"
            await aio.billing.remove_budget(agent_id=agent)

    asyncio.run(with_async_client())


def test_the_cli_bills(api: Api, in_process: httpx.BaseTransport, tmp_path: Path) -> None:
    agent = echo_agent(api, name="support")
    period, middle = previous_month()
    meter_at(api, workspace_id(api), "outcome:cnv_old", "outcome", middle, agent_id=agent,
             conversation_id="cnv_old", subject="resolved")  # fmt: skip
    state = CliState(url=BASE, api_key=api.owner_key, transport=in_process)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["billing", *args], obj=state)

    made = run("plan", "set", "--price", "resolved_outcome=1.5/0", "--price", "seat_month=3",
               "--name", "Standard")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "Standard (USD; outcome_based, seat_based)" in made.stdout
    assert run("plan", "set", "--price", "nonsense=1").exit_code == 2
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "name: Agent\ncurrency: USD\nmodels: [consumption_based]\n"
        "components: [{component: conversation, unit_price: '0.2'}]\n"
    )
    assert run("plan", "set", "--agent", "support", "--file", str(plan_file)).exit_code == 0
    effective = run("plan", "show", "--effective", "--json")
    assert json.loads(effective.stdout)["data"][0]["source"] == "agent"
    assert run("plan", "remove", "--agent", "support", "--yes").exit_code == 0
    shown = json.loads(run("plan", "show", "--json").stdout)
    assert shown["plan"]["name"] == "Standard"

    budget = run("budget", "set", "10", "--hard-stop", "--threshold", "0.5")
    assert budget.exit_code == 0, budget.output
    assert "spent 3.00 of 10 USD" in budget.stdout  # the owner's seat
    assert json.loads(run("budget", "show", "--json").stdout)["hard_stop"] is True

    preview = run("invoice", "preview", "--json")
    assert Decimal(json.loads(preview.stdout)["total"]) == Decimal("3.00")
    issued = run("invoice", "issue", period, "--json")
    assert issued.exit_code == 0, issued.output
    invoice = json.loads(issued.stdout)
    assert Decimal(invoice["total"]) == Decimal("1.50")
    assert run("invoice", "issue", period).exit_code == 1  # a conflict
    assert invoice["id"] in run("invoice", "list").stdout
    table = run("invoice", "show", invoice["id"])
    assert "Total: 1.50 USD" in table.stdout
    page = tmp_path / "invoice.html"
    assert run("invoice", "show", invoice["id"], "--html", str(page)).exit_code == 0
    assert page.read_text().startswith("<!DOCTYPE html>")

    conversation = start(api, agent)
    close(api, conversation, "resolved")
    opened = run("dispute", "open", conversation, "--reason", "not solved", "--json")
    assert opened.exit_code == 0, opened.output
    dispute = json.loads(opened.stdout)["id"]
    assert dispute in run("dispute", "list", "--status", "open").stdout
    assert run("dispute", "list", "--status", "bogus").exit_code == 2
    accepted = run("dispute", "reject", dispute, "--note", "it was solved")
    assert accepted.exit_code == 0 and "rejected" in accepted.stdout
    assert run("dispute", "accept", dispute).exit_code == 1  # decided already
    assert run("budget", "remove", "--yes").exit_code == 0
    assert run("budget", "show").exit_code == 4
