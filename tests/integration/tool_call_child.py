"""One tool call through `build_executor`, in a process of its own (the crash tests run it).

    python -m tests.integration.tool_call_child '<json request>'

The platform comes from the environment (DEPUTY_DATABASE_URL, DEPUTY_DATA_DIR). With
`"crash_after_send": true` the process dies (`os._exit(17)`) in the ledger's `finish`, that is
after the request went out and before its outcome is stored: a crash between the call and its
acknowledgement. Otherwise the result is printed as JSON on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from deputy.config import load_settings
from deputy.domain.spec import AgentSpec
from deputy.services.platform import Platform
from deputy.services.tool_ledger import SqlCallLedger
from deputy.services.tool_sources import build_executor
from deputy.tools.confirmation import Confirmation
from deputy.tools.ledger import CallFinish, CallRecord
from deputy.tools.results import CallContext

CRASH_EXIT_CODE = 17


async def _die(self: SqlCallLedger, call_id: str, finish: CallFinish) -> CallRecord:
    os._exit(CRASH_EXIT_CODE)


async def call(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    spec = AgentSpec.model_validate(request["spec"])
    executor = build_executor(platform, request["workspace_id"], request["agent_id"], spec)
    arguments = request["arguments"]
    confirmations = (
        (Confirmation.for_call(request["tool"], arguments, "msg_customer_yes"),)
        if request.get("confirm")
        else ()
    )
    ctx = CallContext(
        workspace_id=request["workspace_id"],
        agent_id=request["agent_id"],
        conversation_id=request["conversation_id"],
        step_key=request["step_key"],
        confirmations=confirmations,
    )
    try:
        result = await executor.call(ctx, request["tool"], arguments)
    finally:
        await executor.aclose()
    return {
        "status": result.status,
        "code": result.code,
        "message": result.message,
        "output": result.output,
        "replayed": result.replayed,
        "attempts": result.attempts,
        "call_id": result.call_id,
    }


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    if request.get("crash_after_send"):
        SqlCallLedger.finish = _die  # type: ignore[method-assign]
    platform = Platform.open(load_settings())
    try:
        print(json.dumps(asyncio.run(call(platform, request))))
    finally:
        platform.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
