"""The retail toolkit over MCP (official `mcp` SDK, low-level `Server`): stdio or streamable HTTP.

Same tools, schemas and semantics as the REST API (both come from `catalog.TOOLS`). A result is
one text block in tau2's form (strings as they are, records as JSON); a refused request is a tool
error (`isError: true`) whose text is the message. With `admin_tools=True` two extra tools exist
for tests and demos: `admin_reset` and `admin_state` (sha256, and the state on request).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.stdio import StdioServerParameters
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from starlette.applications import Starlette

from examples.retail.catalog import TOOLS, ToolSpec, as_text, invoke
from examples.retail.errors import RetailError
from examples.retail.rest import VERSION, state_document
from examples.retail.store import REPO, RetailStore

MCP_PATH = "/mcp"
SERVER_NAME = "retail"
INSTRUCTIONS = (
    "Tools of an online retail store (tau2-bench retail domain): look up users, orders and "
    "products; cancel or modify pending orders; return or exchange delivered ones."
)
EFFECT_META_KEY = "deputy.dev/effect"

_ADMIN_TOOLS = [
    types.Tool(
        name="admin_reset",
        description="Restore the database to its initial content (test helper).",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True),
    ),
    types.Tool(
        name="admin_state",
        description="The sha256 of the database's canonical JSON, and the database if asked.",
        input_schema={
            "type": "object",
            "properties": {"include_state": {"type": "boolean", "default": False}},
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
]


def _tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.summary,
        description=spec.description,
        input_schema=spec.input_schema(),
        annotations=types.ToolAnnotations(
            read_only_hint=spec.effect == "read",
            destructive_hint=spec.effect == "irreversible",
            idempotent_hint=spec.effect == "read",
            open_world_hint=False,
        ),
        meta={EFFECT_META_KEY: spec.effect},
    )


def _text(text: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=is_error)


def _admin(store: RetailStore, name: str, arguments: dict[str, Any]) -> str:
    if name == "admin_reset":
        store.reset()
        return json.dumps({"sha256": store.sha256()})
    return state_document(store, bool(arguments.get("include_state")))


CallTool = Callable[
    [ServerRequestContext[Any], types.CallToolRequestParams], Awaitable[types.CallToolResult]
]


def create_mcp_server(
    store: RetailStore | None = None, *, admin_tools: bool = False
) -> Server[Any]:
    """A low-level MCP `Server` serving every tool of `catalog.TOOLS` over `store`."""
    live = store if store is not None else RetailStore()
    listed = [_tool(spec) for spec in TOOLS.values()] + (_ADMIN_TOOLS if admin_tools else [])
    admin_names = {tool.name for tool in _ADMIN_TOOLS} if admin_tools else set()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        if params.name in admin_names:
            return _text(await anyio.to_thread.run_sync(_admin, live, params.name, arguments))
        if params.name not in TOOLS:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        try:
            result = await anyio.to_thread.run_sync(invoke, live, params.name, arguments)
        except RetailError as error:
            return _text(error.message, is_error=True)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in problem['loc']) or 'arguments'}: {problem['msg']}"
                for problem in error.errors()
            )
            return _text(f"invalid arguments: {problems}", is_error=True)
        return _text(as_text(result))

    return Server(
        SERVER_NAME,
        version=VERSION,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def create_mcp_http_app(
    store: RetailStore | None = None, *, host: str = "127.0.0.1", admin_tools: bool = False
) -> Starlette:
    """The streamable-HTTP ASGI app; the MCP endpoint is `MCP_PATH` (`/mcp`)."""
    server = create_mcp_server(store, admin_tools=admin_tools)
    return server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)


async def _serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def run_stdio(store: RetailStore | None = None, *, admin_tools: bool = False) -> None:
    """Serve MCP on this process's stdin/stdout until the client disconnects."""
    anyio.run(_serve_stdio, create_mcp_server(store, admin_tools=admin_tools))


def stdio_server_parameters(
    db_path: Path | str | None = None,
    *,
    state_path: Path | str | None = None,
    admin_tools: bool = False,
    env: Mapping[str, str] | None = None,
) -> StdioServerParameters:
    """How an MCP client launches this server over stdio (`mcp.Client(parameters)`): this
    Python running `-m examples.retail mcp --transport stdio` from the repository root."""
    args = ["-m", "examples.retail", "mcp", "--transport", "stdio"]
    if db_path is not None:
        args += ["--db", str(db_path)]
    if state_path is not None:
        args += ["--state-file", str(state_path)]
    if admin_tools:
        args.append("--admin-tools")
    paths = [str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    variables = {"PYTHONPATH": os.pathsep.join(filter(None, paths)), **(env or {})}
    return StdioServerParameters(command=sys.executable, args=args, env=variables, cwd=str(REPO))
