"""Tool sources over the API, the SDK and the CLI: register, show (never a secret), rotate,
operations, spec entries, the MCP stdio allowlist, and the audit listing of tool calls."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from deputy.api.app import create_app
from deputy.cli.main import app as cli_app
from deputy.cli.state import CliState
from deputy.domain.errors import NotFound, PermissionDenied
from deputy.domain.spec import AgentSpec
from deputy.sdk import DeputyClient, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from deputy.services.keys import authenticate
from deputy.services.tool_sources import build_executor
from deputy.store import tables as t
from deputy.tools.results import CallContext
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-very-secret-1234"
NEW_KEY = "key-rotated-5678"
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Shop", "version": "2.0"},
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
    "security": [{"token": []}],
    "paths": {
        "/orders/{order_id}": {
            "get": {
                "operationId": "getOrder",
                "summary": "Get an order",
                "parameters": [
                    {
                        "name": "order_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        "/orders/{order_id}/refund": {
            "post": {
                "operationId": "refundOrder",
                "summary": "Refund an order",
                "x-effect": "irreversible",
                "parameters": [
                    {
                        "name": "order_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"amount": {"type": "number"}},
                                "required": ["amount"],
                            }
                        }
                    },
                },
            }
        },
    },
}


def openapi_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "shop",
        "kind": "openapi",
        "document": DOCUMENT,
        "base_url": "http://127.0.0.1:9/api/",
        "auth": {"type": "bearer", "token": TOKEN},
        **extra,
    }


def test_register_show_rotate_and_delete_without_revealing_secrets(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = api.headers()
    created = api.client.post("/v1/tool-sources", json=openapi_body(), headers=h)
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["auth"] == {"type": "bearer", "configured": True}
    assert source["base_url"] == "http://127.0.0.1:9/api"
    assert source["config"]["title"] == "Shop" and source["config"]["operation_count"] == 2
    assert source["config"]["auth_options"][0]["type"] == "bearer"
    assert source["honours_idempotency_keys"] is False
    again = api.client.post("/v1/tool-sources", json=openapi_body(), headers=h)
    assert again.status_code == 409

    shown = api.client.get(f"/v1/tool-sources/{source['id']}", headers=h).json()
    listed = api.client.get("/v1/tool-sources", headers=h).json()
    assert listed["data"][0]["id"] == source["id"]
    with api.platform.db.session() as session:
        row = session.scalar(select(t.ToolSource))
        assert row is not None and row.credentials_encrypted is not None
        stored = json.dumps(row.config) + row.credentials_encrypted
    assert TOKEN not in stored  # encrypted at rest

    rotated = api.client.patch(
        f"/v1/tool-sources/{source['id']}",
        json={"auth": {"type": "api_key", "name": "X-Key", "value": NEW_KEY}},
        headers=h,
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["auth"] == {"type": "api_key", "configured": True}
    bad = api.client.patch(
        f"/v1/tool-sources/{source['id']}",
        json={"auth": {"type": "bearer", "token": 12345, "extra": NEW_KEY}},
        headers=h,
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"]["errors"]
    every_answer = json.dumps([source, shown, listed, rotated.json(), bad.json()])
    for secret in (TOKEN, NEW_KEY):
        assert secret not in every_answer
        assert secret not in caplog.text
        assert all(secret not in repr(vars(record)) for record in caplog.records)

    assert api.client.delete(f"/v1/tool-sources/{source['id']}", headers=h).status_code == 204
    assert api.client.get(f"/v1/tool-sources/{source['id']}", headers=h).status_code == 404


def test_operations_and_spec_entries_from_a_document_or_a_material(api: Api) -> None:
    h = api.headers()
    material = api.client.post(
        "/v1/materials", files={"file": ("shop.yaml", yaml.safe_dump(DOCUMENT).encode())}, headers=h
    ).json()
    body = {**openapi_body(), "document": None, "material_id": material["id"]}
    source = api.client.post("/v1/tool-sources", json=body, headers=h).json()
    assert source["config"]["operation_count"] == 2, source

    operations = api.client.get(f"/v1/tool-sources/{source['id']}/tools", headers=h).json()
    effects = {op["operation"]: op["effect"] for op in operations["operations"]}
    assert effects == {"getOrder": "read", "refundOrder": "irreversible"}
    refund = next(op for op in operations["operations"] if op["operation"] == "refundOrder")
    assert refund["input_schema"]["required"] == ["order_id", "amount"]

    path = f"/v1/tool-sources/{source['id']}/spec-tools"
    entries = api.client.post(path, json={"operations": ["refundOrder"]}, headers=h).json()
    assert entries["tools"] == [
        {
            "name": "refund_order",
            "description": "Refund an order",
            "effect": "irreversible",
            "binding": {"kind": "openapi", "source": "shop", "operation": "refundOrder"},
            "parameters": None,
            "limits": [],
            "max_calls_per_conversation": None,
            "timeout_seconds": 15.0,
            "retries": 0,
        }
    ]
    everything = api.client.post(path, json={}, headers=h).json()["tools"]
    spec = {"name": "Shop", "goal": "Help.", "tools": everything}
    agent = api.client.post("/v1/agents", json={"name": "shop-agent"}, headers=h).json()
    version = api.client.post(f"/v1/agents/{agent['id']}/versions", json={"spec": spec}, headers=h)
    assert version.status_code == 201, version.text  # the entries are valid spec tools
    unknown = api.client.post(path, json={"operations": ["dropTables"]}, headers=h)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["unknown"] == ["dropTables"]

    neither = api.client.post("/v1/tool-sources", json={**body, "material_id": None}, headers=h)
    assert neither.status_code == 422
    broken = {**openapi_body(name="broken"), "document": {"swagger": "2.0"}}
    assert api.client.post("/v1/tool-sources", json=broken, headers=h).status_code == 422
    no_url = {**openapi_body(name="no_url"), "base_url": None}
    assert api.client.post("/v1/tool-sources", json=no_url, headers=h).status_code == 422


STDIO = {
    "type": "stdio",
    "command": sys.executable,
    "args": ["-m", "examples.retail", "mcp", "--transport", "stdio"],
    "cwd": str(REPO),
    "secret_env": {"RETAIL_UNUSED_TOKEN": TOKEN},
}


def test_mcp_stdio_commands_must_be_allowed_by_the_operator(api: Api) -> None:
    body = {"name": "retail_mcp", "kind": "mcp", "mcp": STDIO}
    refused = api.client.post("/v1/tool-sources", json=body, headers=api.headers())
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "permission_denied"
    assert "DEPUTY_MCP_STDIO_COMMANDS" in error["message"]
    assert api.client.get("/v1/tool-sources", headers=api.headers()).json()["data"] == []


@pytest.fixture
def allow_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPUTY_MCP_STDIO_COMMANDS", json.dumps([sys.executable]))


def test_an_allowed_mcp_stdio_server_lists_its_tools(allow_python: None, api: Api) -> None:
    h = api.headers()
    hijack = {**STDIO, "env": {"LD_PRELOAD": "/tmp/evil.so"}}
    body = {"name": "retail_mcp", "kind": "mcp", "mcp": hijack}
    assert api.client.post("/v1/tool-sources", json=body, headers=h).status_code == 403
    created = api.client.post("/v1/tool-sources", json={**body, "mcp": STDIO}, headers=h)
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["config"]["transport"]["secret_env_names"] == ["RETAIL_UNUSED_TOKEN"]
    assert TOKEN not in created.text
    listed = api.client.get(f"/v1/tool-sources/{source['id']}/tools", headers=h)
    assert listed.status_code == 200, listed.text
    effects = {op["operation"]: op["effect"] for op in listed.json()["operations"]}
    assert effects["get_order_details"] == "read"
    spec = api.client.post(
        f"/v1/tool-sources/{source['id']}/spec-tools",
        json={"operations": ["get_order_details"]},
        headers=h,
    ).json()
    assert spec["tools"][0]["binding"] == {
        "kind": "mcp",
        "source": "retail_mcp",
        "tool": "get_order_details",
    }


@pytest.fixture
def sdk(api: Api) -> Iterator[tuple[DeputyClient, httpx.BaseTransport]]:
    with SyncASGITransport(create_app(api.platform)) as transport:
        proxy = httpx.MockTransport(transport.handle_request)
        client = DeputyClient("http://deputy.test", api.owner_key, transport=proxy)
        yield client, proxy
        client.close()


def test_audit_listing_of_tool_calls_through_the_sdk_and_cli(
    api: Api, sdk: tuple[DeputyClient, httpx.BaseTransport]
) -> None:
    client, transport = sdk
    client.tool_sources.create("shop", "openapi", document=DOCUMENT, base_url="http://127.0.0.1:9")
    agent = client.agents.create("auditor")
    spec = AgentSpec.model_validate(
        {
            "name": "Shop",
            "goal": "Help.",
            "tools": [
                {
                    "name": "get_order",
                    "effect": "read",
                    "binding": {"kind": "openapi", "source": "shop", "operation": "getOrder"},
                },
                {
                    "name": "handoff",
                    "effect": "write",
                    "binding": {"kind": "builtin", "builtin": "handoff"},
                },
            ],
        }
    )
    workspace_id = client.workspace.get().id
    executor = build_executor(api.platform, workspace_id, agent.id, spec, agent_version=1)

    async def calls() -> None:
        for conversation, step in (("conv_a", "t1"), ("conv_a", "t2"), ("conv_b", "t1")):
            ctx = CallContext(workspace_id, agent.id, conversation, step)
            await executor.call(ctx, "handoff", {"reason": f"{conversation}/{step}"})
        await executor.call(CallContext(workspace_id, agent.id, "conv_b", "t2"), "nope", {})
        await executor.aclose()

    asyncio.run(calls())
    page = client.tool_calls.list(agent.id, limit=2)
    assert len(page.data) == 2 and page.next_cursor is not None
    everything = list(client.tool_calls.iter_all(agent.id, page_size=1))
    assert [c.status for c in everything] == ["refused", "succeeded", "succeeded", "succeeded"]
    assert everything[0].code == "unknown_tool" and everything[1].agent_version == 1
    only_a = client.tool_calls.list(agent.id, conversation_id="conv_a").data
    assert {c.step_key for c in only_a} == {"t1", "t2"}
    assert only_a[0].idempotency_key and only_a[0].output == {
        "handoff": "requested",
        "queue": "support",
    }

    state = CliState(
        url="http://deputy.test",
        api_key=api.owner_key,
        transport=transport,
        retry=RetryPolicy(max_retries=0),
    )
    runner = CliRunner()
    listed = runner.invoke(
        cli_app, ["tools", "calls", agent.id, "--conversation", "conv_b"], obj=state
    )
    assert listed.exit_code == 0, listed.output
    assert "unknown_tool" in listed.stdout and "conv_a" not in listed.stdout
    spec_out = runner.invoke(cli_app, ["tools", "spec", "shop", "getOrder"], obj=state)
    assert spec_out.exit_code == 0, spec_out.output
    entries = yaml.safe_load(spec_out.stdout)["tools"]
    assert entries == [
        {
            "name": "get_order",
            "description": "Get an order",
            "effect": "read",
            "binding": {"kind": "openapi", "source": "shop", "operation": "getOrder"},
        }
    ]
    ops = runner.invoke(cli_app, ["tools", "operations", "shop"], obj=state)
    assert "refundOrder" in ops.stdout and "irreversible" in ops.stdout
    shown = runner.invoke(cli_app, ["tools", "sources", "show", "shop"], obj=state)
    assert shown.exit_code == 0 and "Shop" in shown.stdout


def test_cli_reads_credentials_from_the_environment_only(
    api: Api,
    sdk: tuple[DeputyClient, httpx.BaseTransport],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, transport = sdk
    document = tmp_path / "shop.json"
    document.write_text(json.dumps(DOCUMENT))
    state = CliState(url="http://deputy.test", api_key=api.owner_key, transport=transport)
    runner = CliRunner()
    args = ["tools", "sources", "add-openapi", str(document), "--name", "shop"]
    args += ["--base-url", "http://127.0.0.1:9", "--auth", "api_key", "--api-key-env", "SHOP_KEY"]
    missing = runner.invoke(cli_app, args, obj=state)
    assert missing.exit_code == 2 and "SHOP_KEY" in missing.output
    monkeypatch.setenv("SHOP_KEY", NEW_KEY)
    added = runner.invoke(cli_app, [*args, "--json"], obj=state)
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["auth"] == {"type": "api_key", "configured": True}
    assert NEW_KEY not in added.output
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    rotate = ["tools", "sources", "rotate", "shop", "--bearer-env", "SHOP_TOKEN", "--json"]
    rotated = runner.invoke(cli_app, rotate, obj=state)
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["auth"]["type"] == "bearer" and TOKEN not in rotated.output
    both = runner.invoke(cli_app, [*rotate, "--api-key-env", "SHOP_KEY"], obj=state)
    assert both.exit_code == 2
    listed = runner.invoke(cli_app, ["tools", "sources", "list"], obj=state)
    assert "shop" in listed.stdout and "bearer" in listed.stdout
    assert client.tool_sources.get(json.loads(added.stdout)["id"]).auth.type == "bearer"


def test_viewers_see_sources_but_cannot_change_them(api: Api) -> None:
    h = api.headers()
    source = api.client.post("/v1/tool-sources", json=openapi_body(), headers=h).json()
    viewer = api.client.post(
        "/v1/members", json={"email": "v@example.com", "name": "V", "role": "viewer"}, headers=h
    ).json()
    key = api.client.post(
        "/v1/keys", json={"name": "viewer", "member_id": viewer["id"]}, headers=h
    ).json()["secret"]
    v = api.headers(key)
    assert api.client.get(f"/v1/tool-sources/{source['id']}", headers=v).status_code == 200
    attempts = [
        api.client.post("/v1/tool-sources", json=openapi_body(name="mine"), headers=v),
        api.client.patch(f"/v1/tool-sources/{source['id']}", json={"description": "x"}, headers=v),
        api.client.delete(f"/v1/tool-sources/{source['id']}", headers=v),
    ]
    assert [a.status_code for a in attempts] == [403, 403, 403]
    assert attempts[0].json()["error"]["details"] == {"required_scope": "agents:write"}
    spec = AgentSpec.model_validate({"name": "S", "goal": "G"})
    with pytest.raises(PermissionDenied, match="conversations:write"):
        build_executor(api.platform, authenticate(api.platform, key), "agt_x", spec)
    owner = authenticate(api.platform, api.owner_key)
    with pytest.raises(NotFound):
        build_executor(api.platform, owner, "agt_missing", spec)
