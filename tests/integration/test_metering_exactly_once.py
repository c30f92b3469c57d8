"""Every billable fact is metered exactly once however often it is retried, on the database
under test (SQLite or PostgreSQL): a retried conversation creation, a repeated message, a
second close, a tool call that took two attempts, `meter` called twice or by several threads
at once, and seats (on adding a member, and by the monthly sweep the server runs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from examples.retail.server import serve_app
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deputy.api.app import create_app
from deputy.billing.meter import UsageFact, meter
from deputy.billing.seats import ensure_seat_events, meter_seat, month_start, next_month_start
from deputy.config import load_settings
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, reply, tool_call
from tests.integration.channel_agent import ECHO_MODEL, echo_answer
from tests.integration.conftest import Api
from tests.integration.usage_helpers import (
    close,
    deploy_agent,
    say,
    serve_models,
    start,
    stored_events,
    workspace_id,
)

pytestmark = pytest.mark.integration


def event_ids(api: Api, workspace: str, kind: str | None = None) -> list[str]:
    return [row.event_id for row in stored_events(api, workspace, kind)]


def test_a_retried_creation_a_repeated_message_and_a_second_close_meter_once(api: Api) -> None:
    serve_models(api)
    workspace = workspace_id(api)
    agent = deploy_agent(api, "once", ECHO_MODEL)
    create = {
        "url": "/v1/conversations",
        "json": {"agent_id": agent},
        "headers": {**api.headers(), "Idempotency-Key": "create-1"},
    }
    first = api.client.post(**create)
    again = api.client.post(**create)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    conversation_id = first.json()["id"]
    assert again.json()["id"] == conversation_id
    assert event_ids(api, workspace, "conversation") == [f"conversation:{conversation_id}"]

    say(api, conversation_id, "Where is my order?", client_message_id="m-1")
    after_first = event_ids(api, workspace)
    repeated = say(api, conversation_id, "Where is my order?", client_message_id="m-1")
    assert repeated["reply"]["text"] == "Echo: Where is my order?"
    assert event_ids(api, workspace) == after_first  # answered from the first turn: no calls
    assert event_ids(api, workspace, "model_call")

    close(api, conversation_id, "resolved")
    refused = api.client.post(
        f"/v1/conversations/{conversation_id}/close",
        json={"outcome": "escalated"},
        headers=api.headers(),
    )
    assert refused.status_code == 409, refused.text
    [outcome] = stored_events(api, workspace, "outcome")
    assert (outcome.event_id, outcome.outcome) == (f"outcome:{conversation_id}", "resolved")


@pytest.fixture
def flaky_backend() -> Iterator[tuple[str, list[int]]]:
    """An order-status webhook whose first answer is a 503; the statuses it answered."""
    answered: list[int] = []

    async def order(request: Request) -> JSONResponse:
        status = 503 if not answered else 200
        answered.append(status)
        body = {"order_id": request.path_params["order_id"], "status": "shipped"}
        return JSONResponse(body if status == 200 else {"error": "try again"}, status)

    with serve_app(Starlette(routes=[Route("/orders/{order_id}", order)])) as url:
        yield url, answered


def looks_up_the_order(request: ModelRequest) -> ModelResponse:
    """Call the tool once, then answer from its result."""
    if any(message.role == "tool" for message in request.messages):
        return reply("Your order has shipped.")
    if request.response_schema is not None:
        return echo_answer(request)
    return tool_call("order_status", {"order_id": "A1"})


def test_a_tool_call_that_took_two_attempts_is_one_event(
    api: Api, flaky_backend: tuple[str, list[int]]
) -> None:
    url, answered = flaky_backend
    hub = api.platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(api.platform.db),
        served={ECHO_MODEL: FunctionModel(looks_up_the_order, name=ECHO_MODEL)},
    )
    tool = {
        "name": "order_status",
        "description": "The status of an order.",
        "effect": "read",
        "retries": 2,
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "binding": {"kind": "http", "method": "GET", "url": f"{url}/orders/{{order_id}}"},
    }
    agent = deploy_agent(api, "tools", ECHO_MODEL, tools=[tool])
    workspace = workspace_id(api)
    conversation_id = start(api, agent)
    result = say(api, conversation_id, "Where is order A1?")
    assert result["reply"]["text"] == "Your order has shipped."
    assert answered == [503, 200]

    with api.platform.db.tenant_session(workspace) as session:
        [call] = session.scalars(select(t.ToolCallRow)).all()
    assert (call.status, call.attempts) == ("succeeded", 2)
    [event] = stored_events(api, workspace, "tool_call")
    assert event.event_id == f"tool_call:{call.id}"
    assert (event.subject, event.outcome, event.quantity) == ("order_status", "succeeded", "1")
    assert (event.conversation_id, event.agent_id) == (conversation_id, agent)
    assert event.data == {"attempts": 2, "effect": "read"}


def fact(workspace: str, event_id: str) -> UsageFact:
    return UsageFact(
        event_id=event_id,
        kind="tool_call",
        workspace_id=workspace,
        quantity=Decimal(1),
        unit="call",
        occurred_at=utcnow(),
        subject="refund",
    )


def test_meter_writes_a_fact_once_even_from_racing_threads(api: Api) -> None:
    workspace = workspace_id(api)
    db = api.platform.db
    with db.tenant_session(workspace) as session:
        assert meter(session, fact(workspace, "twice"))
    with db.tenant_session(workspace) as session:
        assert not meter(session, fact(workspace, "twice"))
    assert event_ids(api, workspace, "tool_call") == ["twice"]

    racers = 4
    for round_number in range(3):
        barrier = threading.Barrier(racers)
        event_id = f"race-{round_number}"

        def write(_: int, event_id: str = event_id, barrier: threading.Barrier = barrier) -> bool:
            with db.tenant_session(workspace) as session:
                barrier.wait(timeout=30)
                return meter(session, fact(workspace, event_id))

        with ThreadPoolExecutor(racers) as pool:
            wrote = list(pool.map(write, range(racers)))
        assert wrote.count(True) == 1, wrote
    expected = ["twice", "race-0", "race-1", "race-2"]
    assert sorted(event_ids(api, workspace, "tool_call")) == sorted(expected)


def seat_events(api: Api, workspace: str) -> list[t.UsageEventRow]:
    return stored_events(api, workspace, "seat")


def test_members_are_seats_once_a_month(api: Api) -> None:
    workspace = workspace_id(api)
    now = utcnow()
    this_month, next_month = month_start(now), next_month_start(now)
    [owner_seat] = seat_events(api, workspace)  # written with the workspace
    owner_id = owner_seat.subject
    assert owner_seat.event_id == f"seat:{owner_id}:{this_month:%Y-%m}"

    add = {
        "url": "/v1/members",
        "json": {"email": "ada@example.com", "name": "Ada", "role": "reviewer"},
        "headers": {**api.headers(), "Idempotency-Key": "add-ada"},
    }
    added = api.client.post(**add)
    assert added.status_code == 201, added.text
    assert api.client.post(**add).headers["idempotent-replayed"] == "true"
    ada = added.json()
    seats = {row.subject: row for row in seat_events(api, workspace)}
    assert set(seats) == {owner_id, ada["id"]}
    ada_seat = seats[ada["id"]]
    assert ada_seat.event_id == f"seat:{ada['id']}:{this_month:%Y-%m}"
    assert (ada_seat.quantity, ada_seat.unit, ada_seat.data["role"]) == ("1", "seat", "reviewer")
    with api.platform.db.tenant_session(workspace) as session:
        member = session.get_one(t.Member, ada["id"])
        assert ada_seat.occurred_at == member.created_at
        assert not meter_seat(session, member)  # already metered this month

    assert ensure_seat_events(api.platform.db, now) == 0  # this month: all there
    _, rival_key = api.new_workspace("Rival")
    rival = workspace_id(api, rival_key)
    assert ensure_seat_events(api.platform.db, next_month) == 3  # both members + rival owner
    assert ensure_seat_events(api.platform.db, next_month + timedelta(days=3)) == 0
    assert ensure_seat_events(api.platform.db, this_month - timedelta(days=1)) == 0  # not yet
    ahead = [r for r in seat_events(api, workspace) if r.event_id.endswith(f"{next_month:%Y-%m}")]
    assert sorted(r.subject or "" for r in ahead) == sorted([owner_id or "", ada["id"]])
    assert {r.occurred_at for r in ahead} == {next_month}
    assert len(seat_events(api, rival)) == 2

    removed = api.client.delete(f"/v1/members/{ada['id']}", headers=api.headers())
    assert removed.status_code == 204, removed.text
    kept = [r.event_id for r in seat_events(api, workspace) if r.subject == ada["id"]]
    assert len(kept) == 2  # a removed member keeps the seats already metered
    month_after = next_month_start(next_month)
    assert ensure_seat_events(api.platform.db, month_after) == 2  # the two owners only


def test_the_server_meters_seats_when_it_starts(database_url: str, tmp_path: Path) -> None:
    platform, boot = prepare(load_settings(database_url=database_url, data_dir=tmp_path / "d"))
    assert boot.created is not None
    workspace = boot.created.workspace.id
    seat = select(t.UsageEventRow).where(t.UsageEventRow.kind == "seat")
    with platform.db.tenant_session(workspace) as session:
        assert len(session.scalars(seat).all()) == 1  # the owner's, with the workspace
        session.execute(delete(t.UsageEventRow).where(t.UsageEventRow.kind == "seat"))

    def seats() -> list[t.UsageEventRow]:
        with platform.db.tenant_session(workspace) as session:
            return list(session.scalars(seat))

    try:
        with TestClient(create_app(platform)):
            deadline = time.monotonic() + 30
            while not seats() and time.monotonic() < deadline:
                time.sleep(0.05)
            [written] = seats()
    finally:
        platform.close()
    owner = boot.created.owner.id
    assert written.event_id == f"seat:{owner}:{utcnow():%Y-%m}"
