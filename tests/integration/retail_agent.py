"""The retail support agent deployed on a real API: the retail REST backend on 127.0.0.1
registered as the workspace's `retail` OpenAPI tool source, the agent created with
examples/specs/retail_support.yaml (optionally in another mode), and its model served by the
registry under a test name. Used by the runtime's end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Model
from tests.integration.conftest import Api
from tests.integration.retail_backend import RetailServer, retail_server

REPO = Path(__file__).resolve().parents[2]
RETAIL_SPEC = REPO / "examples" / "specs" / "retail_support.yaml"

# Real records of tau2's retail db.json.
EMAIL = "ivan.santos3158@example.com"
USER_ID = "ivan_santos_6635"
DELIVERED = "#W6893533"  # a garden hose, delivered, paid with paypal_6151711
PENDING = "#W8770097"
HOSE = "5206946487"  # 50ft vinyl black
OTHER_HOSE = "8481719475"  # 100ft latex blue, available
PAYPAL = "paypal_6151711"


def retail_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(RETAIL_SPEC.read_text())
    spec.update(changes)
    return spec


def serve_model(api: Api, name: str, model: Model) -> None:
    hub = api.platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=hub.root.usage_sink,
        served={name: model},
    )


@dataclass
class RetailAgent:
    api: Api
    server: RetailServer
    agent_id: str

    def start(self, **body: Any) -> dict[str, Any]:
        response = self.api.client.post(
            "/v1/conversations",
            json={"agent_id": self.agent_id, **body},
            headers=self.api.headers(),
        )
        assert response.status_code == 201, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    def say(self, conversation_id: str, text: str) -> dict[str, Any]:
        response = self.api.client.post(
            f"/v1/conversations/{conversation_id}/messages",
            json={"text": text},
            headers=self.api.headers(),
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.api.client.get(
                f"/v1/conversations/{conversation_id}/transcript",
                params={"after": after},
                headers=self.api.headers(),
            )
            assert response.status_code == 200, response.text
            page = response.json()
            entries.extend(page["entries"])
            if page["next_after"] is None:
                return entries
            after = page["next_after"]

    def tool_calls(self, conversation_id: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.transcript(conversation_id) if e["kind"] == "tool_call"]


@contextmanager
def retail_agent(
    api: Api, model_name: str, model: Model, **spec_changes: Any
) -> Iterator[RetailAgent]:
    """`model` is served under `model_name` (a served name takes precedence over providers)."""
    serve_model(api, model_name, model)
    h = api.headers()
    with retail_server(honour_idempotency_keys=True) as server:
        source = api.client.post(
            "/v1/tool-sources",
            json={
                "name": "retail",
                "kind": "openapi",
                "document": server.document,
                "base_url": server.url,
            },
            headers=h,
        )
        assert source.status_code == 201, source.text
        agent = api.client.post("/v1/agents", json={"name": "retail-support"}, headers=h)
        assert agent.status_code == 201, agent.text
        agent_id = agent.json()["id"]
        model_set = api.client.patch(
            f"/v1/agents/{agent_id}", json={"model": model_name}, headers=h
        )
        assert model_set.status_code == 200, model_set.text
        version = api.client.post(
            f"/v1/agents/{agent_id}/versions",
            json={"spec": retail_spec(**spec_changes)},
            headers=h,
        )
        assert version.status_code == 201, version.text
        yield RetailAgent(api, server, agent_id)
