"""OpenAPI 3.0/3.1 import: operations → tools with JSON Schema 2020-12 arguments, and precise
errors for bad documents. The requests built from them: test_tools_openapi_client.py."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest
import yaml

from deputy.domain.errors import ValidationFailed
from deputy.tools.openapi import OpenAPIDocument, parse_openapi
from deputy.tools.openapi_schema import MAX_SCHEMA_NODES

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

SHOP_30 = """
openapi: 3.0.3
info: {title: Shop, version: "2.1", x-idempotency: {supported: true, header: X-Request-Key}}
servers: [{url: "https://shop.example.test/api"}]
paths:
  /orders/{order_id}:
    parameters:
      - $ref: "#/components/parameters/OrderId"
    get:
      operationId: getOrder
      summary: Get an order
      description: Returns one order with its lines.
      parameters:
        - {name: expand, in: query, schema: {type: array, items: {type: string}}}
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: Accept, in: header, schema: {type: string}}
      responses: {"200": {description: ok}}
    delete:
      x-effect: irreversible
      summary: Cancel an order
      responses: {"204": {description: gone}}
  /orders/{order_id}/refunds:
    post:
      operationId: createRefund
      parameters:
        - $ref: "#/components/parameters/OrderId"
      requestBody:
        $ref: "#/components/requestBodies/Refund"
      responses: {"201": {description: created}}
  /orders/{order_id}/notes:
    put:
      operationId: putNotes
      parameters:
        - {name: order_id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: array, items: {type: string}}
      responses: {"200": {description: ok}}
  /search:
    get:
      parameters:
        - {name: filter, in: query, style: deepObject, explode: true,
           schema: {type: object, properties: {status: {type: string}}}}
        - {name: ids, in: query, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: session, in: cookie, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100,
           exclusiveMaximum: true}}
      responses: {"200": {description: ok}}
  /customers/{id}:
    patch:
      operationId: patchCustomer
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      requestBody:
        content:
          application/merge-patch+json:
            schema: {$ref: "#/components/schemas/Customer"}
      responses: {"200": {description: ok}}
  /uploads:
    post:
      operationId: upload
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema: {type: object}
      responses: {"200": {description: ok}}
  /login:
    post:
      operationId: login
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              additionalProperties: false
              properties: {user: {type: string}, remember: {type: boolean}}
      responses: {"200": {description: ok}}
components:
  parameters:
    OrderId:
      {name: order_id, in: path, required: true, description: The order, schema: {type: string}}
  requestBodies:
    Refund:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Refund"}
  schemas:
    Money:
      type: number
      minimum: 0
      exclusiveMinimum: true
    Refund:
      type: object
      required: [amount, id]
      properties:
        id: {type: string, readOnly: true}
        amount: {$ref: "#/components/schemas/Money"}
        reason: {type: string, nullable: true, enum: [damaged, late]}
        note: {allOf: [{$ref: "#/components/schemas/Note"}], nullable: true}
        example_field: {type: string, example: hello}
    Note: {type: string, maxLength: 200}
    Customer:
      type: object
      properties:
        id: {type: string}
        email: {type: string, format: email, x-internal: true}
"""


def shop() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SHOP_30)
    return loaded


def assert_valid_2020_12(schema: dict[str, Any]) -> None:
    jsonschema_rs.meta.validate({"$schema": DRAFT_2020_12, **schema})
    assert "nullable" not in json.dumps(schema) and "$ref" not in json.dumps(schema)


def validator(schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def document() -> OpenAPIDocument:
    return parse_openapi(shop())


def test_every_operation_becomes_a_tool_with_a_valid_schema(document: OpenAPIDocument) -> None:
    names = [tool.operation for tool in document.tools()]
    assert names == [
        "getOrder",
        "delete_orders_order_id",
        "createRefund",
        "putNotes",
        "get_search",
        "patchCustomer",
        "login",
    ]
    for tool in document.tools():
        assert tool.input_schema["type"] == "object"
        assert_valid_2020_12(tool.input_schema)
    assert [(s.method, s.path) for s in document.skipped] == [("POST", "/uploads")]
    assert "multipart/form-data" in document.skipped[0].reason
    assert document.server_urls == ("https://shop.example.test/api",)
    assert (document.title, document.version, document.openapi_version) == ("Shop", "2.1", "3.0.3")
    assert document.honours_idempotency_keys and document.idempotency_header == "X-Request-Key"


def test_effects_come_from_the_method_or_x_effect(document: OpenAPIDocument) -> None:
    effects = {tool.operation: tool.effect for tool in document.tools()}
    assert effects["getOrder"] == "read"
    assert effects["get_search"] == "read"
    assert effects["delete_orders_order_id"] == "irreversible"
    assert effects["createRefund"] == "write"
    assert effects["patchCustomer"] == "write"


def test_parameters_are_merged_by_name(document: OpenAPIDocument) -> None:
    tool = document.operation("getOrder").tool
    assert tool.description == "Get an order\n\nReturns one order with its lines."
    schema = tool.input_schema
    assert set(schema["properties"]) == {"order_id", "expand", "X-Trace"}  # Accept is ignored
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["order_id"] == {"type": "string", "description": "The order"}
    assert schema["additionalProperties"] is False
    assert not validator(schema).is_valid({"order_id": "A1", "unknown": 1})


def test_an_object_body_is_merged_at_the_top_level(document: OpenAPIDocument) -> None:
    operation = document.operation("createRefund")
    schema = operation.tool.input_schema
    assert operation.body == "merged"
    assert set(schema["properties"]) == {"order_id", "amount", "reason", "note", "example_field"}
    assert schema["required"] == ["order_id", "amount"], "readOnly id is not an argument"
    assert schema["properties"]["amount"] == {"type": "number", "exclusiveMinimum": 0}
    assert schema["properties"]["reason"]["type"] == ["string", "null"]
    assert schema["properties"]["example_field"]["examples"] == ["hello"]
    check = validator(schema)
    assert check.is_valid({"order_id": "A", "amount": 5, "reason": None, "note": None})
    assert not check.is_valid({"order_id": "A", "amount": 0})
    assert not check.is_valid({"order_id": "A", "amount": 5, "reason": "other"})
    assert not check.is_valid({"order_id": "A", "amount": 5, "note": "x" * 201})


def test_a_non_object_body_is_the_body_argument(document: OpenAPIDocument) -> None:
    operation = document.operation("putNotes")
    assert operation.body == "property" and operation.body_argument == "body"
    schema = operation.tool.input_schema
    assert schema["required"] == ["order_id", "body"]
    assert schema["properties"]["body"] == {"type": "array", "items": {"type": "string"}}


def test_colliding_body_properties_stay_under_body(document: OpenAPIDocument) -> None:
    operation = document.operation("patchCustomer")
    assert operation.body == "property"
    assert operation.body_content_type == "application/merge-patch+json"
    body = operation.tool.input_schema["properties"]["body"]
    assert body["properties"]["email"] == {"type": "string", "format": "email"}  # x- dropped
    assert operation.tool.input_schema["required"] == ["id"]


def test_query_styles_and_exclusive_maximum(document: OpenAPIDocument) -> None:
    schema = document.operation("get_search").tool.input_schema
    assert schema["properties"]["limit"] == {
        "type": "integer",
        "minimum": 1,
        "exclusiveMaximum": 100,
    }
    assert "session" in schema["properties"]


def test_a_3_1_document_with_ref_siblings_and_defs() -> None:
    raw = {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {
            "/items": {
                "post": {
                    "operationId": "addItem",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["sku"],
                                    "properties": {
                                        "sku": {
                                            "$ref": "#/components/schemas/Sku",
                                            "description": "d",
                                        },
                                        "qty": {"$ref": "#/components/schemas/Qty", "maximum": 5},
                                        "tag": {"type": ["string", "null"]},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {},
                }
            }
        },
        "components": {
            "schemas": {
                "Sku": {"type": "string", "pattern": "^[A-Z]+$"},
                "Qty": {"type": "integer", "minimum": 1},
            }
        },
    }
    tool = parse_openapi(raw).operation("addItem").tool
    assert_valid_2020_12(tool.input_schema)
    properties = tool.input_schema["properties"]
    assert properties["sku"] == {"type": "string", "pattern": "^[A-Z]+$", "description": "d"}
    assert properties["qty"] == {"maximum": 5, "allOf": [{"type": "integer", "minimum": 1}]}
    check = validator(tool.input_schema)
    assert check.is_valid({"sku": "AB", "qty": 5, "tag": None})
    assert not check.is_valid({"sku": "AB", "qty": 6})
    assert not check.is_valid({"sku": "ab"})


def test_derived_names_are_unique() -> None:
    raw = {
        "openapi": "3.0.0",
        "paths": {
            "/a-b": {"get": {"responses": {}}},
            "/a_b": {"get": {"responses": {}}},
            "/": {"get": {"responses": {}}},
            "/userProfiles/{userId}": {"get": {"responses": {}}},
        },
    }
    document = parse_openapi(raw)
    names = [tool.operation for tool in document.tools()]
    assert names == ["get_a_b", "get_a_b_2", "get", "get_user_profiles_user_id"]
    # A placeholder the document forgot to declare is still a required path argument.
    profile = document.operation("get_user_profiles_user_id")
    assert profile.tool.input_schema["required"] == ["userId"]
    assert profile.parameters[0].location == "path"


BAD_DOCUMENTS: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda d: ["not", "a", "mapping"], "must be a JSON/YAML object"),
    (lambda d: {"swagger": "2.0", "paths": {}}, "Swagger 2.0 documents are not supported"),
    (lambda d: {k: v for k, v in d.items() if k != "openapi"}, "'openapi' field is missing"),
    (lambda d: {**d, "openapi": "2.0.1"}, "unsupported OpenAPI version '2.0.1'"),
    (lambda d: {**d, "openapi": 3.0}, "unsupported OpenAPI version 3.0"),
    (lambda d: {k: v for k, v in d.items() if k != "paths"}, "has no 'paths'"),
    (lambda d: {**d, "paths": {"orders": {}}}, "'orders' must start with '/'"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_DOCUMENTS)
def test_bad_documents_are_refused_precisely(
    mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_openapi(mutate(shop()))
    assert message in caught.value.message


def _with(path: list[str], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(shop())
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["components", "schemas", "Money"],
            {"$ref": "#/components/schemas/Nope"},
            "paths./orders/{order_id}/refunds.post.requestBody",
        ),
        (
            ["components", "schemas", "Money"],
            {"$ref": "#/components/schemas/Nope"},
            "unresolvable $ref '#/components/schemas/Nope'",
        ),
        (
            ["components", "schemas", "Note"],
            {"$ref": "other.yaml#/Note"},
            "only local $refs",
        ),
        (
            ["components", "schemas", "Note"],
            {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Refund"}}},
            "recursive schema (#/components/schemas/Refund → #/components/schemas/Note → "
            "#/components/schemas/Refund)",
        ),
        (
            ["components", "parameters", "OrderId"],
            {"$ref": "#/components/parameters/OrderId"},
            "cyclic $ref",
        ),
        (
            ["paths", "/search", "get", "operationId"],
            "getOrder",
            "duplicate operationId 'getOrder'",
        ),
        (["paths", "/search", "get", "x-effect"], "delete", "x-effect must be read, write or"),
        (["paths", "/search", "get", "parameters"], [{"in": "query"}], "a parameter needs a name"),
        (
            ["paths", "/search", "get", "parameters"],
            [{"name": "q", "in": "body"}],
            "parameter 'q' has invalid 'in' 'body'",
        ),
        (["paths", "/login", "post", "requestBody"], {"required": True}, "needs a 'content'"),
        (["info", "x-idempotency"], "yes", "x-idempotency must be"),
    ],
)
def test_broken_operations_are_refused_precisely(path: list[str], value: Any, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_openapi(_with(path, value))
    assert message in caught.value.message


def test_schemas_that_explode_when_inlined_are_refused() -> None:
    schemas: dict[str, Any] = {"L0": {"type": "string"}}
    for level in range(1, 20):
        below = {"$ref": f"#/components/schemas/L{level - 1}"}
        schemas[f"L{level}"] = {"type": "object", "properties": {"a": below, "b": below}}
    raw = {
        "openapi": "3.1.0",
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/L19"}}
                        }
                    },
                    "responses": {},
                }
            }
        },
        "components": {"schemas": schemas},
    }
    with pytest.raises(ValidationFailed) as caught:
        parse_openapi(raw)
    assert f"(limit {MAX_SCHEMA_NODES})" in caught.value.message
