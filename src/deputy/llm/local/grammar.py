"""JSON Schema → constrained-decoding grammar for llama.cpp's LLGuidance sampler.

LLGuidance implements a subset of JSON Schema and, inside llama.cpp, a schema it cannot compile
only logs an error and the model then generates *unconstrained* text. So we check the schema here
first and refuse, with the JSON path of the problem, anything that would not be enforced:
keywords outside LLGuidance's subset (`not`, `if`, `uniqueItems`, …), bad types, `$ref`s that do
not resolve inside the schema. Keywords that JSON Schema itself treats as annotations (unknown
keys, `format`s LLGuidance does not know) are dropped from the copy we compile, as a validator
would ignore them. The grammar asks for compact JSON (no free whitespace): fewer tokens, and
small models cannot drift into endless newlines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.local.backend import json_schema_to_grammar

TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
# LLGuidance's implemented keywords (parser/src/json/schema.rs, IMPLEMENTED).
IMPLEMENTED = frozenset(
    {
        "anyOf", "oneOf", "allOf", "$ref", "const", "enum", "type",
        "items", "additionalItems", "prefixItems", "minItems", "maxItems",
        "properties", "additionalProperties", "required",
        "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    }
)  # fmt: skip
# Its metadata and annotation keywords: accepted and ignored.
ANNOTATIONS = frozenset(
    {
        "$anchor", "$defs", "definitions", "$schema", "$id", "id", "$comment", "title",
        "description", "default", "readOnly", "writeOnly", "examples", "contentMediaType",
        "contentEncoding",
    }
)  # fmt: skip
# Validation keywords it cannot enforce: refusing beats silently not enforcing them.
UNSUPPORTED = frozenset(
    {
        "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
        "patternProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
        "minProperties", "maxProperties", "contains", "minContains", "maxContains",
        "uniqueItems", "$dynamicRef", "$recursiveRef",
    }
)  # fmt: skip
FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("additionalProperties", "additionalItems")


def grammar_for_schema(schema: Mapping[str, Any]) -> str:
    """The LLGuidance grammar that constrains output to `schema`; ModelOutputInvalid when the
    schema cannot be compiled faithfully."""
    try:
        text = json.dumps(schema)  # key order matters: the decoder keeps properties in order
    except (TypeError, ValueError) as exc:
        raise ModelOutputInvalid(f"the response schema is not JSON: {exc}") from exc
    return _compiled(text)


@lru_cache(maxsize=256)
def _compiled(schema_text: str) -> str:
    schema = json.loads(schema_text)
    if not isinstance(schema, dict):
        raise ModelOutputInvalid("the response schema must be a JSON object")
    cleaned = _clean(schema, schema, "#")
    assert isinstance(cleaned, dict)
    guidance = dict(cleaned.get("x-guidance") or {})
    guidance.setdefault("whitespace_flexible", False)
    cleaned["x-guidance"] = guidance
    return json_schema_to_grammar(cleaned)


def _refuse(path: str, why: str) -> ModelOutputInvalid:
    return ModelOutputInvalid(
        f"cannot compile the response schema for constrained decoding: {why} at {path}",
        details={"path": path},
    )


def _clean(node: Any, root: dict[str, Any], path: str) -> Any:
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise _refuse(path, "a schema must be an object or a boolean")
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{path}/{key}"
        if key in UNSUPPORTED:
            raise _refuse(here, f"keyword {key!r} is not supported by the local model's decoder")
        if key == "x-guidance" and path == "#":
            out[key] = value
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise _refuse(here, f"{key!r} must be an object")
            out[key] = {name: _clean(sub, root, f"{here}/{name}") for name, sub in value.items()}
        elif key in _SCHEMA_LISTS or (key == "items" and isinstance(value, list)):
            if not isinstance(value, list) or (not value and key != "prefixItems"):
                raise _refuse(here, f"{key!r} must be a non-empty array of schemas")
            out[key] = [_clean(sub, root, f"{here}/{i}") for i, sub in enumerate(value)]
        elif key in _SCHEMA_VALUES or key == "items":
            out[key] = _clean(value, root, here)
        elif key == "type":
            _check_type(value, here)
            out[key] = value
        elif key == "$ref":
            _check_ref(value, root, here)
            out[key] = value
        elif key == "format":
            if value in FORMATS:
                out[key] = value  # enforced; other formats are annotations and dropped
        elif key in IMPLEMENTED or key in ANNOTATIONS:
            out[key] = value
        # anything else is an unknown keyword: an annotation in JSON Schema, dropped
    return out


def _check_type(value: Any, path: str) -> None:
    kinds = value if isinstance(value, list) else [value]
    for kind in kinds:
        if kind not in TYPES:
            raise _refuse(path, f"unknown type {kind!r}")


def _check_ref(ref: Any, root: dict[str, Any], path: str) -> None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise _refuse(path, f"only local references ('#/...') are supported, not {ref!r}")
    target: Any = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise _refuse(path, f"reference {ref!r} does not resolve")
