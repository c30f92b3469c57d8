"""An instant agent for channel tests: a reasoning-mode spec whose model answers every
customer message at once with `Echo: <the message>` (so a test can tell which message a reply
answers), deployed on all channels."""

from __future__ import annotations

from typing import Any

from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel, reply, structured
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

ECHO_MODEL = "openai:echo"
ECHO_PREFIX = "Echo: "


def echo_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "Echo support",
        "goal": "Repeat what the customer says, to test channels.",
        "mode": "reasoning",
        "guardrails": {"preset": "minimal"},
    }
    spec.update(changes)
    return spec


def echo_answer(request: ModelRequest) -> ModelResponse:
    """The customer's last message back; a schema question gets its first property's
    placeholder (guardrail checks, translations)."""
    if request.response_schema is not None:
        key = next(iter(request.response_schema.get("properties", {"answer": {}})))
        return structured({key: "ok"})
    said = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    return reply(ECHO_PREFIX + said.strip())


def echo_agent(api: Api, *, name: str = "echo", key: str | None = None, **spec_changes: Any) -> str:
    """Create, version and deploy the echo agent; its id."""
    serve_model(api, ECHO_MODEL, FunctionModel(echo_answer, name=ECHO_MODEL))
    headers = api.headers(key)
    created = api.client.post("/v1/agents", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["id"]
    for method, path, body, status in (
        ("post", f"/v1/agents/{agent_id}/versions", {"spec": echo_spec(**spec_changes)}, 201),
        ("patch", f"/v1/agents/{agent_id}", {"model": ECHO_MODEL}, 200),
        ("post", f"/v1/agents/{agent_id}/deployments", {"version": 1}, 201),
    ):
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, response.text
    return agent_id
