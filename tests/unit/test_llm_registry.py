"""Name resolution, configuration as data, the remote-model guard, local delegation, chains."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from deputy.llm.actions import ActionModel
from deputy.llm.errors import ModelUnavailable, UnknownModel
from deputy.llm.providers import LOCAL_LIMITS, Endpoint, ProviderLimits, ProviderSettings
from deputy.llm.registry import (
    BLOCK_REMOTE_ENV,
    NAME_FORMS,
    ModelName,
    ModelRegistry,
    ProviderState,
    RemoteModelsBlocked,
)
from deputy.llm.resilience import FallbackModel
from deputy.llm.structured import StructuredModel
from deputy.llm.types import Message, Model, ModelCapabilities, ModelRequest, ToolDefinition
from deputy.testing import CollectingUsageSink, ScriptedModel, structured

LOCAL_CAPS = ModelCapabilities(native_tools=False, native_json_schema=True, context_tokens=8192)


class FakeLocalModels:
    def __init__(self, *models: ScriptedModel) -> None:
        self.models = {m.name: m for m in models}
        self.asked: list[str] = []

    def get(self, name: str) -> Model:
        self.asked.append(name)
        if name not in self.models:
            raise UnknownModel(f"no local model {name}")
        return self.models[name]


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("openai:gpt-4o", ModelName("openai", "gpt-4o")),
        ("anthropic:claude-sonnet", ModelName("anthropic", "claude-sonnet")),
        ("local:qwen2.5-coder-1.5b", ModelName("local", "qwen2.5-coder-1.5b")),
        (
            "openai-compatible:openrouter/meta-llama/llama-3-8b",
            ModelName("openai-compatible", "meta-llama/llama-3-8b", "openrouter"),
        ),
    ],
)
def test_names_parse(name: str, parsed: ModelName) -> None:
    assert ModelName.parse(name) == parsed
    assert str(parsed) == name


@pytest.mark.parametrize(
    "name", ["gpt-4o", "mistral:large", "openai:", "openai-compatible:vllm", "", ":x"]
)
def test_unknown_names_list_the_valid_forms(name: str) -> None:
    with pytest.raises(UnknownModel) as caught:
        ModelRegistry().get(name)
    assert caught.value.details["forms"] == list(NAME_FORMS)
    assert "openai-compatible:<endpoint>/<model>" in caught.value.message
    assert caught.value.code == "invalid_request"


def test_a_provider_without_key_does_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_REMOTE_ENV, raising=False)  # the guard would refuse first
    with pytest.raises(UnknownModel, match="openai_api_key"):
        ModelRegistry().get("openai:gpt-4o")
    with pytest.raises(UnknownModel, match="anthropic_api_key"):
        ModelRegistry().get("anthropic:claude")


def test_an_unconfigured_endpoint_does_not_resolve() -> None:
    settings = ProviderSettings(openai_compatible={"vllm": Endpoint(base_url="http://gpu:8000/v1")})
    with pytest.raises(UnknownModel, match=r"'ollama'.*configured: vllm"):
        ModelRegistry(settings).get("openai-compatible:ollama/llama3")


def test_local_names_go_to_the_local_models_with_the_action_adapter() -> None:
    tiny = ScriptedModel(
        [structured({"action": "lookup", "args": {"q": "x"}})],
        name="local:tiny",
        capabilities=LOCAL_CAPS,
    )
    local = FakeLocalModels(tiny)
    registry = ModelRegistry(local=local)
    model = registry.get("local:tiny")
    assert local.asked == ["local:tiny"]
    assert isinstance(model, ActionModel)
    assert registry.get("local:tiny") is model  # resolved once
    tool = ToolDefinition("lookup", "look up", {"type": "object"})
    request = ModelRequest(messages=(Message.user("find x"),), tools=(tool,))
    response = asyncio.run(model.request(request))
    assert response.tool_calls[0].name == "lookup"
    assert response.tool_calls[0].arguments == {"q": "x"}


def test_native_tool_models_get_no_action_adapter() -> None:
    local = FakeLocalModels(ScriptedModel(name="local:big"))
    assert isinstance(ModelRegistry(local=local).get("local:big"), StructuredModel)


def test_local_names_without_local_models_do_not_resolve() -> None:
    with pytest.raises(UnknownModel, match="no local models"):
        ModelRegistry().get("local:tiny")


def test_remote_models_are_blocked_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_REMOTE_ENV, "1")
    settings = ProviderSettings(
        openai_api_key="sk-real",  # type: ignore[arg-type]
        anthropic_api_key="sk-ant",  # type: ignore[arg-type]
        openai_compatible={
            "router": Endpoint(base_url="https://openrouter.ai/api/v1"),
            "here": Endpoint(base_url="http://127.0.0.1:8080/v1"),
        },
    )
    registry = ModelRegistry(settings, local=FakeLocalModels(ScriptedModel(name="local:x")))
    for name in ("openai:gpt-4o", "anthropic:claude", "openai-compatible:router/x"):
        with pytest.raises(RemoteModelsBlocked, match=BLOCK_REMOTE_ENV):
            registry.get(name)
    registry.get("openai-compatible:here/x")  # loopback is fine
    registry.get("local:x")
    asyncio.run(registry.aclose())


def test_remote_models_are_blocked_by_settings() -> None:
    settings = ProviderSettings(openai_api_key="sk", block_remote=True)  # type: ignore[arg-type]
    with pytest.raises(RemoteModelsBlocked):
        ModelRegistry(settings).get("openai:gpt-4o")


def test_chain_falls_back_from_a_hosted_model_to_the_local_one() -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503, json={"error": {"message": "overloaded"}})

    async def no_sleep(seconds: float) -> None:
        return None

    async def scenario() -> tuple[str, str]:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(down)) as client:
            registry = ModelRegistry(
                ProviderSettings(
                    openai_api_key="sk",  # type: ignore[arg-type]
                    openai_base_url="http://127.0.0.1:9/v1",
                ),
                local=FakeLocalModels(
                    ScriptedModel(["local answer"], name="local:tiny", capabilities=LOCAL_CAPS)
                ),
                usage_sink=sink,
                state=ProviderState(http_client=client),
                sleep=no_sleep,
            )
            chain = registry.chain(["openai:gpt-4o", "local:tiny"])
            assert isinstance(chain, FallbackModel)
            response = await chain.request(ModelRequest(messages=(Message.user("hi"),)))
            return response.text, response.model

    sink = CollectingUsageSink()
    assert asyncio.run(scenario()) == ("local answer", "local:tiny")
    assert [(e.model, e.outcome) for e in sink.events] == [
        ("openai:gpt-4o", "unavailable"),
        ("local:tiny", "ok"),
    ]
    assert sink.events[1].cost == Decimal(0)


def test_chain_of_one_is_that_model_and_resolve_takes_either() -> None:
    local = FakeLocalModels(ScriptedModel(name="local:a"), ScriptedModel(name="local:b"))
    registry = ModelRegistry(local=local)
    assert registry.chain(["local:a"]) is registry.get("local:a")
    assert isinstance(registry.resolve(["local:a", "local:b"]), FallbackModel)
    assert registry.resolve("local:b") is registry.get("local:b")
    with pytest.raises(UnknownModel):
        registry.chain([])


def test_local_models_have_their_own_limits() -> None:
    settings = ProviderSettings(
        default_limits=ProviderLimits(timeout_seconds=30),
        limits={
            "openai-compatible": ProviderLimits(concurrency=4),
            "openai-compatible:vllm": ProviderLimits(concurrency=64),
        },
    )
    assert settings.limits_for("local") == LOCAL_LIMITS
    assert settings.limits_for("openai").timeout_seconds == 30
    assert settings.limits_for("openai-compatible:ollama").concurrency == 4
    assert settings.limits_for("openai-compatible:vllm").concurrency == 64


def test_settings_overlay_merges_workspace_and_agent_overrides() -> None:
    process = ProviderSettings.model_validate(
        {
            "openai_api_key": "sk-process",
            "openai_compatible": {"vllm": {"base_url": "http://gpu:8000/v1"}},
            "limits": {"openai": {"timeout_seconds": 20, "concurrency": 8}},
            "prices": {"prices": {"openai:a": {"input_per_million": 1, "output_per_million": 2}}},
        }
    )
    workspace: dict[str, Any] = json.loads(
        json.dumps(
            {
                "openai_api_key": "sk-workspace",
                "openai_compatible": {"ollama": {"base_url": "http://box:11434/v1"}},
                "limits": {"openai": {"concurrency": 2}},
                "prices": {
                    "prices": {"openai:b": {"input_per_million": "3", "output_per_million": "4"}}
                },
            }
        )
    )
    merged = process.overlay(workspace).overlay({"structured": {"max_attempts": 2}})
    assert merged.openai_api_key is not None
    assert merged.openai_api_key.get_secret_value() == "sk-workspace"
    assert set(merged.openai_compatible) == {"vllm", "ollama"}
    assert merged.limits["openai"].concurrency == 2
    assert merged.limits["openai"].timeout_seconds == 20  # refined, not replaced
    assert set(merged.prices.prices) == {"openai:a", "openai:b"}
    assert merged.structured.max_attempts == 2
    assert merged.structured.max_string_length == 2000
    assert process.openai_api_key is not None
    assert process.openai_api_key.get_secret_value() == "sk-process"  # the base is untouched


def test_settings_reject_bad_data() -> None:
    with pytest.raises(ValueError, match="base_url"):
        Endpoint(base_url="gpu:8000")
    with pytest.raises(ValueError, match="endpoint name"):
        ProviderSettings(openai_compatible={"a/b": Endpoint(base_url="http://x")})
    with pytest.raises(ValueError, match="extra"):
        ProviderSettings.model_validate({"opnai_api_key": "typo"})


def test_secrets_do_not_leak_into_reprs() -> None:
    settings = ProviderSettings(openai_api_key="sk-very-secret")  # type: ignore[arg-type]
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in settings.model_dump_json()


def test_registry_stack_meters_and_enforces_schemas_on_local_models() -> None:
    tiny = ScriptedModel(['{"x": "not a number"}', '{"x": 1}'], name="local:t")
    sink = CollectingUsageSink()
    registry = ModelRegistry(local=FakeLocalModels(tiny), usage_sink=sink)
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    request = ModelRequest(messages=(Message.user("x?"),), response_schema=schema)
    response = asyncio.run(registry.get("local:t").request(request))
    assert response.parsed == {"x": 1}
    assert [e.outcome for e in sink.events] == ["ok", "ok"]
    assert all(e.provider == "local" for e in sink.events)


def test_local_failures_are_not_retried() -> None:
    tiny = ScriptedModel([ModelUnavailable("busy"), "never"], name="local:t")
    registry = ModelRegistry(local=FakeLocalModels(tiny))
    with pytest.raises(ModelUnavailable):
        asyncio.run(registry.get("local:t").request(ModelRequest(messages=(Message.user("x"),))))
    assert tiny.remaining == 1


def test_served_models_stand_in_for_names_under_the_same_stack() -> None:
    fake = ScriptedModel(['{"x": "no"}', '{"x": 2}'], name="openai:gpt-4o")
    sink = CollectingUsageSink()
    registry = ModelRegistry(served={"openai:gpt-4o": fake}, usage_sink=sink)
    derived = registry.derive(registry.settings.overlay({"capture_content": True}))
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    request = ModelRequest(messages=(Message.user("x?"),), response_schema=schema)
    response = asyncio.run(derived.get("openai:gpt-4o").request(request))
    assert response.parsed == {"x": 2}  # schema enforced, no key needed, nothing remote
    assert [(e.provider, e.outcome) for e in sink.events] == [("openai", "ok"), ("openai", "ok")]
    fake.assert_all_used()
