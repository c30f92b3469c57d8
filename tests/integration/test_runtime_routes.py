"""End to end, multi-agent: a triage agent routes a billing question to the workspace's billing
agent, which answers the same message in the same turn; the transcript stays one, each agent
sees only its own work, later messages go straight to billing, and a route to another
workspace's agent is refused."""

from __future__ import annotations

from typing import Any

import pytest

from deputy.llm.registry import ModelRegistry
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.model_hub import DatabaseUsageSink
from deputy.testing import FunctionModel, reply, tool_call
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

TRIAGE_MODEL = "openai:triage-test"
BILLING_MODEL = "openai:billing-test"
QUESTION = "Why was invoice INV-7 charged twice this month?"
TRIAGE_SECRET = "triage-internal-note-5521"


class Recorder:
    """A scripted model that keeps every request it answered."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        response: ModelResponse = self.answer(request)
        return response


def triage_answer(request: ModelRequest) -> ModelResponse:
    return tool_call("transfer_to_agent", {"route_id": "billing", "reason": TRIAGE_SECRET})


def billing_answer(request: ModelRequest) -> ModelResponse:
    customer = [m.content for m in request.messages if m.role == "user"]
    return reply(f"Billing here: I looked at your message ({len(customer)} so far).")


def make_agent(
    api: Api, name: str, model: str, spec: dict[str, Any], key: str | None = None
) -> str:
    h = api.headers(key)
    agent = api.client.post("/v1/agents", json={"name": name}, headers=h)
    assert agent.status_code == 201, agent.text
    agent_id: str = agent.json()["id"]
    patched = api.client.patch(f"/v1/agents/{agent_id}", json={"model": model}, headers=h)
    assert patched.status_code == 200, patched.text
    version = api.client.post(f"/v1/agents/{agent_id}/versions", json={"spec": spec}, headers=h)
    assert version.status_code == 201, version.text
    return agent_id


def spec(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "goal": f"Help customers as the {name} desk.",
        "mode": "reasoning",
        "guardrails": {"preset": "minimal"},
        **changes,
    }


def route_to(agent: str) -> dict[str, Any]:
    return {
        "routes": [
            {
                "id": "billing",
                "agent": agent,
                "when": "The customer asks about invoices, charges or payments.",
                "description": "our billing team",
            }
        ]
    }


@pytest.fixture
def models(api: Api) -> tuple[Recorder, Recorder]:
    triage, billing = Recorder(triage_answer), Recorder(billing_answer)
    hub = api.platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(api.platform.db),
        served={TRIAGE_MODEL: FunctionModel(triage), BILLING_MODEL: FunctionModel(billing)},
    )
    return triage, billing


def start(api: Api, agent_id: str) -> str:
    response = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id}, headers=api.headers()
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


def say(api: Api, conversation_id: str, text: str) -> dict[str, Any]:
    response = api.client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"text": text}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def transcript(api: Api, conversation_id: str) -> list[dict[str, Any]]:
    response = api.client.get(
        f"/v1/conversations/{conversation_id}/transcript", headers=api.headers()
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def request_text(request: ModelRequest) -> str:
    parts = [m.content for m in request.messages]
    parts += [str(call.arguments) for m in request.messages for call in m.tool_calls]
    return "\n".join(parts)


def test_a_route_hands_the_turn_to_another_agent_with_one_transcript(
    api: Api, models: tuple[Recorder, Recorder]
) -> None:
    triage_model, billing_model = models
    billing = make_agent(
        api,
        "billing",
        BILLING_MODEL,
        spec(
            "billing",
            tools=[
                {
                    "name": "remember_fact",
                    "effect": "write",
                    "binding": {"kind": "builtin", "builtin": "remember_fact"},
                }
            ],
        ),
    )
    triage = make_agent(api, "triage", TRIAGE_MODEL, spec("triage", **route_to("billing")))
    cid = start(api, triage)

    first = say(api, cid, QUESTION)
    assert first["reply"]["text"].startswith("Billing here")
    assert first["reply"]["agent_id"] == billing
    conversation = first["conversation"]
    assert (conversation["agent_id"], conversation["current_agent_id"]) == (triage, billing)
    assert conversation["current_agent_version"] == 1

    entries = transcript(api, cid)
    switch = next(e for e in entries if e["kind"] == "agent_switch")
    assert switch["data"]["from_agent"] == triage
    assert (switch["data"]["to_agent"], switch["data"]["route_id"]) == (billing, "billing")
    before = [e for e in entries if e["seq"] < switch["seq"]]
    after = [e for e in entries if e["seq"] > switch["seq"]]
    assert any(e["kind"] == "model_step" and e["agent_id"] == triage for e in before)
    assert after and {e["agent_id"] for e in after} == {billing}
    assert [e["kind"] for e in after if e["kind"] in ("model_step", "agent_message")] == [
        "model_step",
        "agent_message",
    ]

    (billing_request,) = billing_model.requests
    seen = request_text(billing_request)
    assert QUESTION in seen
    assert TRIAGE_SECRET not in seen and "transfer_to_agent" not in seen

    second = say(api, cid, "And can you refund one of them?")
    assert second["reply"]["agent_id"] == billing
    assert len(triage_model.requests) == 1
    assert len(billing_model.requests) == 2
    later = request_text(billing_model.requests[-1])
    assert QUESTION in later and "refund one of them" in later
    assert TRIAGE_SECRET not in later


def test_a_route_to_another_workspaces_agent_is_refused(
    api: Api, models: tuple[Recorder, Recorder]
) -> None:
    triage_model, billing_model = models
    _, other_key = api.new_workspace("Elsewhere")
    foreign = make_agent(api, "billing", BILLING_MODEL, spec("billing"), key=other_key)
    triage = make_agent(api, "triage", TRIAGE_MODEL, spec("triage", **route_to(foreign)))
    cid = start(api, triage)

    result = say(api, cid, QUESTION)
    assert result["conversation"]["current_agent_id"] == triage
    switch = next(e for e in transcript(api, cid) if e["kind"] == "agent_switch")
    assert switch["data"]["failed"] == f"no agent {foreign!r} in this workspace"
    assert "to_agent" not in switch["data"]
    assert billing_model.requests == []

    say(api, cid, "Hello again")
    assert len(triage_model.requests) == 2
