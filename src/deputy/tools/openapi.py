"""OpenAPI 3 tool sources: `parse_openapi` turns a document (JSON, or YAML already parsed) into
one `ToolDefinition` per operation; `OpenAPIClient` calls those operations on a base URL.

Each operation's arguments are one object schema (JSON Schema 2020-12, `$ref`s inlined):

- path, query, header and cookie parameters, by name (a name used in two places keeps it in the
  first of path, query, header, cookie; the others become `<in>_<name>`). Header parameters named
  Accept, Content-Type or Authorization are ignored, as OpenAPI says. A path placeholder the
  document forgot to declare is a required string. A parameter described by `content` is sent as
  compact JSON; the others follow their `style`/`explode` (form, simple, deepObject, ...);
- the JSON (or form) request body: an object body's properties are merged at the top level when
  none collides with a parameter and the body is a plain object schema; otherwise the whole body
  is the `body` argument (`request_body` if a parameter is called `body`). An operation whose
  required body has no JSON or form media type is skipped (`OpenAPIDocument.skipped` says why).
  readOnly properties are not arguments; OpenAPI 3.0 `nullable`, boolean exclusive bounds and
  `example` are translated; `x-` extensions and OpenAPI-only keywords are dropped. A recursive
  schema reached from an operation is an error (it cannot be inlined).

The operation name is the `operationId`; an operation without one is named from its method and
path in snake_case (`GET /orders/{order_id}/items` → `get_orders_order_id_items`, with `_2`, `_3`
appended on a clash). The effect tier is the operation's `x-effect` (read | write |
irreversible) when given, else read for GET/HEAD/OPTIONS and write for the other methods.

A document-level `x-idempotency` extension (at the root or in `info`) says whether the API
deduplicates requests by idempotency key: `true`, or `{"supported": true, "header": "..."}`."""

from __future__ import annotations

import re

import httpx

from deputy.domain.errors import ValidationFailed
from deputy.tools.auth import AuthConfig
from deputy.tools.base import Invocation, InvocationResult, ToolDefinition
from deputy.tools.httpcall import DEFAULT_MAX_RESPONSE_BYTES, HTTPCaller
from deputy.tools.openapi_document import OpenAPIDocument, parse_openapi
from deputy.tools.openapi_operations import (
    OpenAPIOperation,
    ParameterBinding,
    SkippedOperation,
    derived_operation_name,
)
from deputy.tools.openapi_request import build_request

__all__ = [
    "OpenAPIClient",
    "OpenAPIDocument",
    "OpenAPIOperation",
    "ParameterBinding",
    "SkippedOperation",
    "derived_operation_name",
    "parse_openapi",
]


class OpenAPIClient:
    """Calls the operations of an `OpenAPIDocument` on `base_url` (the operation's path template
    is appended to it). Implements `ToolSourceClient`."""

    def __init__(
        self,
        document: OpenAPIDocument,
        base_url: str,
        auth: AuthConfig | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        honours_idempotency_keys: bool | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not re.match(r"^https?://[^/?#]+", base_url):
            raise ValidationFailed(f"base URL {base_url!r} must be an absolute http(s) URL")
        self.document = document
        self.base_url = base_url.rstrip("/")
        self.honours_idempotency_keys = (
            document.honours_idempotency_keys
            if honours_idempotency_keys is None
            else honours_idempotency_keys
        )
        self._caller = HTTPCaller(
            auth,
            http=http,
            max_response_bytes=max_response_bytes,
            idempotency_header=document.idempotency_header,
        )

    async def list_tools(self) -> list[ToolDefinition]:
        return self.document.tools()

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        operation = self.document.operation(invocation.operation)
        spec = build_request(operation, self.base_url, invocation.arguments)
        return await self._caller.call(
            spec, timeout=invocation.timeout_seconds, idempotency_key=invocation.idempotency_key
        )

    async def aclose(self) -> None:
        await self._caller.aclose()
