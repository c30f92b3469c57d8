"""Where a spent hard-stop budget stops conversations and where it must not, through the API on
a real database: a new conversation arriving on a messaging channel (a signed Telegram
webhook) is acknowledged, not started, and its delivery kept `ignored` with the budget's
reason (not `failed`, not left to be retried); raising the budget lets the next message from
the same customer in and it is answered. `metadata.probe_id`, which exempts a conversation from
billing and budgets, is refused from an API key and stores nothing, while a real probe run
still goes through a spent budget, unbilled, as a normal conversation gets 402."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, update

from deputy.services.channel_gateway import STALE_INBOUND_SECONDS, resume_inbound
from deputy.store import tables as t
from deputy.store.tables import utcnow
from tests.integration.billing_helpers import put_plan
from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api
from tests.integration.messaging_platforms import (
    FakePlatforms,
    connection_body,
    fake_platforms,
    recipient,
    webhook,
)
from tests.integration.probe_agent import GOOD_HOURS, Switch, hours_agent, request

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture
def platforms() -> Iterator[FakePlatforms]:
    with fake_platforms() as fakes:
        yield fakes


def eventually(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def set_budget(api: Api, **body: Any) -> Any:
    response = api.client.put("/v1/billing/budget", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    return response.json()


def new_conversation(api: Api, agent_id: str, **body: Any) -> Any:
    return api.client.post(
        "/v1/conversations", json={"agent_id": agent_id, **body}, headers=api.headers()
    )


def spend_the_budget(api: Api, agent_id: str) -> dict[str, Any]:
    """A plan pricing a conversation at 1 USD and a 1 USD hard-stop budget, spent by one
    conversation through the API; the budget as the API then shows it."""
    put_plan(api, conversation="1.00")
    set_budget(api, amount="1", hard_stop=True, alert_thresholds=[1.0])
    started = new_conversation(api, agent_id)
    assert started.status_code == 201, started.text
    budget = api.client.get("/v1/billing/budget", headers=api.headers()).json()
    assert budget["burn"]["exhausted"] is True, budget
    assert Decimal(budget["burn"]["spend"]) == Decimal("1.00")
    return dict(budget)


def count(api: Api, table: Any, *where: Any) -> int:
    with api.platform.db.session() as session:
        query = select(func.count()).select_from(table).where(*where)
        return int(session.scalar(query) or 0)


def inbound_rows(api: Api, connection_id: str) -> dict[str, t.ChannelInboundRow]:
    with api.platform.db.session() as session:
        found = session.scalars(
            select(t.ChannelInboundRow).where(t.ChannelInboundRow.connection_id == connection_id)
        )
        return {row.delivery_id: row for row in found}


def settled(api: Api, connection_id: str, delivery_id: str) -> t.ChannelInboundRow:
    """The stored delivery once its background processing has finished with it."""

    def done() -> t.ChannelInboundRow | None:
        row = inbound_rows(api, connection_id).get(delivery_id)
        return row if row is not None and row.status != "received" else None

    return eventually(done)


# ---- a spent budget on a messaging channel --------------------------------------------------


def test_a_spent_budget_stops_a_new_channel_conversation_on_record_until_raised(
    api: Api, platforms: FakePlatforms
) -> None:
    agent_id = echo_agent(api)
    created = api.client.post(
        "/v1/channel-connections",
        json=connection_body("telegram", agent_id, platforms),
        headers=api.headers(),
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    budget = spend_the_budget(api, agent_id)
    customer = recipient("telegram", "ada")  # the chat and sender id the webhook uses
    of_customer = (t.Customer.channel == "telegram", t.Customer.external_id == customer)
    on_telegram = (t.Conversation.channel == "telegram",)
    before = count(api, t.Conversation)

    stopped = webhook("telegram", "Where is my order?", thread="ada", delivery_id="b-1")
    acknowledged = api.client.post(
        f"/v1/channels/{connection_id}/webhook", content=stopped.body, headers=stopped.headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json() == {"ok": True}

    row = settled(api, connection_id, stopped.delivery_id)
    assert row.status == "ignored", (row.status, row.error)
    assert row.error is not None and row.error.startswith("budget_exhausted:"), row.error
    assert "workspace budget of 1 USD" in row.error and "is spent" in row.error
    assert row.conversation_id is None and row.processed_at is not None
    assert count(api, t.Conversation) == before
    assert count(api, t.Conversation, *on_telegram) == 0
    assert count(api, t.Customer, *of_customer) == 0
    assert platforms.sent == []  # nothing was answered on the platform

    # not retried: even once stale, the sweeper leaves a delivery stopped by the budget alone
    with api.platform.db.session() as session:
        session.execute(
            update(t.ChannelInboundRow)
            .where(t.ChannelInboundRow.id == row.id)
            .values(created_at=utcnow() - timedelta(seconds=STALE_INBOUND_SECONDS * 2))
        )
    assert asyncio.run(resume_inbound(api.platform)) == 0
    again = inbound_rows(api, connection_id)[stopped.delivery_id]
    assert (again.status, again.attempts, again.error) == ("ignored", row.attempts, row.error)
    assert count(api, t.Conversation) == before

    # the budget raised, the same customer's next message starts a conversation, answered
    raised = set_budget(api, amount="10", hard_stop=True, alert_thresholds=[1.0])
    assert raised["id"] == budget["id"] and raised["burn"]["exhausted"] is False
    later = webhook("telegram", "Anyone there now?", thread="ada", delivery_id="b-2")
    acknowledged = api.client.post(
        f"/v1/channels/{connection_id}/webhook", content=later.body, headers=later.headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    answered = settled(api, connection_id, later.delivery_id)
    assert answered.status == "processed" and answered.error is None, answered.error
    assert answered.conversation_id is not None
    sent = platforms.wait_for_text(ECHO_PREFIX + "Anyone there now?")
    assert sent.recipient == customer
    assert ECHO_PREFIX + "Where is my order?" not in platforms.texts()

    conversation = api.client.get(
        f"/v1/conversations/{answered.conversation_id}", headers=api.headers()
    ).json()
    assert conversation["channel"] == "telegram" and conversation["agent_id"] == agent_id
    assert count(api, t.Conversation) == before + 1
    assert count(api, t.Conversation, *on_telegram) == 1
    with api.platform.db.session() as session:
        stored = session.get_one(t.Conversation, answered.conversation_id)
        owner = session.get_one(t.Customer, stored.customer_id)
        assert (owner.channel, owner.external_id) == ("telegram", customer)
    transcript = api.client.get(
        f"/v1/conversations/{answered.conversation_id}/transcript", headers=api.headers()
    ).json()["entries"]
    said = [e["text"] for e in transcript if e["kind"] == "customer_message"]
    assert said == ["Anyone there now?"]  # the stopped message was never posted
    assert inbound_rows(api, connection_id)[stopped.delivery_id].status == "ignored"


# ---- metadata.probe_id is the platform's, and probes are exempt -----------------------------


def test_metadata_probe_id_is_refused_from_an_api_key_and_stores_nothing(api: Api) -> None:
    agent_id = echo_agent(api)
    put_plan(api, conversation="1.00")
    conversations = count(api, t.Conversation)
    events = count(api, t.UsageEventRow)
    customers = count(api, t.Customer)

    refused = new_conversation(
        api,
        agent_id,
        metadata={"probe_id": "prb_x"},
        customer={"channel": "api", "external_id": "free-rider"},
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_request", error
    assert "probe_id" in error["message"]
    assert count(api, t.Conversation) == conversations
    assert count(api, t.UsageEventRow) == events
    assert count(api, t.Customer) == customers

    # the same request without the reserved key is an ordinary, billed conversation
    started = new_conversation(api, agent_id, metadata={"order": "A-1"})
    assert started.status_code == 201, started.text
    with api.platform.db.session() as session:
        assert session.get_one(t.Conversation, started.json()["id"]).meta == {"order": "A-1"}
    billed = (t.UsageEventRow.conversation_id == started.json()["id"],)
    assert count(api, t.UsageEventRow, *billed, t.UsageEventRow.kind == "conversation") == 1


def test_a_probe_runs_through_a_spent_budget_unbilled_while_customers_are_stopped(
    api: Api,
) -> None:
    agent_id = hours_agent(api, Switch())
    budget = spend_the_budget(api, agent_id)
    refused = new_conversation(api, agent_id)
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "budget_exhausted"
    assert refused.json()["error"]["details"]["budget_id"] == budget["id"]
    conversations = count(api, t.Conversation)
    billed_kinds = t.UsageEventRow.kind.in_(("conversation", "outcome"))
    billed = count(api, t.UsageEventRow, billed_kinds)

    probe = request(
        api,
        "POST",
        "/v1/probes",
        {
            "agent_id": agent_id,
            "name": "opening hours",
            "scenario": {
                "script": ["When are you open?"],
                "assertions": {"must_communicate": [GOOD_HOURS]},
            },
            "interval_seconds": 60,
            "enabled": False,  # runs only when the test says
        },
    )
    done = request(api, "POST", f"/v1/probes/{probe['id']}/run")
    assert done["status"] == "passed", done
    assert done["turns"][0]["reply"] == f"We are open {GOOD_HOURS}."
    assert done["conversation_id"]
    assert count(api, t.Conversation) == conversations + 1
    with api.platform.db.session() as session:
        row = session.get_one(t.Conversation, done["conversation_id"])
        assert row.meta["probe_id"] == probe["id"]
        kinds = set(
            session.scalars(
                select(t.UsageEventRow.kind).where(
                    t.UsageEventRow.conversation_id == done["conversation_id"]
                )
            )
        )
    assert not kinds & {"conversation", "outcome"}, kinds
    assert count(api, t.UsageEventRow, billed_kinds) == billed
    burn = api.client.get("/v1/billing/budget", headers=api.headers()).json()["burn"]
    assert Decimal(burn["spend"]) == Decimal("1.00") and burn["exhausted"] is True

    # the probe's pass opened no door: customers are still stopped
    still = new_conversation(api, agent_id)
    assert still.status_code == 402, still.text
    assert still.json()["error"]["code"] == "budget_exhausted"
    assert count(api, t.Conversation) == conversations + 1
