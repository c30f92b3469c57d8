"""Every billing route is tenant-scoped and needs its scope: another workspace's key finds
none of A's plans, budgets, invoices or disputes (404 or an empty list), a viewer reads but
writes nothing (403 `billing:write`), a channel key reads nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.billing_helpers import plan_body, previous_month, put_plan
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import close, meter_at, start, workspace_id

pytestmark = pytest.mark.integration


def test_every_billing_route_is_tenant_scoped_and_needs_its_scope(api: Api) -> None:
    agent = echo_agent(api)
    put_plan(api, resolved_outcome="1")
    put_plan(api, agent, resolved_outcome="2")
    conversation = start(api, agent)
    close(api, conversation, "resolved")
    dispute = api.client.post(
        "/v1/billing/disputes",
        json={"conversation_id": conversation, "reason": "wrong"},
        headers=api.headers(),
    ).json()
    period, middle = previous_month()
    meter_at(api, workspace_id(api), "outcome:old", "outcome", middle, agent_id=agent,
             conversation_id="cnv_old", subject="resolved")  # fmt: skip
    invoice = api.client.post(
        "/v1/billing/invoices", json={"period": period}, headers=api.headers()
    ).json()
    budget = {"amount": "10"}
    other_workspace, other = api.new_workspace()
    viewer = _member_key(api, "viewer")
    reads = [
        "/v1/billing/plan",
        f"/v1/billing/plans/{agent}",
        "/v1/billing/plans",
        "/v1/billing/budget",
        f"/v1/billing/budgets/{agent}",
        "/v1/billing/invoices/preview",
        "/v1/billing/invoices/preview/lines/1/events",
        "/v1/billing/invoices",
        f"/v1/billing/invoices/{invoice['id']}",
        f"/v1/billing/invoices/{invoice['id']}.html",
        f"/v1/billing/invoices/{invoice['id']}/lines/1/events",
        "/v1/billing/disputes",
        f"/v1/billing/disputes/{dispute['id']}",
    ]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PUT", "/v1/billing/plan", plan_body(resolved_outcome="2")),
        ("PUT", f"/v1/billing/plans/{agent}", plan_body(resolved_outcome="2")),
        ("DELETE", f"/v1/billing/plans/{agent}", None),
        ("PUT", "/v1/billing/budget", budget),
        ("PUT", f"/v1/billing/budgets/{agent}", budget),
        ("DELETE", "/v1/billing/budget", None),
        ("DELETE", f"/v1/billing/budgets/{agent}", None),
        ("POST", "/v1/billing/invoices", {"period": period, "agent_id": agent}),
        ("POST", "/v1/billing/disputes", {"conversation_id": conversation, "reason": "x"}),
        ("POST", f"/v1/billing/disputes/{dispute['id']}/accept", {"note": ""}),
        ("POST", f"/v1/billing/disputes/{dispute['id']}/reject", {"note": ""}),
    ]
    for path in reads:  # a viewer reads (budgets: none set yet, so 404)
        status = api.client.get(path, headers=api.headers(viewer)).status_code
        assert status == (404 if "budget" in path else 200), path
    for method, path, body in writes:  # ... and writes nothing
        response = api.client.request(method, path, json=body, headers=api.headers(viewer))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["details"]["required_scope"] == "billing:write"
    for path in reads:  # another workspace sees nothing of A's
        response = api.client.get(path, headers=api.headers(other))
        if path.endswith(("/plans", "/invoices", "/disputes")):
            assert response.json()["data"] == [], path
        elif path.startswith("/v1/billing/invoices/preview"):  # B's own: its owner's seat
            assert response.status_code == 200, path
            body = response.json()
            items = body["lines"] if "lines" in body else body["data"]
            assert items and all(item["agent_id"] is None for item in items), path
        else:
            assert response.status_code == 404, (path, response.text)
    for method, path, body in writes:
        if path in ("/v1/billing/plan", "/v1/billing/budget"):
            continue  # B's own workspace scope
        response = api.client.request(method, path, json=body, headers=api.headers(other))
        assert response.status_code == 404, (method, path, response.text)
    b_events = api.client.get(
        "/v1/billing/invoices/preview/lines/1/events", headers=api.headers(other)
    ).json()["data"]
    assert {e["workspace_id"] for e in b_events} == {other_workspace}
    channel = api.client.post(
        "/v1/keys",
        json={"name": "widget", "kind": "channel", "agent_id": agent},
        headers=api.headers(),
    ).json()["secret"]
    denied = api.client.get("/v1/billing/invoices", headers=api.headers(channel))
    assert denied.status_code == 403


def _member_key(api: Api, role: str) -> str:
    member = api.client.post(
        "/v1/members",
        json={"email": f"{role}@example.com", "name": role, "role": role},
        headers=api.headers(),
    ).json()
    key = api.client.post(
        "/v1/keys", json={"name": role, "member_id": member["id"]}, headers=api.headers()
    ).json()
    secret: str = key["secret"]
    return secret
