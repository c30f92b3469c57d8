"""Tool descriptions: tau2's tools-data.json, OpenAPI 3 documents (the retail example's own),
and tools of registered sources; effect tiers with a specific reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from examples.retail.rest import create_app
from examples.retail.store import RetailStore

from deputy.builder.read import read_material
from deputy.builder.read_common import PATH_SEPARATOR
from deputy.builder.read_tools import tool_domains, tool_from_definition
from deputy.builder.sources import MaterialRef, ReadResult, ToolDescription
from deputy.domain.spec import MCPBinding, OpenAPIBinding, Tool
from deputy.tools.base import ToolDefinition
from tests.processes import SHARED_DATA

TOOLS_DATA = SHARED_DATA / "tau2-bench" / "tools-data.json"
RETAIL_DB = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "db.json"


def read(name: str, value: Any, media_type: str = "application/json") -> ReadResult:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return read_material(MaterialRef("mat_tools", name, media_type), data)


@pytest.fixture(scope="module")
def tau2() -> ReadResult:
    return read("tools-data.json", TOOLS_DATA.read_bytes())


def by_name(tools: tuple[ToolDescription, ...]) -> dict[str, ToolDescription]:
    return {tool.name: tool for tool in tools}


# ---- tau2 ----------------------------------------------------------------------------------


def test_every_tau2_tool_of_every_domain_is_read(tau2: ReadResult) -> None:
    raw = json.loads(TOOLS_DATA.read_text())
    assert tau2.kind == "tools" and not tau2.problems
    assert [tool.anchor.label for tool in tau2.tools] == [
        f"{domain} › tools › {tool['name']}"
        for domain, body in raw.items()
        for tool in body["tools"]
    ]
    domains = tool_domains(tau2.tools)
    assert list(domains) == ["airline", "retail", "telecom", "mock"]
    assert [tool.name for tool in domains["retail"]] == [t["name"] for t in raw["retail"]["tools"]]


def test_tau2_anchors_quote_the_description_at_their_path(tau2: ReadResult) -> None:
    raw = json.loads(TOOLS_DATA.read_text())
    for tool in tau2.tools:
        domain, _, name = tool.anchor.label.split(PATH_SEPARATOR)
        (entry,) = [t for t in raw[domain]["tools"] if t["name"] == name]
        assert tool.anchor.quote == entry["description"] == tool.description
        assert tool.anchor.material is not None and tool.anchor.material.id == "mat_tools"


def test_tau2_parameters_become_a_json_schema(tau2: ReadResult) -> None:
    retail = by_name(tool_domains(tau2.tools)["retail"])
    authenticate = retail["authenticate_user"]
    assert authenticate.parameters["type"] == "object"
    assert authenticate.parameter_names == ("email", "name", "zip_code")
    assert authenticate.required == ()
    cancel = retail["cancel_order"]
    assert cancel.required == ("order_id", "reason")
    assert cancel.parameters["properties"]["order_id"]["type"] == "string"
    assert cancel.returns.startswith("Updated order")
    assert all(tool.binding is None for tool in tau2.tools)
    for tool in tau2.tools:  # every description fits an AgentSpec tool entry
        Tool(
            name=tool.name,
            description=tool.description,
            effect=tool.effect,
            binding={"kind": "builtin", "builtin": "handoff"},
            parameters=dict(tool.parameters),
        )


def test_tau2_effects_and_their_reasons(tau2: ReadResult) -> None:
    retail = by_name(tool_domains(tau2.tools)["retail"])
    effects = {name: tool.effect for name, tool in retail.items()}
    assert effects == {
        "authenticate_user": "read",
        "get_user_profile": "read",
        "get_user_orders": "read",
        "get_order_details": "read",
        "search_products": "read",
        "get_product_details": "read",
        "cancel_order": "irreversible",
        "modify_order": "irreversible",
        "return_order": "irreversible",
        "exchange_order": "irreversible",
        "update_user_address": "write",
        "transfer_to_human_agents": "write",
    }
    assert retail["cancel_order"].effect_reason == (
        "tau2 type WRITE; 'cancel' in its name: cancelling cannot be undone → irreversible"
    )
    assert "Can only be called once per order" in retail["modify_order"].effect_reason
    assert retail["update_user_address"].effect_reason.startswith("tau2 type WRITE;")
    telecom = by_name(tool_domains(tau2.tools)["telecom"])
    assert telecom["process_payment"].effect == "irreversible"
    assert "'amount'" in telecom["process_payment"].effect_reason
    assert telecom["suspend_line"].effect == "write"
    airline = by_name(tool_domains(tau2.tools)["airline"])
    assert airline["calculate"].effect == "read" and "GENERIC" in airline["calculate"].effect_reason
    assert airline["book_reservation"].effect == "irreversible"  # it charges payment methods


def test_a_tools_list_without_types_infers_effects_from_names() -> None:
    tools = {
        "tools": [
            {"name": "getOrder", "description": "Look up an order.", "parameters": []},
            {"name": "Refund Payment", "description": "Refund an order.", "parameters": []},
            {"name": "add_note", "description": "Add a note to the ticket.", "parameters": []},
            {"name": "getOrder", "description": "Again.", "parameters": []},
        ]
    }
    result = read("my-tools.json", tools)
    assert [(t.name, t.effect) for t in result.tools] == [
        ("get_order", "read"),
        ("refund_payment", "irreversible"),
        ("add_note", "write"),
    ]
    assert result.tools[0].effect_reason.startswith("no type given; 'get'")
    assert [p.code for p in result.problems] == ["invalid_content"]
    assert "repeats the name" in result.problems[0].message
    assert set(tool_domains(result.tools)) == {"my-tools.json"}


def test_a_bare_list_of_typed_tools_is_accepted() -> None:
    result = read("tools.json", [{"name": "get_task", "type": "READ", "description": "Get."}])
    assert [(t.name, t.effect) for t in result.tools] == [("get_task", "read")]


# ---- OpenAPI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retail_openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(RetailStore(RETAIL_DB)).openapi()
    return document


def test_the_retail_openapi_document_gives_its_operations_with_declared_effects(
    retail_openapi: dict[str, Any],
) -> None:
    result = read("retail-openapi.json", retail_openapi)
    assert result.kind == "tools" and not result.problems
    tools = by_name(result.tools)
    assert tools["cancel_pending_order"].effect == "irreversible"
    assert tools["cancel_pending_order"].effect_reason == (
        "the document declares x-effect: irreversible"
    )
    assert tools["get_order_details"].effect == "read"
    assert "order_id" in tools["get_order_details"].required
    assert all(tool.binding is None for tool in result.tools)
    for tool in result.tools:
        title, operation = tool.anchor.label.split(PATH_SEPARATOR)
        method, path = operation.split(" ", 1)
        raw = retail_openapi["paths"][path][method.lower()]
        assert title == retail_openapi["info"]["title"]
        assert tool.anchor.quote == (raw.get("description") or raw.get("summary")).strip()


def test_openapi_yaml_reads_like_json(retail_openapi: dict[str, Any]) -> None:
    as_yaml = read(
        "retail.yaml", yaml.safe_dump(retail_openapi, sort_keys=False).encode(), "application/yaml"
    )
    as_json = read("retail.json", retail_openapi)
    assert [(t.name, t.effect) for t in as_yaml.tools] == [
        (t.name, t.effect) for t in as_json.tools
    ]


SHOP = {
    "openapi": "3.1.0",
    "info": {"title": "Shop", "version": "1"},
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
        "/orders/{order_id}/cancel": {
            "post": {
                "operationId": "cancelOrder",
                "description": "Cancel a pending order.",
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
        "/orders/{order_id}/note": {
            "put": {
                "operationId": "setOrderNote",
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
    },
}


def test_openapi_without_x_effect_infers_from_the_method_and_the_name() -> None:
    tools = by_name(read("shop.json", SHOP).tools)
    assert tools["get_order"].effect == "read"
    assert tools["get_order"].effect_reason == "HTTP GET without x-effect: it only reads"
    assert tools["cancel_order"].effect == "irreversible"
    assert tools["cancel_order"].effect_reason == (
        "HTTP POST without x-effect; 'cancel' in its name: cancelling cannot be undone"
        " → irreversible"
    )
    assert tools["set_order_note"].effect == "write"
    assert tools["set_order_note"].anchor.quote == "setOrderNote"


def test_a_broken_openapi_document_gives_the_parsers_message() -> None:
    broken = {"openapi": "3.0.3", "info": {"title": "x", "version": "1"}, "paths": {}}
    result = read("broken.json", broken)
    assert [p.code for p in result.problems] == ["invalid_content"]
    assert "no 'paths'" in result.problems[0].message


def test_openapi_2_in_the_openapi_field_is_unsupported() -> None:
    result = read("old.json", {"openapi": "2.0", "paths": {}})
    assert [p.code for p in result.problems] == ["unsupported"]


# ---- registered sources --------------------------------------------------------------------


def test_tools_of_registered_sources_are_bound_to_them() -> None:
    definition = ToolDefinition(
        operation="cancelOrder",
        description="Cancel a pending order.",
        input_schema={"type": "object", "properties": {"order_id": {"type": "string"}}},
        effect="irreversible",
    )
    openapi = tool_from_definition(definition, source_name="shop", source_kind="openapi", ref=None)
    assert openapi.name == "cancel_order" and openapi.effect == "irreversible"
    assert openapi.binding == OpenAPIBinding(source="shop", operation="cancelOrder")
    assert openapi.anchor.kind == "tool_description" and openapi.anchor.material is None
    assert openapi.anchor.label == "shop › cancelOrder"
    assert openapi.anchor.quote == "Cancel a pending order."
    assert "shop" in openapi.effect_reason and openapi.effect_reason.endswith("irreversible")
    mcp = tool_from_definition(definition, source_name="crm", source_kind="mcp", ref=None)
    assert mcp.binding == MCPBinding(source="crm", tool="cancelOrder")
    assert "MCP server" in mcp.effect_reason
    assert tool_domains([openapi, mcp]) == {"shop": (openapi,), "crm": (mcp,)}
