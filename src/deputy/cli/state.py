"""What every client command shares: where the server is, which key, and the SDK client.

Tests inject an in-process transport through `CliState` (`CliRunner.invoke(app, args,
obj=CliState(transport=...))`); nothing here is patched at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import typer

from deputy.cli.output import EXIT_NOT_FOUND, fail
from deputy.domain.ids import is_id
from deputy.sdk import DeputyClient, RetryPolicy


@dataclass
class CliState:
    url: str | None = None
    api_key: str | None = None
    timeout: float = 30.0
    transport: httpx.BaseTransport | None = None
    retry: RetryPolicy | None = None

    def client(
        self, *, url: str | None = None, api_key: str | None = None, require_key: bool = True
    ) -> DeputyClient:
        return DeputyClient(
            url or self.url,
            api_key or self.api_key,
            timeout=self.timeout,
            transport=self.transport,
            retry=self.retry,
            require_key=require_key,
        )


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def client(ctx: typer.Context) -> DeputyClient:
    """The SDK client for this invocation, closed when the command ends."""
    sdk = state(ctx).client()
    ctx.find_root().call_on_close(sdk.close)
    return sdk


def agent_id_of(sdk: DeputyClient, agent: str) -> str:
    """An agent id as given, or the id of the agent named `agent` (exits when none is)."""
    if is_id(agent, "agt"):
        return agent
    for found in sdk.agents.iter_all():
        if found.name == agent:
            return found.id
    raise fail(f"no agent is named {agent!r}", EXIT_NOT_FOUND)
