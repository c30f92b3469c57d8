"""MCPClient against a real MCP server (tests/integration/mcp_fixture_server.py, the SDK's
MCPServer) run as a subprocess over stdio and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deputy.tools.auth import BearerAuth
from deputy.tools.base import Invocation, InvocationResult, ToolTransportError
from deputy.tools.mcp import MCPClient, MCPHTTPServer, MCPStdioServer
from tests.integration.tools_fixture_api import free_port

pytestmark = pytest.mark.integration

FIXTURE_SERVER = Path(__file__).with_name("mcp_fixture_server.py")
MCP_TOKEN = "mcp-token-1b9f3e"


def stdio_config(**overrides: Any) -> MCPStdioServer:
    return MCPStdioServer(command=sys.executable, args=[str(FIXTURE_SERVER)], **overrides)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stdio_tools_and_results() -> None:
    async def scenario() -> dict[str, InvocationResult]:
        client = MCPClient(stdio_config())
        try:
            tools = {tool.operation: tool for tool in await client.list_tools()}
            assert tools["get_order"].effect == "read"  # readOnlyHint
            assert tools["refund"].effect == "irreversible"  # destructiveHint
            assert tools["echo_meta"].effect == "write"  # no annotation
            assert tools["get_order"].input_schema["required"] == ["order_id"]
            assert tools["get_order"].description == "Look up an order by id."
            calls = {
                "structured": Invocation("get_order", {"order_id": "A1"}, 10),
                "tool_error": Invocation("get_order", {"order_id": "missing"}, 10),
                "bad_arguments": Invocation("get_order", {}, 10),
                "json_text": Invocation("order_json", {"order_id": "B2"}, 10),
                "plain_text": Invocation("plain_text", {}, 10),
                "unknown": Invocation("no_such_tool", {}, 10),
            }
            results = {name: await client.invoke(call) for name, call in calls.items()}
            assert client.connections_opened == 1, "one session serves every call"
            return results
        finally:
            await client.aclose()

    results = asyncio.run(scenario())
    assert results["structured"].ok
    assert results["structured"].output == {"order_id": "A1", "status": "shipped", "total": 42.5}
    assert results["structured"].request["arguments"] == {"order_id": "A1"}
    assert results["tool_error"].ok is False
    assert "order missing not found" in results["tool_error"].output
    assert results["tool_error"].response["is_error"] is True
    assert results["bad_arguments"].ok is False and "order_id" in results["bad_arguments"].output
    assert results["json_text"].output == {"order_id": "B2", "source": "text"}
    assert results["plain_text"].output == "hello, plain text"
    assert results["unknown"].ok is False and "no_such_tool" in results["unknown"].output


def test_stdio_idempotency_key_in_meta_and_timeouts() -> None:
    async def scenario() -> None:
        client = MCPClient(stdio_config(secret_env={"SHOP_TOKEN": "env-secret-1234"}))
        try:
            echoed = await client.invoke(Invocation("echo_meta", {"message": "m"}, 10, "idem-9"))
            assert echoed.output["meta"]["dev.deputy/idempotency-key"] == "idem-9"
            assert echoed.request["meta"]["dev.deputy/idempotency-key"] == "idem-9"
            refund = Invocation("refund", {"order_id": "R1", "amount": 5}, 10, "idem-R1")
            assert (await client.invoke(refund)).output["calls_for_key"] == 1
            assert (await client.invoke(refund)).output["calls_for_key"] == 2

            started = time.monotonic()
            with pytest.raises(ToolTransportError) as caught:
                await client.invoke(Invocation("slow", {"seconds": 10}, 0.5))
            assert time.monotonic() - started < 3
            assert caught.value.retryable and caught.value.maybe_delivered
            # The session survives a timed-out call.
            assert (await client.invoke(Invocation("plain_text", {}, 10))).ok
            assert client.connections_opened == 1
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_stdio_broken_sessions_reconnect_without_resending_delivered_calls() -> None:
    async def scenario() -> None:
        client = MCPClient(stdio_config())
        try:
            first_pid = (await client.invoke(Invocation("pid", {}, 10))).output["result"]
            # The server dies while handling a call: it may have acted, so no resend.
            with pytest.raises(ToolTransportError) as caught:
                await client.invoke(Invocation("crash", {}, 10))
            assert caught.value.maybe_delivered and caught.value.retryable
            second_pid = (await client.invoke(Invocation("pid", {}, 10))).output["result"]
            assert second_pid != first_pid and not alive(first_pid)
            # The server exits between calls: the next call opens a new session and goes through.
            assert (await client.invoke(Invocation("exit_soon", {}, 10))).output == {
                "result": "bye"
            }
            await asyncio.sleep(0.6)
            third = await client.invoke(Invocation("get_order", {"order_id": "after"}, 10))
            assert third.ok and third.output["order_id"] == "after"
            assert client.connections_opened == 3
            assert "get_order" in {t.operation for t in await client.list_tools()}
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_stdio_concurrent_calls_and_clean_shutdown() -> None:
    async def scenario() -> int:
        client = MCPClient(stdio_config())
        try:
            results = await asyncio.gather(
                *(
                    client.invoke(Invocation("get_order", {"order_id": f"C{i}"}, 10))
                    for i in range(8)
                )
            )
            assert [r.output["order_id"] for r in results] == [f"C{i}" for i in range(8)]
            assert client.connections_opened == 1
            pid: int = (await client.invoke(Invocation("pid", {}, 10))).output["result"]
            return pid
        finally:
            await client.aclose()
            await client.aclose()  # idempotent

    pid = asyncio.run(scenario())
    assert not alive(pid), "aclose stops the server process"


def test_stdio_server_that_cannot_start() -> None:
    async def scenario() -> None:
        client = MCPClient(
            MCPStdioServer(command="/nonexistent/mcp-server"), connect_timeout_seconds=10
        )
        try:
            await client.list_tools()
        finally:
            await client.aclose()

    with pytest.raises(ToolTransportError) as caught:
        asyncio.run(scenario())
    assert not caught.value.maybe_delivered and caught.value.retryable


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FIXTURE_SERVER), "http", str(port), MCP_TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP HTTP fixture did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_streamable_http_with_bearer_auth(mcp_http: str) -> None:
    async def scenario() -> None:
        client = MCPClient(MCPHTTPServer(url=mcp_http, auth=BearerAuth(token=MCP_TOKEN)))
        try:
            tools = {tool.operation: tool.effect for tool in await client.list_tools()}
            assert tools["get_order"] == "read" and tools["refund"] == "irreversible"
            result = await client.invoke(
                Invocation("refund", {"order_id": "H1", "amount": 2}, 10, "h-1")
            )
            assert result.ok and result.output["calls_for_key"] == 1
            error = await client.invoke(Invocation("get_order", {"order_id": "missing"}, 10))
            assert not error.ok and "not found" in error.output
            with pytest.raises(ToolTransportError) as caught:
                await client.invoke(Invocation("slow", {"seconds": 10}, 0.5))
            assert caught.value.maybe_delivered
            assert (await client.invoke(Invocation("get_order", {"order_id": "H2"}, 10))).ok
            assert client.connections_opened == 1
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_streamable_http_with_a_static_header(mcp_http: str) -> None:
    async def scenario() -> InvocationResult:
        config = MCPHTTPServer(url=mcp_http, headers={"Authorization": f"Bearer {MCP_TOKEN}"})
        client = MCPClient(config)
        try:
            return await client.invoke(Invocation("echo_meta", {"message": "hdr"}, 10))
        finally:
            await client.aclose()

    assert asyncio.run(scenario()).output["message"] == "hdr"


def test_streamable_http_with_a_wrong_token(mcp_http: str) -> None:
    async def scenario() -> None:
        client = MCPClient(
            MCPHTTPServer(url=mcp_http, auth=BearerAuth(token="wrong-token")),
            connect_timeout_seconds=10,
        )
        try:
            await client.list_tools()
        finally:
            await client.aclose()

    with pytest.raises(ToolTransportError) as caught:
        asyncio.run(scenario())
    assert not caught.value.maybe_delivered and not caught.value.retryable
    assert "refused the credentials (HTTP 401)" in str(caught.value)


def test_retail_sample_mcp_server_over_stdio() -> None:
    """The retail sample's MCP server, launched the way its README says."""
    retail = pytest.importorskip("examples.retail.mcp_server")
    from examples.retail.store import default_db_path

    if not default_db_path().exists():
        pytest.skip(f"the tau2 retail database is not at {default_db_path()}")
    parameters = retail.stdio_server_parameters()
    config = MCPStdioServer(
        command=parameters.command,
        args=parameters.args,
        env=parameters.env or {},
        cwd=str(parameters.cwd),
    )

    async def scenario() -> tuple[dict[str, Any], InvocationResult, InvocationResult]:
        client = MCPClient(config)
        try:
            effects = {tool.operation: tool.effect for tool in await client.list_tools()}
            found = await client.invoke(
                Invocation("get_order_details", {"order_id": "#W2611340"}, 10)
            )
            refused = await client.invoke(
                Invocation("get_order_details", {"order_id": "#W0000000"}, 10)
            )
            return effects, found, refused
        finally:
            await client.aclose()

    effects, found, refused = asyncio.run(scenario())
    assert effects["get_order_details"] == "read"
    assert effects["cancel_pending_order"] == "irreversible"
    assert effects["modify_user_address"] == "write"
    assert found.ok and found.output["user_id"] == "james_li_5688"
    assert not refused.ok and "not found" in refused.output.lower()
