"""A stateful simulation of a tool backend, in process: an ASGI app (FastAPI, Starlette...) per
world, reached through `httpx.ASGITransport`, so no socket is opened and nothing can leave the
process. Each `open()` builds a fresh app, with its own copy of the seed state, so trials never
see each other's writes.

The app serves its OpenAPI document at `/openapi.json` (fetched once per factory: every app of
a factory serves the same one) and, when it can, its whole state at `GET /admin/state` as
`{"state": ...}` (the retail sample backend does both). ASGI lifespan events are not run: the
app must be ready once built."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx
from pydantic import JsonValue
from starlette.types import ASGIApp

from deputy.domain.spec import AgentSpec, HTTPBinding, OpenAPIBinding
from deputy.sandbox.worlds_base import DIRECT_CALL_TIMEOUT_SECONDS, unknown_operation
from deputy.tools.base import Invocation, InvocationResult, ToolSourceClient
from deputy.tools.checks import source_key
from deputy.tools.openapi import OpenAPIClient, OpenAPIDocument, parse_openapi

SANDBOX_BASE_URL = "http://sandbox.invalid"
"""The base URL the world's clients use; `.invalid` never resolves, and the transport is the
app itself anyway."""
OPENAPI_PATH = "/openapi.json"
STATE_PATH = "/admin/state"


class AsgiWorld:
    """One simulated backend (implements `deputy.sandbox.ports.ToolWorld`)."""

    def __init__(
        self,
        description: str,
        http: httpx.AsyncClient,
        document: OpenAPIDocument,
        sources: frozenset[str] | None,
    ) -> None:
        self.description = description
        self._http = http
        self._document = document
        self._sources = sources
        self._operations = frozenset(op.tool.operation for op in document.operations)
        self._client = OpenAPIClient(document, SANDBOX_BASE_URL, http=http)

    def clients(self, spec: AgentSpec) -> dict[str, ToolSourceClient]:
        """The client of the simulation under every source key it serves: each OpenAPI-bound
        source of the spec's tools, and `http:<tool>` for a webhook-bound tool whose name is an
        operation of the document (a tool the builder only described runs against the
        simulation). With `sources`, only the keys named there. MCP sources are not served."""
        served: dict[str, ToolSourceClient] = {}
        for tool in spec.tools:
            binding = tool.binding
            webhook = isinstance(binding, HTTPBinding) and tool.name in self._operations
            if not isinstance(binding, OpenAPIBinding) and not webhook:
                continue
            key = source_key(tool)
            if key is not None and (self._sources is None or key in self._sources):
                served[key] = self._client
        return served

    async def operations(self) -> frozenset[str]:
        return self._operations

    async def call(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        if operation not in self._operations:
            return unknown_operation(operation, self.description)
        return await self._client.invoke(
            Invocation(operation, dict(arguments), DIRECT_CALL_TIMEOUT_SECONDS)
        )

    async def state(self) -> JsonValue | None:
        """The app's `GET /admin/state` → `state`; None when the app has no such endpoint."""
        response = await self._http.get(STATE_PATH)
        if response.status_code in (404, 405):
            return None
        if response.status_code != 200:
            raise RuntimeError(
                f"{self.description}: GET {STATE_PATH} answered {response.status_code}"
            )
        body = response.json()
        if not isinstance(body, dict) or "state" not in body:
            raise RuntimeError(f"{self.description}: GET {STATE_PATH} has no 'state' field")
        state: JsonValue = body["state"]
        return state

    async def aclose(self) -> None:
        await self._http.aclose()


class AsgiWorldFactory:
    """Opens `AsgiWorld`s over apps from `app_factory` (implements `WorldFactory`).
    `sources` limits the source keys the worlds serve (None: every OpenAPI-bound source and
    every webhook tool the document has an operation for)."""

    def __init__(
        self,
        app_factory: Callable[[], ASGIApp],
        *,
        description: str,
        sources: Collection[str] | None = None,
    ) -> None:
        self.description = description
        self._app_factory = app_factory
        self._sources = frozenset(sources) if sources is not None else None
        self._document: OpenAPIDocument | None = None

    async def open(self) -> AsgiWorld:
        transport = httpx.ASGITransport(app=self._app_factory(), raise_app_exceptions=False)
        http = httpx.AsyncClient(transport=transport, base_url=SANDBOX_BASE_URL)
        try:
            document = self._document or await self._fetch_document(http)
        except BaseException:
            await http.aclose()
            raise
        self._document = document
        return AsgiWorld(self.description, http, document, self._sources)

    async def document(self) -> OpenAPIDocument:
        """The backend's OpenAPI document (its operations are what an agent's tools can bind
        to, e.g. the oracle's spec)."""
        if self._document is None:
            world = await self.open()
            await world.aclose()
        assert self._document is not None
        return self._document

    async def _fetch_document(self, http: httpx.AsyncClient) -> OpenAPIDocument:
        response = await http.get(OPENAPI_PATH)
        if response.status_code != 200:
            raise ValueError(
                f"{self.description}: the app serves no OpenAPI document at {OPENAPI_PATH} "
                f"(status {response.status_code})"
            )
        return parse_openapi(response.json())
