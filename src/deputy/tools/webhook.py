"""Plain HTTP webhooks (the spec's `HTTPBinding`): one operation, a URL template whose `{param}`
placeholders are filled from the arguments; the remaining arguments go in the query for GET and
DELETE and in a JSON body otherwise. Results and errors map exactly as for OpenAPI operations
(`deputy.tools.httpcall`).

Placeholders are allowed only in the path and the query of the URL: an argument can never choose
the host a call goes to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from deputy.domain.errors import ValidationFailed
from deputy.domain.spec import EffectTier
from deputy.domain.spec.tools import HTTPBinding, HttpMethod
from deputy.tools.auth import AuthConfig
from deputy.tools.base import Invocation, InvocationResult, JsonObject, ToolDefinition
from deputy.tools.httpcall import DEFAULT_MAX_RESPONSE_BYTES, HTTPCaller, HTTPRequestSpec
from deputy.tools.openapi_request import PLACEHOLDER, fill_path, query_pairs, simple

QUERY_METHODS = frozenset({"GET", "DELETE"})


class WebhookClient:
    """A `ToolSourceClient` with a single operation (named `operation`, "webhook" by default;
    `invoke` does not consult `Invocation.operation`, since there is nothing else to call)."""

    def __init__(
        self,
        method: HttpMethod,
        url_template: str,
        auth: AuthConfig | None = None,
        *,
        operation: str = "webhook",
        description: str = "",
        input_schema: JsonObject | None = None,
        effect: EffectTier | None = None,
        http: httpx.AsyncClient | None = None,
        honours_idempotency_keys: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.method = method.upper()
        self.url_template = url_template
        self.placeholders = _placeholders(url_template)
        self.operation = operation
        self.description = description or f"{self.method} {_shown(url_template)}"
        self.input_schema = input_schema or _default_schema(self.placeholders)
        self.effect: EffectTier = effect or ("read" if self.method == "GET" else "write")
        self.honours_idempotency_keys = honours_idempotency_keys
        self._caller = HTTPCaller(auth, http=http, max_response_bytes=max_response_bytes)

    @classmethod
    def from_binding(
        cls,
        binding: HTTPBinding,
        auth: AuthConfig | None = None,
        **options: Any,
    ) -> WebhookClient:
        return cls(binding.method, binding.url, auth, **options)

    async def list_tools(self) -> list[ToolDefinition]:
        return [
            ToolDefinition(
                operation=self.operation,
                description=self.description,
                input_schema=self.input_schema,
                effect=self.effect,
            )
        ]

    def build(self, arguments: Mapping[str, Any]) -> HTTPRequestSpec:
        """The request one call with `arguments` makes."""
        filled = {name: simple(arguments[name]) for name in self.placeholders if name in arguments}
        url = fill_path(self.url_template, filled, self.operation)
        rest = {k: v for k, v in arguments.items() if k not in self.placeholders}
        if self.method in QUERY_METHODS:
            params = [
                pair
                for key, value in rest.items()
                for pair in query_pairs(key, value, "form", True)
            ]
            return HTTPRequestSpec(self.method, url, params=params)
        return HTTPRequestSpec(self.method, url, json_body=rest, has_json_body=True)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        return await self._caller.call(
            self.build(invocation.arguments),
            timeout=invocation.timeout_seconds,
            idempotency_key=invocation.idempotency_key,
        )

    async def aclose(self) -> None:
        await self._caller.aclose()


def _placeholders(url_template: str) -> tuple[str, ...]:
    parts = urlsplit(PLACEHOLDER.sub("x", url_template))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed(f"webhook URL {url_template!r} must be an absolute http(s) URL")
    authority = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", url_template)
    if authority is None or PLACEHOLDER.search(authority.group(0)):
        raise ValidationFailed(
            f"webhook URL {url_template!r}: placeholders may only appear in the path or query"
        )
    names: list[str] = []
    for name in PLACEHOLDER.findall(url_template):
        if name not in names:
            names.append(name)
    return tuple(names)


def _default_schema(placeholders: tuple[str, ...]) -> JsonObject:
    schema: JsonObject = {
        "type": "object",
        "properties": {name: {"type": ["string", "number"]} for name in placeholders},
        "additionalProperties": True,
    }
    if placeholders:
        schema["required"] = list(placeholders)
    return schema


def _shown(url_template: str) -> str:
    return url_template.split("?", 1)[0]
