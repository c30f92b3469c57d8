"""Tool sources and the audit of tool calls, for `DeputyClient` (`client.tool_sources`,
`client.tool_calls`) and `AsyncDeputyClient` (the same, awaited).

    source = client.tool_sources.create(
        "retail", "openapi", document=openapi, base_url="https://shop.example",
        auth={"type": "api_key", "name": "X-API-Key", "value": key},
    )
    entries = client.tool_sources.spec_tools(source.id, ["cancel_pending_order"]).tools
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from deputy.domain import resources as r
from deputy.sdk import _tool_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP

T = TypeVar("T")


def _pages(fetch: Callable[[str | None], r.Page[T]]) -> Iterator[r.Page[T]]:
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def _apages(fetch: Callable[[str | None], Awaitable[r.Page[T]]]) -> AsyncIterator[r.Page[T]]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _fields(
    description: str | None,
    document: Mapping[str, Any] | None,
    material_id: str | None,
    base_url: str | None,
    mcp: Mapping[str, Any] | None,
    auth: Mapping[str, Any] | None,
    honours_idempotency_keys: bool | None,
) -> dict[str, Any]:
    return {
        "description": description,
        "document": document,
        "material_id": material_id,
        "base_url": base_url,
        "mcp": mcp,
        "auth": auth,
        "honours_idempotency_keys": honours_idempotency_keys,
    }


class ToolSourcesAPI:
    """The workspace's tool sources. Credentials (`auth`, MCP `secret_env` and headers) are
    stored encrypted and never returned."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        name: str,
        kind: r.ToolSourceKind,
        *,
        description: str | None = None,
        document: Mapping[str, Any] | None = None,
        material_id: str | None = None,
        base_url: str | None = None,
        mcp: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        honours_idempotency_keys: bool | None = None,
        idempotency_key: str | None = None,
    ) -> r.ToolSource:
        """Register an OpenAPI (`document` or `material_id`, plus `base_url`), MCP (`mcp`) or
        http (webhook credentials) source."""
        fields = _fields(
            description, document, material_id, base_url, mcp, auth, honours_idempotency_keys
        )
        return self._http.run(calls.create_tool_source(name, kind, fields, idempotency_key))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[r.ToolSource]:
        return self._http.run(calls.list_tool_sources(limit, cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[r.ToolSource]:
        for page in _pages(lambda cursor: self.list(limit=page_size, cursor=cursor)):
            yield from page.data

    def get(self, source_id: str) -> r.ToolSource:
        return self._http.run(calls.get_tool_source(source_id))

    def update(
        self,
        source_id: str,
        *,
        description: str | None = None,
        document: Mapping[str, Any] | None = None,
        material_id: str | None = None,
        base_url: str | None = None,
        mcp: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        honours_idempotency_keys: bool | None = None,
    ) -> r.ToolSource:
        """Change what is given; `auth` rotates the credentials."""
        fields = _fields(
            description, document, material_id, base_url, mcp, auth, honours_idempotency_keys
        )
        return self._http.run(calls.update_tool_source(source_id, fields))

    def delete(self, source_id: str) -> None:
        self._http.run(calls.delete_tool_source(source_id))

    def operations(self, source_id: str) -> r.ToolSourceOperations:
        """The operations the source offers, as tool definitions."""
        return self._http.run(calls.tool_source_operations(source_id))

    def spec_tools(
        self,
        source_id: str,
        operations: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> r.SpecTools:
        """AgentSpec `tools` entries for `operations` (default: all)."""
        return self._http.run(calls.spec_tools(source_id, operations, idempotency_key))


class ToolCallsAPI:
    """An agent's recorded tool calls (the audit trail), newest first."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def list(
        self,
        agent_id: str,
        *,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[r.ToolCallInfo]:
        return self._http.run(calls.list_tool_calls(agent_id, conversation_id, limit, cursor))

    def iter_all(
        self, agent_id: str, *, conversation_id: str | None = None, page_size: int | None = None
    ) -> Iterator[r.ToolCallInfo]:
        def fetch(cursor: str | None) -> r.Page[r.ToolCallInfo]:
            return self.list(
                agent_id, conversation_id=conversation_id, limit=page_size, cursor=cursor
            )

        for page in _pages(fetch):
            yield from page.data


class AsyncToolSourcesAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        name: str,
        kind: r.ToolSourceKind,
        *,
        description: str | None = None,
        document: Mapping[str, Any] | None = None,
        material_id: str | None = None,
        base_url: str | None = None,
        mcp: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        honours_idempotency_keys: bool | None = None,
        idempotency_key: str | None = None,
    ) -> r.ToolSource:
        fields = _fields(
            description, document, material_id, base_url, mcp, auth, honours_idempotency_keys
        )
        return await self._http.run(calls.create_tool_source(name, kind, fields, idempotency_key))

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[r.ToolSource]:
        return await self._http.run(calls.list_tool_sources(limit, cursor))

    async def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[r.ToolSource]:
        async for page in _apages(lambda cursor: self.list(limit=page_size, cursor=cursor)):
            for item in page.data:
                yield item

    async def get(self, source_id: str) -> r.ToolSource:
        return await self._http.run(calls.get_tool_source(source_id))

    async def update(
        self,
        source_id: str,
        *,
        description: str | None = None,
        document: Mapping[str, Any] | None = None,
        material_id: str | None = None,
        base_url: str | None = None,
        mcp: Mapping[str, Any] | None = None,
        auth: Mapping[str, Any] | None = None,
        honours_idempotency_keys: bool | None = None,
    ) -> r.ToolSource:
        fields = _fields(
            description, document, material_id, base_url, mcp, auth, honours_idempotency_keys
        )
        return await self._http.run(calls.update_tool_source(source_id, fields))

    async def delete(self, source_id: str) -> None:
        await self._http.run(calls.delete_tool_source(source_id))

    async def operations(self, source_id: str) -> r.ToolSourceOperations:
        return await self._http.run(calls.tool_source_operations(source_id))

    async def spec_tools(
        self,
        source_id: str,
        operations: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> r.SpecTools:
        return await self._http.run(calls.spec_tools(source_id, operations, idempotency_key))


class AsyncToolCallsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def list(
        self,
        agent_id: str,
        *,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[r.ToolCallInfo]:
        return await self._http.run(calls.list_tool_calls(agent_id, conversation_id, limit, cursor))

    async def iter_all(
        self, agent_id: str, *, conversation_id: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[r.ToolCallInfo]:
        async def fetch(cursor: str | None) -> r.Page[r.ToolCallInfo]:
            return await self.list(
                agent_id, conversation_id=conversation_id, limit=page_size, cursor=cursor
            )

        async for page in _apages(fetch):
            for item in page.data:
                yield item
