"""Turning a tool call's arguments into an HTTP request: parameter serialisation (OpenAPI's
`style`/`explode`, the common cases) and path templating, shared by the OpenAPI and webhook
clients."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deputy.domain.errors import ValidationFailed
from deputy.tools.httpcall import HTTPRequestSpec

if TYPE_CHECKING:
    from deputy.tools.openapi_operations import OpenAPIOperation

PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def scalar(value: Any) -> str:
    """A JSON scalar as it is written in a URL or header: booleans lower case, None empty,
    anything structured as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def simple(value: Any, explode: bool = False) -> str:
    """OpenAPI `simple` style (path and header parameters), not yet URL-encoded."""
    if isinstance(value, list | tuple):
        return ",".join(scalar(item) for item in value)
    if isinstance(value, Mapping):
        if explode:
            return ",".join(f"{k}={scalar(v)}" for k, v in value.items())
        return ",".join(f"{k},{scalar(v)}" for k, v in value.items())
    return scalar(value)


def query_pairs(name: str, value: Any, style: str, explode: bool) -> list[tuple[str, str]]:
    """OpenAPI query serialisation: form (exploded or not), spaceDelimited, pipeDelimited,
    deepObject."""
    if value is None:
        return []
    if style == "json":
        return [(name, _json(value))]
    if isinstance(value, list | tuple):
        if explode and style == "form":
            return [(name, scalar(item)) for item in value]
        separator = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(style, ",")
        return [(name, separator.join(scalar(item) for item in value))]
    if isinstance(value, Mapping):
        if style == "deepObject":
            return [(f"{name}[{key}]", scalar(item)) for key, item in value.items()]
        if explode:
            return [(str(key), scalar(item)) for key, item in value.items()]
        return [(name, ",".join(f"{k},{scalar(v)}" for k, v in value.items()))]
    return [(name, scalar(value))]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fill_path(template: str, values: Mapping[str, str], where: str) -> str:
    """Substitute `{name}` placeholders with URL-encoded values (every reserved character is
    encoded, so a value can never add a path segment or a query)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ValidationFailed(
                f"{where}: missing argument {name!r} for the URL", details={"argument": name}
            )
        return quote(values[name], safe="")

    return PLACEHOLDER.sub(substitute, template)


def build_request(
    operation: OpenAPIOperation, base_url: str, arguments: Mapping[str, Any]
) -> HTTPRequestSpec:
    """The request for one call of `operation` with `arguments` (already validated against its
    input schema by the executor; a missing path argument still raises `ValidationFailed`)."""
    where = operation.tool.operation
    path_values: dict[str, str] = {}
    params: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    cookies: list[str] = []
    consumed: set[str] = set()
    for binding in operation.parameters:
        consumed.add(binding.argument)
        if binding.argument not in arguments:
            if binding.required:
                raise ValidationFailed(
                    f"{where}: missing required argument {binding.argument!r}",
                    details={"argument": binding.argument},
                )
            continue
        value = arguments[binding.argument]
        if binding.location == "query":
            params.extend(query_pairs(binding.name, value, binding.style, binding.explode))
            continue
        text = _json(value) if binding.style == "json" else simple(value, binding.explode)
        if binding.location == "path":
            path_values[binding.name] = text
        elif value is None:
            continue
        elif binding.location == "header":
            headers[binding.name] = text
        else:
            cookies.append(f"{binding.name}={quote(text, safe='')}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    url = base_url + fill_path(operation.path, path_values, where)
    body: Any = None
    has_body = False
    if operation.body == "merged":
        body = {key: value for key, value in arguments.items() if key not in consumed}
        has_body = bool(body) or operation.body_required
    elif operation.body == "property":
        argument = operation.body_argument or "body"
        if argument in arguments:
            body, has_body = arguments[argument], True
    form: dict[str, str] | None = None
    if has_body and operation.body_encoding == "form":
        if not isinstance(body, Mapping):
            raise ValidationFailed(f"{where}: a form body must be an object")
        form = {str(key): scalar(value) for key, value in body.items()}
        has_body = False
    if operation.body_content_type and (has_body or form is not None):
        media = operation.body_content_type.split(";")[0].strip()
        if media not in ("*/*", "application/*"):
            headers["Content-Type"] = operation.body_content_type
    return HTTPRequestSpec(
        method=operation.method,
        url=url,
        params=params,
        headers=headers,
        json_body=body,
        has_json_body=has_body,
        form_body=form,
    )
