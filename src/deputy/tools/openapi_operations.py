"""OpenAPI operations as tools: one operation object → one `OpenAPIOperation` (its
`ToolDefinition` and where each argument goes on the wire). The rules are described in
`deputy.tools.openapi`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from deputy.domain.errors import ValidationFailed
from deputy.domain.spec import EffectTier
from deputy.tools.base import JsonObject, ToolDefinition
from deputy.tools.openapi_schema import RefResolver, SchemaConverter

ParameterLocation = Literal["path", "query", "header", "cookie"]
BodyMode = Literal["none", "merged", "property"]
BodyEncoding = Literal["json", "form"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOCATIONS: tuple[ParameterLocation, ...] = ("path", "query", "header", "cookie")
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_NOT_SNAKE = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


@dataclass(frozen=True)
class ParameterBinding:
    """Where one argument goes on the wire."""

    argument: str
    name: str
    location: ParameterLocation
    style: str
    """OpenAPI's serialisation style, or `json` for a parameter described by `content`."""
    explode: bool
    required: bool


@dataclass(frozen=True)
class OpenAPIOperation:
    tool: ToolDefinition
    method: str
    """Upper case."""
    path: str
    """The path template, `/orders/{order_id}`."""
    parameters: tuple[ParameterBinding, ...]
    body: BodyMode = "none"
    body_argument: str | None = None
    """The argument holding the whole body (`body` mode)."""
    body_encoding: BodyEncoding = "json"
    body_content_type: str | None = None
    body_required: bool = False


@dataclass(frozen=True)
class SkippedOperation:
    method: str
    path: str
    reason: str


def derived_operation_name(method: str, path: str) -> str:
    """`GET /orders/{order_id}/items` → `get_orders_order_id_items`."""
    slug = _NOT_SNAKE.sub("_", _CAMEL.sub("_", path).lower()).strip("_")
    return f"{method.lower()}_{slug}" if slug else method.lower()


class OperationBuilder:
    def __init__(self, resolver: RefResolver, schemas: SchemaConverter) -> None:
        self.resolver = resolver
        self.schemas = schemas

    def build(
        self, path: str, method: str, item: Mapping[str, Any], names: set[str], where: str
    ) -> OpenAPIOperation | SkippedOperation:
        operation = item[method]
        if not isinstance(operation, Mapping):
            raise ValidationFailed(f"{where}: an operation must be an object")
        name = operation.get("operationId")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValidationFailed(f"{where}: operationId must be a non-empty string")
            if name in names:
                raise ValidationFailed(f"{where}: duplicate operationId {name!r}")
        else:
            base = derived_operation_name(method, path)
            name, n = base, 2
            while name in names:
                name, n = f"{base}_{n}", n + 1
        verb = method.upper()
        properties: JsonObject = {}
        required: list[str] = []
        bindings = self._parameters(path, item, operation, where, properties, required)
        body = self._body(verb, path, operation, where, properties, required)
        if isinstance(body, SkippedOperation):
            return body
        mode, argument, encoding, content_type, body_required, additional = body
        schema: JsonObject = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = additional
        tool = ToolDefinition(
            operation=name,
            description=_description(operation, verb, path),
            input_schema=schema,
            effect=_effect(operation, verb, where),
        )
        return OpenAPIOperation(
            tool=tool,
            method=verb,
            path=path,
            parameters=tuple(bindings),
            body=mode,
            body_argument=argument,
            body_encoding=encoding,
            body_content_type=content_type,
            body_required=body_required,
        )

    def _parameters(
        self,
        path: str,
        item: Mapping[str, Any],
        operation: Mapping[str, Any],
        where: str,
        properties: JsonObject,
        required: list[str],
    ) -> list[ParameterBinding]:
        merged: dict[tuple[ParameterLocation, str], tuple[Mapping[str, Any], str]] = {}
        item_where = where.rsplit(".", 1)[0]
        for owner, owner_where in ((item, item_where), (operation, where)):
            raw = owner.get("parameters", [])
            if not isinstance(raw, list):
                raise ValidationFailed(f"{owner_where}.parameters: must be a list")
            for index, entry in enumerate(raw):
                at = f"{owner_where}.parameters[{index}]"
                parameter = self.resolver.follow(entry, at)
                if not isinstance(parameter, Mapping):
                    raise ValidationFailed(f"{at}: a parameter must be an object")
                name, location = parameter.get("name"), parameter.get("in")
                if not isinstance(name, str) or not name:
                    raise ValidationFailed(f"{at}: a parameter needs a name")
                if location not in _LOCATIONS:
                    raise ValidationFailed(
                        f"{at}: parameter {name!r} has invalid 'in' {location!r}"
                    )
                # An operation-level parameter overrides the path item's one of the same name.
                merged[(_LOCATIONS[_LOCATIONS.index(location)], name)] = (parameter, at)
        bindings: list[ParameterBinding] = []
        ordered = sorted(merged.items(), key=lambda entry: _LOCATIONS.index(entry[0][0]))
        for (location, name), (parameter, at) in ordered:
            if location == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            argument = name if name not in properties else f"{location}_{name}"
            is_required = location == "path" or parameter.get("required") is True
            properties[argument] = self._parameter_schema(parameter, location, at)
            if is_required:
                required.append(argument)
            style = parameter.get("style") or (
                "form" if location in ("query", "cookie") else "simple"
            )
            if "schema" not in parameter and isinstance(parameter.get("content"), Mapping):
                style = "json"  # a parameter described by `content` carries a JSON document
            explode = parameter.get("explode", style == "form")
            bindings.append(
                ParameterBinding(argument, name, location, str(style), explode is True, is_required)
            )
        declared = {binding.name for binding in bindings if binding.location == "path"}
        for name in _PLACEHOLDER.findall(path):
            if name not in declared:  # an undeclared path parameter: a required string
                argument = name if name not in properties else f"path_{name}"
                properties[argument] = {"type": "string"}
                required.append(argument)
                bindings.append(ParameterBinding(argument, name, "path", "simple", False, True))
                declared.add(name)
        return bindings

    def _parameter_schema(self, parameter: Mapping[str, Any], location: str, at: str) -> JsonObject:
        raw = parameter.get("schema")
        if raw is None and isinstance(parameter.get("content"), Mapping):
            for media in parameter["content"].values():
                if isinstance(media, Mapping) and "schema" in media:
                    raw = media["schema"]
                    break
        if raw is None:
            schema: JsonObject = {"type": "string"} if location != "query" else {}
        else:
            schema = dict(self.schemas.convert(raw, f"{at}.schema", request=True))
        description = parameter.get("description")
        if isinstance(description, str) and description and "description" not in schema:
            schema["description"] = description
        if parameter.get("deprecated") is True:
            schema["deprecated"] = True
        return schema

    def _body(
        self,
        verb: str,
        path: str,
        operation: Mapping[str, Any],
        where: str,
        properties: JsonObject,
        required: list[str],
    ) -> tuple[BodyMode, str | None, BodyEncoding, str | None, bool, Any] | SkippedOperation:
        raw = operation.get("requestBody")
        if raw is None:
            return "none", None, "json", None, False, False
        at = f"{where}.requestBody"
        request_body = self.resolver.follow(raw, at)
        if not isinstance(request_body, Mapping) or not isinstance(
            request_body.get("content"), Mapping
        ):
            raise ValidationFailed(f"{at}: a request body needs a 'content' object")
        content: Mapping[str, Any] = request_body["content"]
        body_required = request_body.get("required") is True
        chosen = _choose_media_type(content)
        if chosen is None:
            if body_required:
                return SkippedOperation(
                    verb, path, f"request body media types {sorted(content)} are not supported"
                )
            return "none", None, "json", None, False, False
        content_type, encoding = chosen
        media = content[content_type]
        raw_schema = media.get("schema", {}) if isinstance(media, Mapping) else {}
        schema = self.schemas.convert(
            raw_schema, f"{at}.content.{content_type}.schema", request=True
        )
        body_properties = schema.get("properties")
        mergeable = (
            isinstance(body_properties, dict)
            and schema.get("type", "object") == "object"
            and not {"allOf", "anyOf", "oneOf", "not", "if", "$ref"} & set(schema)
            and not set(body_properties) & set(properties)
            and (encoding == "json" or schema.get("additionalProperties") is False)
        )
        if mergeable:
            assert isinstance(body_properties, dict)
            properties.update(body_properties)
            body_required_names = schema.get("required", [])
            if body_required and isinstance(body_required_names, list):
                required.extend(n for n in body_required_names if n not in required)
            return (
                "merged",
                None,
                encoding,
                content_type,
                body_required,
                schema.get("additionalProperties", True),
            )
        argument = "body" if "body" not in properties else "request_body"
        description = request_body.get("description")
        if isinstance(description, str) and description and "description" not in schema:
            schema = {**schema, "description": description}
        properties[argument] = schema
        if body_required:
            required.append(argument)
        return "property", argument, encoding, content_type, body_required, False


def _choose_media_type(content: Mapping[str, Any]) -> tuple[str, BodyEncoding] | None:
    types = [str(t) for t in content]
    for candidate in types:
        if candidate.split(";")[0].strip().lower() == "application/json":
            return candidate, "json"
    for candidate in types:
        lowered = candidate.lower()
        if "json" in lowered or lowered.split(";")[0].strip() in ("*/*", "application/*"):
            return candidate, "json"
    for candidate in types:
        if candidate.lower().startswith("application/x-www-form-urlencoded"):
            return candidate, "form"
    return None


def _description(operation: Mapping[str, Any], verb: str, path: str) -> str:
    summary = str(operation.get("summary") or "").strip()
    detail = str(operation.get("description") or "").strip()
    if summary and detail and not detail.startswith(summary):
        text = f"{summary}\n\n{detail}"
    else:
        text = detail or summary or f"{verb} {path}"
    if operation.get("deprecated") is True:
        text += "\n\n(Deprecated.)"
    return text


def _effect(operation: Mapping[str, Any], verb: str, where: str) -> EffectTier:
    declared = operation.get("x-effect")
    if declared is not None:
        if declared not in get_args(EffectTier):
            raise ValidationFailed(
                f"{where}: x-effect must be read, write or irreversible, not {declared!r}"
            )
        effect: EffectTier = declared
        return effect
    return "read" if verb in READ_METHODS else "write"
