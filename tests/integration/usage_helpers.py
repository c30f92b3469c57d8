"""Shared by the usage and metering tests: agents whose models answer at once (one priced, one
not), conversations through the API, usage events written at chosen times through the real
`meter`, and the usage API's answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from deputy.billing.meter import UsageFact, meter
from deputy.domain.billing import UsageKind, UsageUnit
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import ModelRequest, ModelResponse, Usage
from deputy.llm.usage import UsageEvent
from deputy.services.model_hub import DatabaseUsageSink
from deputy.store import tables as t
from deputy.testing import FunctionModel, reply, structured
from tests.integration.channel_agent import ECHO_MODEL, echo_answer, echo_spec
from tests.integration.conftest import Api

PRICED_MODEL = "openai:priced"
PRICES = {PRICED_MODEL: {"input_per_million": "3", "output_per_million": "15"}}
PRICED_USAGE = Usage(1000, 200)  # 1000 * 3 / 1e6 + 200 * 15 / 1e6 = $0.006 a call


def priced_answer(request: ModelRequest) -> ModelResponse:
    """The echo agent's answer, billed 1200 tokens a call."""
    answer = echo_answer(request)
    if answer.parsed is not None:
        return structured(answer.parsed, usage=PRICED_USAGE)
    return reply(answer.text, usage=PRICED_USAGE)


def serve_models(api: Api) -> None:
    """The echo model (no price known) and the priced one, behind the real registry stack."""
    hub = api.platform.models
    hub.root = ModelRegistry(
        hub.base_settings.overlay({"prices": {"prices": PRICES}}),
        local=hub.local,
        usage_sink=DatabaseUsageSink(api.platform.db),
        served={
            ECHO_MODEL: FunctionModel(echo_answer, name=ECHO_MODEL),
            PRICED_MODEL: FunctionModel(priced_answer, name=PRICED_MODEL),
        },
    )


def deploy_agent(api: Api, name: str, model: str, *, key: str | None = None, **spec: Any) -> str:
    """An echo agent answering with `model`, versioned and deployed; its id."""
    headers = api.headers(key)
    created = api.client.post("/v1/agents", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["id"]
    for method, path, body, status in (
        ("post", f"/v1/agents/{agent_id}/versions", {"spec": echo_spec(**spec)}, 201),
        ("patch", f"/v1/agents/{agent_id}", {"model": model}, 200),
        ("post", f"/v1/agents/{agent_id}/deployments", {"version": 1}, 201),
    ):
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, response.text
    return agent_id


def start(api: Api, agent_id: str, *, key: str | None = None, **body: Any) -> str:
    response = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id, **body}, headers=api.headers(key)
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


def say(api: Api, conversation_id: str, text: str, **body: Any) -> dict[str, Any]:
    response = api.client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"text": text, **body},
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def close(api: Api, conversation_id: str, outcome: str = "resolved") -> dict[str, Any]:
    response = api.client.post(
        f"/v1/conversations/{conversation_id}/close",
        json={"outcome": outcome},
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def workspace_id(api: Api, key: str | None = None) -> str:
    found: str = api.client.get("/v1/workspace", headers=api.headers(key)).json()["id"]
    return found


UNITS: dict[UsageKind, UsageUnit] = {
    "model_call": "token",
    "conversation": "conversation",
    "outcome": "outcome",
    "outcome_reversal": "outcome",
    "tool_call": "call",
    "voice_minutes": "minute",
    "seat": "seat",
}


def meter_at(
    api: Api,
    workspace: str,
    event_id: str,
    kind: UsageKind,
    occurred_at: datetime,
    quantity: str = "1",
    **fields: Any,
) -> None:
    """A usage event written by the real `meter`, at a chosen time."""
    fact = UsageFact(
        event_id=event_id,
        kind=kind,
        workspace_id=workspace,
        quantity=Decimal(quantity),
        unit=UNITS[kind],
        occurred_at=occurred_at,
    )
    fact = replace(fact, **fields)
    with api.platform.db.tenant_session(workspace) as session:
        assert meter(session, fact)


def model_call_at(
    api: Api,
    workspace: str,
    event_id: str,
    occurred_at: datetime,
    *,
    input_tokens: int,
    output_tokens: int,
    cost: str | None,
    model: str = "openai:gpt-test",
    **metadata: str,
) -> None:
    """A model call's usage event, written by the real sink the model layer uses."""
    event = UsageEvent(
        event_id=event_id,
        occurred_at=occurred_at,
        model=model,
        provider=model.split(":", 1)[0],
        outcome="ok",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=None if cost is None else Decimal(cost),
        metadata={"workspace_id": workspace, **metadata},
    )
    DatabaseUsageSink(api.platform.db).record(event)


def stored_events(api: Api, workspace: str, kind: str | None = None) -> list[t.UsageEventRow]:
    """The workspace's usage events as stored, oldest first."""
    query = select(t.UsageEventRow).order_by(t.UsageEventRow.occurred_at, t.UsageEventRow.id)
    if kind is not None:
        query = query.where(t.UsageEventRow.kind == kind)
    with api.platform.db.tenant_session(workspace) as session:
        return list(session.scalars(query))


def usage(api: Api, path: str = "", key: str | None = None, **params: Any) -> Any:
    """GET /v1/usage<path> and its JSON (asserting 200)."""
    response = api.client.get(f"/v1/usage{path}", params=params, headers=api.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def all_events(api: Api, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every event the usage API lists for the window, following the cursor."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = usage(
            api, "/events", key, limit=200, **params, **({"cursor": cursor} if cursor else {})
        )
        events.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return events
