"""A tiny MCP server for the tool-client tests, built on the official SDK's `MCPServer`.

python mcp_fixture_server.py stdio
python mcp_fixture_server.py http PORT TOKEN   # streamable HTTP on 127.0.0.1:PORT/mcp,
                                               # every request needs `Authorization: Bearer TOKEN`
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("deputy-fixture")
refunds_by_key: Counter[str] = Counter()


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def get_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    if order_id == "missing":
        raise ToolError(f"order {order_id} not found")
    return {"order_id": order_id, "status": "shipped", "total": 42.5}


@server.tool()
def echo_meta(message: str, ctx: Context) -> dict[str, Any]:
    """Return the message and the request's _meta."""
    meta = ctx.request_context.meta or {}
    return {"message": message, "meta": {k: v for k, v in meta.items() if k.startswith("dev.")}}


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def refund(order_id: str, amount: float, ctx: Context) -> dict[str, Any]:
    """Refund an order (irreversible). Counts calls per idempotency key."""
    meta = ctx.request_context.meta or {}
    key = str(meta.get("dev.deputy/idempotency-key"))
    refunds_by_key[key] += 1
    return {"order_id": order_id, "amount": amount, "calls_for_key": refunds_by_key[key]}


@server.tool(structured_output=False)
def order_json(order_id: str) -> str:
    """Text content that happens to be JSON (no structured content)."""
    return json.dumps({"order_id": order_id, "source": "text"})


@server.tool(structured_output=False)
def plain_text() -> str:
    """Plain text content."""
    return "hello, plain text"


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "done"


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def exit_soon() -> str:
    """Answer, then exit the server process shortly after (between two calls)."""
    asyncio.get_running_loop().call_later(0.1, os._exit, 0)
    return "bye"


@server.tool()
def crash() -> str:
    """Exit the server process abruptly, mid-call."""
    os._exit(3)


def _http(port: int, token: str) -> None:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

    inner = server.streamable_http_app()

    def require_token(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                if headers.get(b"authorization") != f"Bearer {token}".encode():
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await app(scope, receive, send)

        return guarded

    print(f"listening on {port}", flush=True)
    uvicorn.run(require_token(inner), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        _http(int(sys.argv[2]), sys.argv[3])
    else:
        server.run("stdio")
