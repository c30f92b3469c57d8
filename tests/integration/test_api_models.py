"""Model configuration through the API: endpoints with encrypted keys, default and agent models."""

from __future__ import annotations

from sqlalchemy import select

from deputy.store import tables as t
from tests.integration.conftest import Api


def test_endpoint_keys_are_encrypted_and_never_returned(api: Api) -> None:
    body = {"name": "vllm", "base_url": "http://127.0.0.1:8000/v1/", "api_key": "sk-top-secret"}
    created = api.client.post("/v1/model-endpoints", json=body, headers=api.headers())
    assert created.status_code == 201, created.text
    assert created.json()["has_api_key"] is True
    assert created.json()["base_url"] == "http://127.0.0.1:8000/v1"
    listed = api.client.get("/v1/model-endpoints", headers=api.headers())
    assert "sk-top-secret" not in listed.text + created.text
    with api.platform.db.session() as session:
        stored = session.scalar(select(t.ModelEndpoint.api_key_encrypted))
    assert stored is not None and "sk-top-secret" not in stored
    assert api.platform.secrets.decrypt(stored) == "sk-top-secret"
    again = api.client.post("/v1/model-endpoints", json=body, headers=api.headers())
    assert again.status_code == 409
    bad = api.client.post(
        "/v1/model-endpoints", json={"name": "x", "base_url": "ftp://nope"}, headers=api.headers()
    )
    assert bad.status_code == 422
    assert api.client.delete("/v1/model-endpoints/vllm", headers=api.headers()).status_code == 204
    assert api.client.get("/v1/model-endpoints", headers=api.headers()).json() == []


def test_default_and_agent_models(api: Api) -> None:
    workspace = api.client.patch(
        "/v1/workspace", json={"default_model": "local:qwen2.5-coder-0.5b"}, headers=api.headers()
    ).json()
    assert workspace["default_model"] == "local:qwen2.5-coder-0.5b"
    renamed = api.client.patch("/v1/workspace", json={"name": "Acme"}, headers=api.headers())
    assert renamed.json()["default_model"] == "local:qwen2.5-coder-0.5b"  # untouched
    cleared = api.client.patch("/v1/workspace", json={"default_model": None}, headers=api.headers())
    assert cleared.json()["default_model"] is None
    agent = api.client.post("/v1/agents", json={"name": "bot"}, headers=api.headers()).json()
    assert agent["model"] is None
    url = f"/v1/agents/{agent['id']}"
    updated = api.client.patch(url, json={"model": "openai:gpt-4.1-mini"}, headers=api.headers())
    assert updated.json()["model"] == "openai:gpt-4.1-mini"
    wrong = api.client.patch(url, json={"model": "gpt4"}, headers=api.headers())
    assert wrong.status_code == 422
