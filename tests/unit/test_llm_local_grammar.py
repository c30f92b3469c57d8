"""Response schemas become LLGuidance grammars, or a clear refusal: inside llama.cpp a schema the
decoder cannot compile would otherwise leave the model generating unconstrained text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.local.grammar import grammar_for_schema

pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")


def compiled(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema embedded in the grammar, as the decoder will see it."""
    grammar = grammar_for_schema(schema)
    assert grammar.startswith("%llguidance {}\nstart: %json ")
    embedded: dict[str, Any] = json.loads(grammar.split("%json ", 1)[1])
    return embedded


ACTIONS: dict[str, Any] = {
    "$defs": {"order_id": {"type": "string", "pattern": "^#W[0-9]{7}$"}},
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "action": {"const": "reply"},
                "text": {"type": "string", "maxLength": 400},
            },
            "required": ["action", "text"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "action": {"const": "get_order_details"},
                "args": {
                    "type": "object",
                    "properties": {"order_id": {"$ref": "#/$defs/order_id"}},
                    "required": ["order_id"],
                },
            },
            "required": ["action", "args"],
        },
    ],
}


def test_supported_schemas_compile_to_compact_json() -> None:
    embedded = compiled(ACTIONS)
    assert embedded["x-guidance"] == {"whitespace_flexible": False}
    assert embedded["oneOf"] == ACTIONS["oneOf"]


def test_property_order_is_kept() -> None:
    schema = {"type": "object", "properties": {"zeta": {}, "alpha": {}, "mid": {}}}
    assert list(compiled(schema)["properties"]) == ["zeta", "alpha", "mid"]


def test_annotations_and_unknown_formats_are_dropped_not_refused() -> None:
    embedded = compiled(
        {
            "type": "object",
            "description": "kept: an annotation llguidance knows",
            "x-openapi-origin": "dropped: unknown keywords are annotations",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "count": {"type": "integer", "format": "int32", "example": 3},
                "not": {"type": "string"},  # a property *named* "not" is fine
            },
        }
    )
    assert "x-openapi-origin" not in embedded
    assert embedded["description"].startswith("kept")
    assert embedded["properties"]["email"] == {"type": "string", "format": "email"}
    assert embedded["properties"]["count"] == {"type": "integer"}
    assert embedded["properties"]["not"] == {"type": "string"}


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (
            {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
            "#/properties/a/not",
        ),
        ({"type": "array", "uniqueItems": True}, "#/uniqueItems"),
        ({"if": {"type": "string"}, "then": {"minLength": 1}}, "#/if"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "#/patternProperties"),
    ],
)
def test_keywords_the_decoder_cannot_enforce_are_refused(
    schema: dict[str, Any], where: str
) -> None:
    with pytest.raises(ModelOutputInvalid, match="cannot compile the response schema") as caught:
        grammar_for_schema(schema)
    assert caught.value.details == {"path": where}


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({"type": "frob"}, "unknown type 'frob'"),
        ({"type": ["string", "date"]}, "unknown type 'date'"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"$ref": "https://example.com/schema.json"}, "only local references"),
        ({"anyOf": []}, "non-empty array"),
        ({"properties": {"a": 3}}, "object or a boolean"),
    ],
)
def test_malformed_schemas_are_refused_with_a_reason(schema: dict[str, Any], why: str) -> None:
    with pytest.raises(ModelOutputInvalid, match=why):
        grammar_for_schema(schema)


def test_a_schema_must_be_a_json_object() -> None:
    with pytest.raises(ModelOutputInvalid, match="JSON object"):
        grammar_for_schema([{"type": "string"}])  # type: ignore[arg-type]
    with pytest.raises(ModelOutputInvalid, match="not JSON"):
        grammar_for_schema({"type": "string", "default": object()})
