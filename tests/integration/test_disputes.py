"""Disputes through the API on a real database: an accepted dispute reverses the outcome's
charge once (a reversal event, an audit entry), in the outcome's month or as a credit of a
later one; a rejected one leaves the charge; a dispute needs a billed outcome and is decided
once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from deputy.store import tables as t
from tests.integration.billing_helpers import check_invoice, preview, previous_month, put_plan
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api
from tests.integration.usage_helpers import close, meter_at, say, start, workspace_id

pytestmark = pytest.mark.integration


def dispute(api: Api, conversation_id: str, reason: str = "it was not resolved") -> Any:
    return api.client.post(
        "/v1/billing/disputes",
        json={"conversation_id": conversation_id, "reason": reason},
        headers=api.headers(),
    )


def decide(api: Api, dispute_id: str, decision: str, note: str = "checked") -> Any:
    return api.client.post(
        f"/v1/billing/disputes/{dispute_id}/{decision}", json={"note": note}, headers=api.headers()
    )


def reversals(api: Api, workspace: str) -> list[t.UsageEventRow]:
    with api.platform.db.tenant_session(workspace) as session:
        query = select(t.UsageEventRow).where(t.UsageEventRow.kind == "outcome_reversal")
        return list(session.scalars(query))


def audit_actions(api: Api) -> list[str]:
    entries = api.client.get("/v1/audit", headers=api.headers()).json()["data"]
    return [e["action"] for e in reversed(entries) if e["action"].startswith("billing.dispute")
            or e["action"] == "billing.outcome_disputed"]  # fmt: skip


def resolved_conversations(api: Api, agent: str, count: int) -> list[str]:
    conversations = []
    for _ in range(count):
        conversation = start(api, agent)
        say(api, conversation, "help")
        close(api, conversation, "resolved")
        conversations.append(conversation)
    return conversations


def test_an_accepted_dispute_reverses_one_resolution_once(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    put_plan(api, resolved_outcome="1.25")
    first, second = resolved_conversations(api, agent, 2)
    before = Decimal(preview(api)["total"])
    assert before == Decimal("2.50")
    opened = dispute(api, first)
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assert (body["status"], body["outcome_event_id"], body["agent_id"]) == (
        "open",
        f"outcome:{first}",
        agent,
    )
    assert Decimal(preview(api)["total"]) == before  # opening changes nothing
    accepted = decide(api, body["id"], "accept", "refunded")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["reversal_event_id"] == f"reversal:outcome:{first}"
    after = preview(api)
    assert Decimal(after["total"]) == before - Decimal("1.25")
    quantities = check_invoice(api, after, {(agent, "resolved_outcome"): ("1.25", "0")})
    assert quantities[(agent, "resolved_outcome")] == 1  # 2 outcomes, 1 reversal
    [reversal] = reversals(api, workspace)
    assert (reversal.quantity, reversal.reverses_event_id, reversal.agent_id) == (
        "-1",
        f"outcome:{first}",
        agent,
    )
    assert reversal.subject == "resolved" and reversal.data["dispute_id"] == body["id"]
    again = decide(api, body["id"], "accept")
    assert again.status_code == 409 and again.json()["error"]["details"]["status"] == "accepted"
    assert decide(api, body["id"], "reject").status_code == 409
    assert len(reversals(api, workspace)) == 1
    assert Decimal(preview(api)["total"]) == before - Decimal("1.25")
    assert audit_actions(api) == ["billing.outcome_disputed", "billing.dispute_accepted"]
    entry = api.client.get(
        "/v1/audit", params={"action": "billing.dispute_accepted"}, headers=api.headers()
    ).json()["data"][0]
    assert entry["subject_id"] == body["id"]
    assert entry["data"]["reversal_event_id"] == f"reversal:outcome:{first}"
    listed = api.client.get(
        "/v1/billing/disputes", params={"status": "accepted"}, headers=api.headers()
    ).json()["data"]
    assert [d["id"] for d in listed] == [body["id"]]
    del second


def test_a_rejected_dispute_leaves_the_charge(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    put_plan(api, resolved_outcome="2")
    [conversation] = resolved_conversations(api, agent, 1)
    opened = dispute(api, conversation).json()
    rejected = decide(api, opened["id"], "reject", "the customer confirmed it")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["resolution_note"] == "the customer confirmed it"
    assert rejected.json()["reversal_event_id"] is None
    assert Decimal(preview(api)["total"]) == Decimal("2.00")
    assert reversals(api, workspace) == []
    assert decide(api, opened["id"], "accept").status_code == 409
    assert audit_actions(api) == ["billing.outcome_disputed", "billing.dispute_rejected"]


def test_a_dispute_needs_a_billed_outcome_and_one_per_conversation(api: Api) -> None:
    agent = echo_agent(api)
    open_conversation = start(api, agent)
    refused = dispute(api, open_conversation)
    assert refused.status_code == 409 and "closed" in refused.json()["error"]["message"]
    assert dispute(api, "cnv_00000000000000000000000000").status_code == 404
    [closed] = resolved_conversations(api, agent, 1)
    first = dispute(api, closed).json()
    twice = dispute(api, closed)
    assert twice.status_code == 409
    assert twice.json()["error"]["details"]["dispute_id"] == first["id"]
    empty = api.client.post(
        "/v1/billing/disputes",
        json={"conversation_id": closed, "reason": ""},
        headers=api.headers(),
    )
    assert empty.status_code == 422
    assert decide(api, "dsp_00000000000000000000000000", "accept").status_code == 404


def _closed_last_month(api: Api, agent: str, workspace: str) -> str:
    """A conversation closed, resolved, in the last closed month (its outcome event then)."""
    _, middle = previous_month()
    conversation = start(api, agent)
    with api.platform.db.tenant_session(workspace) as session:
        session.execute(
            update(t.Conversation)
            .where(t.Conversation.id == conversation)
            .values(status="closed", outcome="resolved", closed_at=middle)
        )
    meter_at(api, workspace, f"outcome:{conversation}", "outcome", middle, agent_id=agent,
             conversation_id=conversation, subject="resolved")  # fmt: skip
    return conversation


def test_reversals_of_an_invoiced_month_are_credits_of_what_it_charged(api: Api) -> None:
    agent = echo_agent(api)
    workspace = workspace_id(api)
    period, _ = previous_month()
    put_plan(api, resolved_outcome=("1.5", "1"))
    first, second = (_closed_last_month(api, agent, workspace) for _ in range(2))
    issued = api.client.post(
        "/v1/billing/invoices", json={"period": period}, headers=api.headers()
    ).json()
    assert Decimal(issued["total"]) == Decimal("1.50")  # 2 resolutions, 1 free
    for conversation in (first, second):
        opened = dispute(api, conversation).json()
        assert decide(api, opened["id"], "accept").status_code == 200
    current = preview(api)
    [credit] = [line for line in current["lines"] if line["kind"] == "credit"]
    assert (credit["earlier_period"], credit["component"]) == (period, "resolved_outcome")
    # two reversals of a month that charged one resolution: one is given back
    assert (credit["quantity"], credit["billable_quantity"], credit["amount"]) == (
        "-2",
        "-1",
        "-1.50",
    )
    check_invoice(api, current, {})
    stored = api.client.get(f"/v1/billing/invoices/{issued['id']}", headers=api.headers())
    assert stored.json()["total"] == issued["total"]  # the issued invoice never changes
