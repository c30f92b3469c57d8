"""MCP servers as tool sources, through the official `mcp` SDK: a local server run as a
subprocess over stdio, or a remote one over streamable HTTP.

`MCPClient` keeps one session per client, opened on first use and owned by a background task
(`deputy.tools.mcp_connection`). A session found broken is reopened once per call: `list_tools`
is simply retried, and `invoke` re-sends only when its request provably never reached the server.

Mapping: a tool's effect is `read` with `readOnlyHint`, `irreversible` with an explicit
`destructiveHint: true`, else `write` (MCP's own default for an unannotated tool is "destructive";
Deputy asks a reviewer to confirm the tier instead of assuming the worst). An `isError` result is
`ok=False` with its text; otherwise the output is the structured content when the server gives
one, else the text content (parsed when it is JSON). The invocation's idempotency key travels in
the request's `_meta` under `dev.deputy/idempotency-key`."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal, TextIO, cast

import httpx2
import mcp.types as mcp_types
from mcp.client import Transport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from deputy.domain.spec import EffectTier
from deputy.tools.auth import AuthConfig, Authenticator
from deputy.tools.base import (
    Invocation,
    InvocationResult,
    JsonObject,
    ToolDefinition,
    ToolTransportError,
)
from deputy.tools.mcp_connection import CALL_ID_META, BridgedAuth, MCPConnection
from deputy.tools.redaction import Redactor, looks_secret

IDEMPOTENCY_META = "dev.deputy/idempotency-key"
MAX_TOOL_PAGES = 100
CLIENT_INFO = mcp_types.Implementation(name="deputy", version="0.1.0")


class _ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MCPStdioServer(_ConfigModel):
    """A server Deputy runs as a subprocess. Its environment is a safe minimum (PATH, HOME, ...)
    plus `env` and `secret_env` (for API keys the server needs; redacted everywhere)."""

    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None


class MCPHTTPServer(_ConfigModel):
    """A remote server over streamable HTTP."""

    type: Literal["http"] = "http"
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthConfig | None = None


MCPServerConfig = Annotated[MCPStdioServer | MCPHTTPServer, Field(discriminator="type")]


def secret_values(config: MCPStdioServer | MCPHTTPServer) -> tuple[str, ...]:
    """Every credential the configuration holds, for redaction."""
    if isinstance(config, MCPStdioServer):
        return tuple(v.get_secret_value() for v in config.secret_env.values())
    headers = tuple(v for k, v in config.headers.items() if looks_secret(k))
    return headers + (config.auth.secret_values() if config.auth else ())


class MCPClient:
    """A `ToolSourceClient` for one MCP server. Its session belongs to the event loop of its
    first call: use one client per loop, and `aclose()` it on that loop."""

    def __init__(
        self,
        config: MCPStdioServer | MCPHTTPServer,
        *,
        honours_idempotency_keys: bool = False,
        connect_timeout_seconds: float = 30.0,
        list_timeout_seconds: float = 30.0,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.honours_idempotency_keys = honours_idempotency_keys
        self.connect_timeout_seconds = connect_timeout_seconds
        self.list_timeout_seconds = list_timeout_seconds
        self._errlog = errlog
        self._authenticator = Authenticator(
            config.auth if isinstance(config, MCPHTTPServer) else None
        )
        self._bridge = BridgedAuth(self._authenticator)
        self._connection: MCPConnection | None = None
        self._lock: asyncio.Lock | None = None
        self.connections_opened = 0

    def _redactor(self) -> Redactor:
        return self._authenticator.redactor().merged(Redactor.of(secret_values(self.config)))

    async def _make_transport(self, stack: AsyncExitStack) -> Transport:
        config = self.config
        if isinstance(config, MCPStdioServer):
            env = {**config.env, **{k: v.get_secret_value() for k, v in config.secret_env.items()}}
            parameters = StdioServerParameters(
                command=config.command, args=config.args, env=env, cwd=config.cwd
            )
            return stdio_client(parameters, errlog=self._errlog or sys.stderr)
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=config.headers,
                auth=self._bridge,
                timeout=httpx2.Timeout(30.0, read=300.0),
            )
        )
        return streamable_http_client(config.url, http_client=http)

    async def _connect(self) -> MCPConnection:
        """The live connection; a new one when there is none or the current one is broken."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            current = self._connection
            if current is not None and current.broken:
                self._connection = None
                await current.close()
                current = None
            if current is None:
                # Credentials first: a refused token is a clear error, not a dead session.
                await self._authenticator.credentials()
                current = MCPConnection(self._make_transport, CLIENT_INFO)
                try:
                    await current.open(self.connect_timeout_seconds)
                except ToolTransportError:
                    if self._bridge.refused is None:
                        raise
                    raise ToolTransportError(
                        f"the MCP server refused the credentials (HTTP {self._bridge.refused})",
                        retryable=False,
                        maybe_delivered=False,
                    ) from None
                self._connection = current
                self.connections_opened += 1
            return current

    async def list_tools(self) -> list[ToolDefinition]:
        for attempt in (1, 2):
            connection = await self._connect()
            try:
                tools: list[ToolDefinition] = []
                cursor: str | None = None
                async with asyncio.timeout(self.list_timeout_seconds):
                    for _ in range(MAX_TOOL_PAGES):
                        page = await connection.client.list_tools(
                            cursor=cursor, cache_mode="bypass"
                        )
                        tools.extend(_definition(tool) for tool in page.tools)
                        cursor = page.next_cursor
                        if cursor is None:
                            break
                return tools
            except TimeoutError:
                raise ToolTransportError(
                    f"listing the MCP tools timed out after {self.list_timeout_seconds:g}s",
                    retryable=True,
                    maybe_delivered=True,
                ) from None
            except MCPError as exc:
                if _session_lost(exc):
                    connection.tracker.closed = True
                    if attempt == 1:
                        continue
                raise self._transport_error("tools/list", exc, delivered=True) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        name = invocation.operation
        arguments = dict(invocation.arguments)
        for attempt in (1, 2):
            connection = await self._connect()
            call_id = uuid.uuid4().hex
            meta: dict[str, Any] = {CALL_ID_META: call_id}
            if invocation.idempotency_key is not None:
                meta[IDEMPOTENCY_META] = invocation.idempotency_key
            request_record = self._request_record(name, arguments, meta)
            try:
                async with asyncio.timeout(invocation.timeout_seconds + 5.0):
                    result = await connection.client.call_tool(
                        name,
                        arguments,
                        read_timeout_seconds=invocation.timeout_seconds,
                        meta=cast(mcp_types.RequestParamsMeta, meta),
                    )
            except TimeoutError:
                raise ToolTransportError(
                    f"MCP tool {name!r} timed out after {invocation.timeout_seconds:g}s",
                    retryable=True,
                    maybe_delivered=True,
                ) from None
            except MCPError as exc:
                if _session_lost(exc):
                    connection.tracker.closed = True  # the next call opens a new session
                    delivered = connection.tracker.written(call_id) and not _refused(exc)
                    if not delivered and attempt == 1:
                        continue
                    raise self._transport_error(name, exc, delivered=delivered) from None
                if exc.code in (mcp_types.INVALID_PARAMS, mcp_types.METHOD_NOT_FOUND):
                    return InvocationResult(
                        ok=False,
                        output=self._redactor().text(exc.message),
                        request=request_record,
                        response={"error": {"code": exc.code, "message": exc.message}},
                    )
                raise self._transport_error(name, exc, delivered=True) from None
            except (ValidationError, RuntimeError) as exc:
                written = connection.tracker.written(call_id)
                if connection.broken and not written and attempt == 1:
                    continue  # the session ended before the call was sent
                raise ToolTransportError(
                    f"MCP tool {name!r} failed: {self._redactor().text(str(exc))}",
                    retryable=connection.broken,
                    maybe_delivered=written,
                ) from None
            return self._result(result, request_record)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_record(self, name: str, arguments: JsonObject, meta: JsonObject) -> JsonObject:
        redactor = self._redactor()
        return {"tool": name, "arguments": redactor.json(arguments), "meta": redactor.json(meta)}

    def _result(self, result: mcp_types.CallToolResult, request: JsonObject) -> InvocationResult:
        redactor = self._redactor()
        blocks = [
            block.model_dump(mode="json", by_alias=True, exclude_none=True)
            for block in result.content
        ]
        response: JsonObject = {"is_error": result.is_error, "content": redactor.json(blocks)}
        if result.structured_content is not None:
            response["structured_content"] = redactor.json(result.structured_content)
        if result.is_error:
            output: Any = _text(result.content) or result.structured_content
        elif result.structured_content is not None:
            output = result.structured_content
        else:
            output = _content_output(result.content)
        return InvocationResult(
            ok=not result.is_error,
            output=redactor.values(output),
            request=request,
            response=response,
        )

    def _transport_error(self, what: str, exc: MCPError, *, delivered: bool) -> ToolTransportError:
        timeout = exc.code == mcp_types.REQUEST_TIMEOUT
        retryable = timeout or _session_lost(exc) or exc.code == mcp_types.INTERNAL_ERROR
        message = self._redactor().text(exc.message)
        return ToolTransportError(
            f"MCP {what!r} failed ({exc.code}): {message}",
            retryable=retryable,
            maybe_delivered=delivered,
        )

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        await self._authenticator.aclose()


def _session_lost(exc: MCPError) -> bool:
    return exc.code == mcp_types.CONNECTION_CLOSED or _refused(exc)


def _refused(exc: MCPError) -> bool:
    """The server refused the request because it no longer knows the session (a streamable
    HTTP server restarted): it did not act on it."""
    return exc.code == mcp_types.INVALID_REQUEST and exc.message == "Session terminated"


def _definition(tool: mcp_types.Tool) -> ToolDefinition:
    annotations = tool.annotations
    effect: EffectTier = "write"
    if annotations is not None and annotations.read_only_hint:
        effect = "read"
    elif annotations is not None and annotations.destructive_hint is True:
        effect = "irreversible"
    schema = dict(tool.input_schema) if isinstance(tool.input_schema, Mapping) else {}
    schema.setdefault("type", "object")
    return ToolDefinition(
        operation=tool.name,
        description=tool.description or tool.title or "",
        input_schema=schema,
        effect=effect,
    )


def _text(content: list[mcp_types.ContentBlock]) -> str:
    return "\n".join(block.text for block in content if isinstance(block, mcp_types.TextContent))


def _content_output(content: list[mcp_types.ContentBlock]) -> Any:
    if all(isinstance(block, mcp_types.TextContent) for block in content):
        text = _text(content)
        try:
            return json.loads(text) if text.strip() else text
        except ValueError:
            return text
    return [_block(block) for block in content]


def _block(block: mcp_types.ContentBlock) -> Any:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ResourceLink):
        return {"type": "resource_link", "uri": str(block.uri), "name": block.name}
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        text = getattr(resource, "text", None)
        return {"type": "resource", "uri": str(resource.uri), "text": text}
    return {"type": block.type, "mime_type": getattr(block, "mime_type", None)}
