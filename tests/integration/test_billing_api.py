"""Plans and invoices through the API on a real database: for each billing model the invoice
is the sum of its lines and each line is its events priced (recomputed here from the events
the API lists for the line); issued invoices are frozen, late events are billed once; tenant
isolation and scopes for every billing route."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.billing_helpers import (
    check_invoice,
    plan_body,
    preview,
    previous_month,
    put_plan,
)
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import (
    PRICED_MODEL,
    close,
    deploy_agent,
    meter_at,
    say,
    serve_models,
    start,
    workspace_id,
)

pytestmark = pytest.mark.integration


def converse(api: Api, agent_id: str, outcome: str | None = "resolved", turns: int = 1) -> str:
    conversation = start(api, agent_id)
    for number in range(turns):
        say(api, conversation, f"message {number}")
    if outcome is not None:
        close(api, conversation, outcome)
    return conversation


def test_outcome_based_invoice_is_its_resolutions_priced(api: Api) -> None:
    agent = echo_agent(api)
    put_plan(api, resolved_outcome=("0.99", "2"), escalated_outcome="0.5")
    for outcome in ("resolved", "resolved", "resolved", "resolved", "escalated", "abandoned"):
        converse(api, agent, outcome)
    converse(api, agent, None)  # still open: a conversation, no outcome
    invoice = preview(api)
    assert invoice["status"] == "preview" and invoice["id"] is None
    quantities = check_invoice(
        api,
        invoice,
        {
            (agent, "resolved_outcome"): ("0.99", "2"),
            (agent, "escalated_outcome"): ("0.5", "0"),
        },
    )
    assert quantities[(agent, "resolved_outcome")] == 4
    assert quantities[(agent, "escalated_outcome")] == 1
    assert quantities[(agent, "conversation")] == 7  # counted, not priced
    assert Decimal(invoice["total"]) == Decimal("2.48")  # 2 billable x 0.99 + 0.50
    assert {line["plan_source"] for line in invoice["lines"]} == {"workspace"}
    assert invoice["currency"] == "USD"


def test_consumption_based_invoice_prices_tokens_minutes_and_calls(api: Api) -> None:
    serve_models(api)
    agent = deploy_agent(api, "metered", PRICED_MODEL)
    workspace = workspace_id(api)
    now = datetime.now(UTC)
    put_plan(
        api,
        conversation=("0.10", "1"),
        tokens_1k="0.002",
        voice_minute="0.05",
        tool_call="0.01",
    )
    conversations = [converse(api, agent, "resolved", turns=2) for _ in range(3)]
    for number, minutes in enumerate(("1.5", "2.333333", "0.016667")):
        meter_at(
            api,
            workspace,
            f"voice:test:{number}",
            "voice_minutes",
            now,
            minutes,
            agent_id=agent,
            conversation_id=conversations[number],
        )
    meter_at(api, workspace, "tool_call:test", "tool_call", now, agent_id=agent, subject="lookup")
    invoice = preview(api)
    quantities = check_invoice(
        api,
        invoice,
        {
            (agent, "conversation"): ("0.10", "1"),
            (agent, "tokens_1k"): ("0.002", "0"),
            (agent, "voice_minute"): ("0.05", "0"),
            (agent, "tool_call"): ("0.01", "0"),
        },
    )
    assert quantities[(agent, "conversation")] == 3
    assert quantities[(agent, "voice_minute")] == Decimal("3.850000")
    tokens = next(line for line in invoice["lines"] if line["component"] == "tokens_1k")
    # 2 answers per conversation, 1,200 tokens and $0.006 each: the model spend is real
    assert tokens["event_count"] >= 6 and Decimal(tokens["quantity"]) % 1200 == 0
    spend = Decimal(tokens["provider_cost_usd"])
    assert spend == Decimal("0.006") * tokens["event_count"]
    conversation_line = next(
        line for line in invoice["lines"] if line["component"] == "conversation"
    )
    assert Decimal(conversation_line["provider_cost_usd"]) == spend
    margins = {m["scope"]: m for m in invoice["margins"]}
    assert Decimal(margins["workspace"]["revenue"]) == 0  # the owner's seat: not priced
    margin = margins[agent]
    assert Decimal(margin["revenue"]) == Decimal(invoice["total"])
    assert Decimal(margin["provider_cost_usd"]) == spend
    assert Decimal(margin["margin"]) == Decimal(invoice["total"]) - spend


def test_seat_based_invoice_prices_members_per_month(api: Api) -> None:
    put_plan(api, seat_month=("25", "1"))
    for name in ("ana", "bo"):
        response = api.client.post(
            "/v1/members",
            json={"email": f"{name}@example.com", "name": name, "role": "viewer"},
            headers=api.headers(),
        )
        assert response.status_code == 201, response.text
    invoice = preview(api)
    quantities = check_invoice(api, invoice, {("workspace", "seat_month"): ("25", "1")})
    assert quantities == {("workspace", "seat_month"): Decimal(3)}  # the owner and two more
    assert Decimal(invoice["total"]) == Decimal("50.00")


def test_a_mix_of_plans_with_allowances_prices_each_agent_by_its_own(api: Api) -> None:
    own = echo_agent(api, name="own-plan")
    billing = {
        "model": "outcome_based",
        "price_per_resolution": "2",
        "free_resolutions_per_month": 1,
        "price_per_conversation": "0.05",
    }
    by_spec = echo_agent(
        api, name="spec-plan", outcomes={"billing": billing, "abandoned_after_minutes": 30}
    )
    fallback = echo_agent(api, name="workspace-plan")
    put_plan(api, own, resolved_outcome=("1", "1"), conversation=("0.05", "2"))
    put_plan(api, resolved_outcome="0.5", seat_month=("10", "0"))
    sources = api.client.get("/v1/billing/plans", headers=api.headers()).json()["data"]
    assert {p["agent_id"]: p["source"] for p in sources} == {
        own: "agent",
        by_spec: "spec",
        fallback: "workspace",
    }
    spec_plan = next(p for p in sources if p["agent_id"] == by_spec)
    assert spec_plan["spec_version"] == 1
    assert spec_plan["plan"]["components"][0]["free_allowance"] == "1"
    for agent in (own, by_spec, fallback):
        for _ in range(3):
            converse(api, agent, "resolved")
    invoice = preview(api)
    check_invoice(
        api,
        invoice,
        {
            (own, "resolved_outcome"): ("1", "1"),
            (own, "conversation"): ("0.05", "2"),
            (by_spec, "resolved_outcome"): ("2", "1"),
            (by_spec, "conversation"): ("0.05", "0"),
            (fallback, "resolved_outcome"): ("0.5", "0"),
            ("workspace", "seat_month"): ("10", "0"),
        },
    )
    # own: 2 x 1 + 1 x 0.05; spec: 2 x 2 + 3 x 0.05; workspace plan: 3 x 0.5; one seat: 10
    assert Decimal(invoice["total"]) == Decimal("2.05") + Decimal("4.15") + Decimal("1.5") + 10
    margins = {m["scope"]: Decimal(m["revenue"]) for m in invoice["margins"]}
    assert margins == {
        own: Decimal("2.05"),
        by_spec: Decimal("4.15"),
        fallback: Decimal("1.50"),
        "workspace": Decimal("10.00"),
    }
    agent_only = preview(api, agent_id=by_spec)
    assert Decimal(agent_only["total"]) == Decimal("4.15")
    assert {line["scope"] for line in agent_only["lines"]} == {by_spec}
    # removing the agent's own plan falls back to the workspace plan
    removed = api.client.delete(f"/v1/billing/plans/{own}", headers=api.headers())
    assert removed.status_code == 204
    after = {p["agent_id"]: p["source"] for p in api.client.get(
        "/v1/billing/plans", headers=api.headers()).json()["data"]}  # fmt: skip
    assert after[own] == "workspace"


def test_plans_are_validated_audited_and_in_one_currency(api: Api) -> None:
    agent = echo_agent(api)
    bad = plan_body(conversation="1")
    bad["currency"] = "usd"
    assert api.client.put("/v1/billing/plan", json=bad, headers=api.headers()).status_code == 422
    seats = api.client.put(
        f"/v1/billing/plans/{agent}", json=plan_body(seat_month="1"), headers=api.headers()
    )
    assert seats.status_code == 422 and "workspace plan only" in seats.json()["error"]["message"]
    put_plan(api, conversation="1")
    euro = api.client.put(
        f"/v1/billing/plans/{agent}",
        json=plan_body("EUR", conversation="1"),
        headers=api.headers(),
    )
    assert euro.status_code == 409
    assert euro.json()["error"]["details"]["others"] == {"plan:workspace": "USD"}
    assert api.client.get("/v1/billing/plans/agt_00000000000000000000000000",
                          headers=api.headers()).status_code == 404  # fmt: skip
    assert api.client.get(f"/v1/billing/plans/{agent}", headers=api.headers()).status_code == 404
    actions = [
        e["action"]
        for e in api.client.get("/v1/audit", headers=api.headers()).json()["data"]
        if e["action"].startswith("billing.")
    ]
    assert actions == ["billing.plan_set"]
    api.client.delete("/v1/billing/plan", headers=api.headers())
    entries = api.client.get(
        "/v1/audit", params={"action": "billing.plan_removed"}, headers=api.headers()
    ).json()["data"]
    assert len(entries) == 1 and entries[0]["data"]["scope"] == "workspace"


def _issue(api: Api, period: str, key: str | None = None, **body: Any) -> Any:
    return api.client.post(
        "/v1/billing/invoices", json={"period": period, **body}, headers=api.headers(key)
    )


def test_an_issued_invoice_is_frozen_traceable_and_bills_late_events_once(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    period, middle = previous_month()
    put_plan(api, resolved_outcome=("1.25", "1"), conversation="0.1", tokens_1k="0.5")
    for number in range(4):
        conversation = f"cnv_test{number}"
        meter_at(api, workspace, f"conversation:{conversation}", "conversation", middle,
                 agent_id=agent, conversation_id=conversation)  # fmt: skip
        meter_at(api, workspace, f"outcome:{conversation}", "outcome", middle, agent_id=agent,
                 conversation_id=conversation, subject="resolved")  # fmt: skip
        meter_at(api, workspace, f"model:{number}", "model_call", middle, "1499", agent_id=agent,
                 conversation_id=conversation, cost_usd=Decimal("0.0031"))  # fmt: skip
    this_month = _issue(api, f"{datetime.now(UTC):%Y-%m}")
    assert this_month.status_code == 409 and "not over" in this_month.json()["error"]["message"]
    response = _issue(api, period)
    assert response.status_code == 201, response.text
    invoice = response.json()
    assert invoice["status"] == "issued" and invoice["id"].startswith("inv_")
    check_invoice(
        api,
        invoice,
        {
            (agent, "resolved_outcome"): ("1.25", "1"),
            (agent, "conversation"): ("0.1", "0"),
            (agent, "tokens_1k"): ("0.5", "0"),
        },
    )
    # 3 x 1.25 + 4 x 0.10 + 5,996 tokens x 0.5 / 1,000 (2.998 -> 3.00)
    assert Decimal(invoice["total"]) == Decimal("3.75") + Decimal("0.40") + Decimal("3.00")
    again = _issue(api, period)
    assert again.status_code == 409
    assert again.json()["error"]["details"]["invoice_id"] == invoice["id"]
    agent_invoice = _issue(api, period, agent_id=agent)
    assert agent_invoice.status_code == 409  # the workspace invoice bills it already
    assert api.client.get("/v1/billing/invoices/preview", params={"period": period},
                          headers=api.headers()).status_code == 409  # fmt: skip
    listed = api.client.get("/v1/billing/invoices", headers=api.headers()).json()["data"]
    assert [(i["id"], i["total"]) for i in listed] == [(invoice["id"], invoice["total"])]

    # an outcome of that month recorded now: the issued invoice does not change, it says so,
    # and this month's preview bills it on a late line
    meter_at(api, workspace, "outcome:cnv_late", "outcome", middle, agent_id=agent,
             conversation_id="cnv_late", subject="resolved")  # fmt: skip
    stored = api.client.get(f"/v1/billing/invoices/{invoice['id']}", headers=api.headers())
    assert stored.json()["total"] == invoice["total"] and stored.json()["late_events"] == 1
    assert stored.json()["lines"] == invoice["lines"]
    current = preview(api)
    [late] = [line for line in current["lines"] if line["kind"] == "late"]
    assert (late["earlier_period"], late["component"], late["quantity"]) == (
        period,
        "resolved_outcome",
        "1",
    )
    assert Decimal(late["amount"]) == Decimal("1.25")  # at the unit price, no allowance
    [event] = api.client.get(
        f"/v1/billing/invoices/preview/lines/{late['number']}/events", headers=api.headers()
    ).json()["data"]
    assert event["event_id"] == "outcome:cnv_late"

    page = api.client.get(f"/v1/billing/invoices/{invoice['id']}.html", headers=api.headers())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert invoice["id"] in page.text and "<script" not in page.text
    assert "1 event(s) of this period were recorded after it was issued" in page.text
    missing = api.client.get(f"/v1/billing/invoices/{invoice['id']}/lines/99/events",
                             headers=api.headers())  # fmt: skip
    assert missing.status_code == 404


def test_html_invoices_escape_what_they_show(api: Api) -> None:
    renamed = api.client.patch("/v1/workspace", json={"name": "<Shop & Co>"}, headers=api.headers())
    assert renamed.status_code == 200, renamed.text
    put_plan(api, seat_month="5")
    period, _ = previous_month()
    workspace = workspace_id(api)
    _, middle = previous_month()
    meter_at(api, workspace, "seat:mem_x:old", "seat", middle, subject="mem_x")
    invoice = _issue(api, period).json()
    page = api.client.get(f"/v1/billing/invoices/{invoice['id']}.html", headers=api.headers())
    assert "&lt;Shop &amp; Co&gt;" in page.text and "<Shop" not in page.text
    assert "5.00 USD" in page.text
