"""Schemas out of an OpenAPI document: local `$ref` resolution with cycle detection, and the
translation of OpenAPI 3.0 schema objects to JSON Schema 2020-12 (what OpenAPI 3.1 uses and what
tool arguments are validated against).

Every `$ref` is inlined, so a tool's input schema is self-contained: a model, a grammar compiler or
a validator never needs the document. A schema that refers to itself (a tree, a linked list)
cannot be inlined; reaching one raises `ValidationFailed` naming the cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from deputy.domain.errors import ValidationFailed

JsonObject = dict[str, Any]

MAX_SCHEMA_NODES = 20_000
"""An inlined schema larger than this is refused: a few refs used many times can expand into a
schema no model context (and no reviewer) can hold."""

_OPENAPI_ONLY = frozenset({"nullable", "discriminator", "xml", "externalDocs", "example"})
_ANNOTATIONS = frozenset(
    {"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
)


def _pointer_part(part: str) -> str:
    return unquote(part).replace("~1", "/").replace("~0", "~")


class RefResolver:
    """Resolves local references (`#/components/...`) against one document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def lookup(self, ref: Any, where: str) -> Any:
        """The node `ref` points at (one hop)."""
        if not isinstance(ref, str):
            raise ValidationFailed(f"{where}: $ref must be a string, got {type(ref).__name__}")
        if not ref.startswith("#"):
            raise ValidationFailed(
                f"{where}: only local $refs ('#/...') are supported, not {ref!r}",
                details={"ref": ref, "at": where},
            )
        node: Any = self.document
        if ref in ("#", "#/"):
            return node
        if not ref.startswith("#/"):
            raise ValidationFailed(f"{where}: malformed $ref {ref!r}", details={"ref": ref})
        for raw in ref[2:].split("/"):
            part = _pointer_part(raw)
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ValidationFailed(
                    f"{where}: unresolvable $ref {ref!r} (no {part!r})",
                    details={"ref": ref, "at": where},
                )
        return node

    def follow(self, node: Any, where: str) -> Any:
        """`node`, or what its chain of `$ref`s finally points at (parameters, request bodies and
        path items are referenced whole; siblings of their `$ref` are ignored)."""
        seen: list[str] = []
        while isinstance(node, Mapping) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValidationFailed(
                    f"{where}: cyclic $ref {' → '.join([*seen, ref])}",
                    details={"cycle": [*seen, ref], "at": where},
                )
            seen.append(ref)
            node = self.lookup(ref, where)
        return node


class SchemaConverter:
    """Inlines `$ref`s and converts OpenAPI 3.0 schema objects to JSON Schema 2020-12."""

    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        self._cache: dict[tuple[str, bool], tuple[Any, int]] = {}

    def convert(self, schema: Any, where: str, *, request: bool) -> JsonObject:
        """A self-contained JSON Schema 2020-12 object for `schema`. `request` drops readOnly
        properties (what the server sets, never the caller)."""
        try:
            converted, size = self._convert(schema, where, request, ())
        except ValidationFailed as exc:
            if exc.message.startswith(where):
                raise
            # The problem lies in a referenced component: say which operation reached it too.
            raise ValidationFailed(
                f"{where} → {exc.message}", details={**exc.details, "via": where}
            ) from None
        if size > MAX_SCHEMA_NODES:
            raise ValidationFailed(
                f"{where}: the schema expands to {size} nodes once its $refs are inlined "
                f"(limit {MAX_SCHEMA_NODES})",
                details={"at": where},
            )
        if isinstance(converted, bool):
            return {} if converted else {"not": {}}
        result: JsonObject = converted
        return result

    def _convert(
        self, schema: Any, where: str, request: bool, chain: tuple[str, ...]
    ) -> tuple[Any, int]:
        if isinstance(schema, bool):
            return schema, 1
        if not isinstance(schema, Mapping):
            raise ValidationFailed(
                f"{where}: a schema must be an object, got {type(schema).__name__}",
                details={"at": where},
            )
        if "$ref" in schema:
            return self._convert_ref(schema, where, request, chain)
        out: JsonObject = {}
        size = 1
        for key, value in schema.items():
            if key.startswith("x-") or key in _OPENAPI_ONLY:
                continue
            if key in _SCHEMA_MAPS and isinstance(value, Mapping):
                converted: JsonObject = {}
                for name, item in value.items():
                    converted[name], item_size = self._convert(
                        item, f"{where}.{key}.{name}", request, chain
                    )
                    size += item_size
                out[key] = converted
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                items = []
                for index, item in enumerate(value):
                    converted_item, item_size = self._convert(
                        item, f"{where}.{key}[{index}]", request, chain
                    )
                    items.append(converted_item)
                    size += item_size
                out[key] = items
            elif key in _SCHEMA_VALUES and isinstance(value, Mapping | bool):
                out[key], item_size = self._convert(value, f"{where}.{key}", request, chain)
                size += item_size
            else:
                out[key] = value
                size += 1
        if "example" in schema and "examples" not in schema:
            out["examples"] = [schema["example"]]
        _exclusive_bounds(out)
        if request:
            _drop_read_only(out)
        if schema.get("nullable") is True:
            out = _nullable(out)
        return out, size

    def _convert_ref(
        self, schema: Mapping[str, Any], where: str, request: bool, chain: tuple[str, ...]
    ) -> tuple[Any, int]:
        ref = schema["$ref"]
        if ref in chain:
            cycle = " → ".join([*chain[chain.index(ref) :], ref])
            raise ValidationFailed(
                f"{where}: recursive schema ({cycle}); recursive schemas cannot be used as "
                "tool arguments",
                details={"cycle": [*chain[chain.index(ref) :], ref], "at": where},
            )
        key = (str(ref), request)
        if key in self._cache:
            resolved, size = self._cache[key]
        else:
            target = self.resolver.lookup(ref, where)
            resolved, size = self._convert(target, str(ref), request, (*chain, str(ref)))
            self._cache[key] = (resolved, size)
        # OpenAPI 3.0 says a $ref's siblings are ignored, but documents routinely put a
        # description or `nullable: true` next to one; both versions honour them here.
        siblings = {k: v for k, v in schema.items() if k not in ("$ref", "nullable")}
        nullable = schema.get("nullable") is True
        if not siblings and not nullable:
            return resolved, size
        extra, extra_size = self._convert(siblings, where, request, chain)
        combined: Any
        if isinstance(resolved, Mapping) and set(extra) <= _ANNOTATIONS:
            combined = {**resolved, **extra}
        else:
            combined = {**extra, "allOf": [resolved]}
        if nullable:
            combined = _nullable(combined if isinstance(combined, dict) else {})
        return combined, size + extra_size


def _exclusive_bounds(schema: JsonObject) -> None:
    """OpenAPI 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum` become 2020-12 numbers."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = schema.get(exclusive)
        if isinstance(flag, bool):
            del schema[exclusive]
            if flag and bound in schema:
                schema[exclusive] = schema.pop(bound)


def _drop_read_only(schema: JsonObject) -> None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    read_only = [
        name
        for name, item in properties.items()
        if isinstance(item, Mapping) and item.get("readOnly") is True
    ]
    if not read_only:
        return
    schema["properties"] = {k: v for k, v in properties.items() if k not in read_only}
    required = schema.get("required")
    if isinstance(required, list):
        schema["required"] = [name for name in required if name not in read_only]
        if not schema["required"]:
            del schema["required"]


def _nullable(schema: JsonObject) -> JsonObject:
    """OpenAPI 3.0 `nullable: true`, said the 2020-12 way."""
    kind = schema.get("type")
    if isinstance(kind, str):
        result = {**schema, "type": [kind, "null"]}
        enum = schema.get("enum")
        if isinstance(enum, list) and None not in enum:
            result["enum"] = [*enum, None]
        return result
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    annotations = {k: v for k, v in schema.items() if k in _ANNOTATIONS}
    rest = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    return {**annotations, "anyOf": [rest, {"type": "null"}]}
