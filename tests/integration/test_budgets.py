"""Budgets through the API on a real database: a hard stop refuses new conversations with
its reason while open ones go on, raising the budget lets them in again; a budget without a
hard stop only alerts (an alert and a notification for a configured target), once per month;
the burn the status endpoint uses; budget spend equals the invoice preview's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from deputy.services.budgets import budget_burn, check_budgets, ensure_within_budget
from deputy.store import tables as t
from tests.integration.billing_helpers import preview, put_plan
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import close, say, workspace_id

pytestmark = pytest.mark.integration


def set_budget(api: Api, agent_id: str | None = None, **body: Any) -> Any:
    path = "/v1/billing/budget" if agent_id is None else f"/v1/billing/budgets/{agent_id}"
    response = api.client.put(path, json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    return response.json()


def new_conversation(api: Api, agent_id: str) -> Any:
    return api.client.post("/v1/conversations", json={"agent_id": agent_id}, headers=api.headers())


def alerts(api: Api, workspace: str) -> list[t.Alert]:
    with api.platform.db.tenant_session(workspace) as session:
        return list(session.scalars(select(t.Alert).order_by(t.Alert.opened_at, t.Alert.key)))


def notifications(api: Api, workspace: str) -> list[t.AlertNotification]:
    with api.platform.db.tenant_session(workspace) as session:
        return list(session.scalars(select(t.AlertNotification)))


def test_a_hard_stop_refuses_new_conversations_until_the_budget_is_raised(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    put_plan(api, conversation="1.00")
    budget = set_budget(api, amount="3", hard_stop=True)
    assert budget["currency"] == "USD" and budget["alert_thresholds"] == [0.5, 0.8, 1.0]
    assert Decimal(budget["burn"]["spend"]) == 0
    opened = [new_conversation(api, agent).json()["id"] for _ in range(3)]
    refused = new_conversation(api, agent)
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert "workspace budget of 3 USD" in error["message"]
    assert "is spent (3.00 USD)" in error["message"] and "until" in error["message"]
    assert error["details"]["budget_id"] == budget["id"]
    assert error["details"]["spend"] == "3.00" and error["details"]["amount"] == "3"
    # the conversations already open go on
    assert say(api, opened[-1], "still there?")["entries"]
    close(api, opened[-1], "resolved")
    burn = api.client.get("/v1/billing/budget", headers=api.headers()).json()["burn"]
    assert burn["exhausted"] and burn["fraction"] == 1.0 and burn["period_end"]
    # the third conversation's check opened the 50% alert; the refusal rolled its own check
    # back, so the sweep opens the 80% and 100% ones
    assert check_budgets(api.platform) == 2
    keys = [a.key for a in alerts(api, workspace)]
    period = burn["period"]
    assert sorted(keys) == [f"budget:workspace:{period}:{f}" for f in ("0.5", "0.8", "1.0")]
    assert {a.severity for a in alerts(api, workspace) if a.key.endswith(":1.0")} == {"page"}
    assert check_budgets(api.platform) == 0  # once per month and amount
    # raising the budget lets new conversations in, and resolves what no longer holds
    set_budget(api, amount="10", hard_stop=True)
    assert new_conversation(api, agent).status_code == 201
    assert {a.status for a in alerts(api, workspace)} == {"resolved"}


def test_an_agent_budget_stops_that_agent_only(api: Api) -> None:
    stopped = echo_agent(api, name="stopped")
    free = echo_agent(api, name="free")
    put_plan(api, conversation="2")
    set_budget(api, stopped, amount="2", hard_stop=True, alert_thresholds=[1.0])
    assert new_conversation(api, stopped).status_code == 201
    refused = new_conversation(api, stopped)
    assert refused.status_code == 402
    assert f"agent {stopped}'s budget" in refused.json()["error"]["message"]
    assert new_conversation(api, free).status_code == 201
    workspace = workspace_id(api)
    with api.platform.db.tenant_session(workspace) as session:
        burns = budget_burn(session, workspace, stopped)
        assert [(b.scope, b.spend, b.exhausted) for b in burns] == [
            (stopped, Decimal("2.00"), True)
        ]
        assert budget_burn(session, workspace, free) == []
        assert budget_burn(session, workspace, None) == []
    removed = api.client.delete(f"/v1/billing/budgets/{stopped}", headers=api.headers())
    assert removed.status_code == 204
    assert new_conversation(api, stopped).status_code == 201
    actions = [
        e["action"]
        for e in api.client.get("/v1/audit", headers=api.headers()).json()["data"]
        if e["action"].startswith("billing.budget")
    ]
    assert actions == ["billing.budget_removed", "billing.budget_set"]


def test_a_budget_without_a_hard_stop_only_alerts(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    target = api.client.post(
        "/v1/alert-targets",
        json={
            "name": "ops",
            "kind": "webhook",
            "config": {"url": "http://127.0.0.1:9/hooks/deputy"},
            "secret": "a-signing-secret-of-some-length",
        },
        headers=api.headers(),
    )
    assert target.status_code == 201, target.text
    put_plan(api, resolved_outcome="1")
    set_budget(api, amount="2", alert_thresholds=[0.5, 1.0])
    for _ in range(3):
        conversation = new_conversation(api, agent).json()["id"]
        close(api, conversation, "resolved")
    # the check before the third conversation found 2 of 2 spent: alerts, no refusal
    assert new_conversation(api, agent).status_code == 201
    fired = alerts(api, workspace)
    assert [(a.kind, a.status, a.severity) for a in fired] == [
        ("budget", "firing", "ticket"),
        ("budget", "firing", "page"),
    ]
    assert fired[1].details["spend"] == "2.00" and fired[1].details["hard_stop"] is False
    sent = notifications(api, workspace)
    assert {(n.alert_id, n.target_id, n.event) for n in sent} == {
        (alert.id, target.json()["id"], "opened") for alert in fired
    }
    assert new_conversation(api, agent).status_code == 201
    assert len(alerts(api, workspace)) == 2 and len(notifications(api, workspace)) == 2


def test_budget_spend_is_the_invoice_preview_total(api: Api) -> None:
    agent = echo_agent(api)
    other = echo_agent(api, name="other")
    workspace = workspace_id(api)
    put_plan(api, resolved_outcome=("0.7", "1"), conversation=("0.03", "1"), seat_month="4")
    put_plan(api, other, escalated_outcome="0.25", conversation="0.1")
    for agent_id, outcome in ((agent, "resolved"), (agent, "resolved"), (other, "escalated")):
        conversation = new_conversation(api, agent_id).json()["id"]
        close(api, conversation, outcome)
    dispute = api.client.post(
        "/v1/billing/disputes",
        json={"conversation_id": conversation, "reason": "not escalated"},
        headers=api.headers(),
    ).json()
    api.client.post(f"/v1/billing/disputes/{dispute['id']}/accept", json={}, headers=api.headers())
    set_budget(api, amount="100")
    set_budget(api, other, amount="100")
    with api.platform.db.tenant_session(workspace) as session:
        ensure_within_budget(session, workspace, agent)
        burns = {b.scope: b.spend for b in budget_burn(session, workspace, other)}
    assert burns["workspace"] == Decimal(preview(api)["total"])
    assert burns[other] == Decimal(preview(api, agent_id=other)["total"]) == Decimal("0.10")


def test_budgets_are_in_their_plans_currency(api: Api) -> None:
    no_plan = api.client.put("/v1/billing/budget", json={"amount": "5"}, headers=api.headers())
    assert no_plan.status_code == 422 and "set a plan" in no_plan.json()["error"]["message"]
    put_plan(api, conversation="1")
    euro = api.client.put(
        "/v1/billing/budget", json={"amount": "5", "currency": "EUR"}, headers=api.headers()
    )
    assert euro.status_code == 422 and euro.json()["error"]["details"]["plan_currency"] == "USD"
    for bad in ({"amount": "0"}, {"amount": "5", "alert_thresholds": [0]}, {"amount": "-1"}):
        response = api.client.put("/v1/billing/budget", json=bad, headers=api.headers())
        assert response.status_code == 422, bad
    assert api.client.get("/v1/billing/budget", headers=api.headers()).status_code == 404
