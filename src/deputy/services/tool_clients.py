"""Stored tool sources turned into live clients, and the executor an agent's tool calls go
through (`build_executor`): real clients with decrypted credentials and the SQL call ledger."""

from __future__ import annotations

import logging

from sqlalchemy import select

from deputy.domain.errors import DeputyError, NotFound
from deputy.domain.spec import AgentSpec, HTTPBinding, MCPBinding, OpenAPIBinding, Tool
from deputy.domain.tenancy import Principal
from deputy.services.access import require
from deputy.services.platform import Platform
from deputy.services.tool_builtins import PlatformBuiltins
from deputy.services.tool_ledger import SqlCallLedger
from deputy.services.tool_source_config import SourceSecrets, mcp_server, openapi_document
from deputy.store import tables as t
from deputy.tools.base import ToolSourceClient
from deputy.tools.builtins import BuiltinHandlers
from deputy.tools.checks import source_key
from deputy.tools.executor import ToolExecutor
from deputy.tools.mcp import MCPClient
from deputy.tools.openapi import OpenAPIClient
from deputy.tools.webhook import WebhookClient

log = logging.getLogger("deputy.tools")


def _honours(row: t.ToolSource) -> bool | None:
    value = row.config.get("honours")
    return value if isinstance(value, bool) else None


def source_client(
    platform: Platform, row: t.ToolSource, secrets: SourceSecrets | None = None
) -> ToolSourceClient:
    """A client for an OpenAPI or MCP source (http sources are per-webhook: `webhook_client`)."""
    secrets = secrets or SourceSecrets.decrypt(
        platform.secrets, row.credentials_encrypted, row.name
    )
    if row.kind == "openapi":
        return OpenAPIClient(
            openapi_document(row.config["document"]),
            row.config["base_url"],
            secrets.auth_config(),
            honours_idempotency_keys=_honours(row),
        )
    if row.kind == "mcp":
        server = mcp_server(row.config["transport"], secrets, platform.settings)
        return MCPClient(server, honours_idempotency_keys=bool(_honours(row)))
    raise ValueError(f"a {row.kind} source has no client of its own")


def webhook_client(
    tool: Tool, binding: HTTPBinding, row: t.ToolSource | None, secrets: SourceSecrets
) -> WebhookClient | None:
    """The client of one webhook tool; None when its URL is outside its source's `base_url`
    (credentials are only ever sent where the source allows)."""
    base_url = row.config.get("base_url") if row is not None else None
    if base_url and not (binding.url == base_url or binding.url.startswith(base_url + "/")):
        log.warning(
            "webhook outside its source's base URL",
            extra={"tool": tool.name, "source": binding.source},
        )
        return None
    return WebhookClient(
        binding.method,
        binding.url,
        secrets.auth_config(),
        operation=tool.name,
        description=tool.description,
        input_schema=dict(tool.parameters) if tool.parameters is not None else None,
        effect=tool.effect,
        honours_idempotency_keys=bool(row is not None and _honours(row)),
    )


def build_executor(
    platform: Platform,
    principal_or_workspace: Principal | str,
    agent_id: str,
    spec: AgentSpec,
    *,
    builtins: BuiltinHandlers | None = None,
    agent_version: int | None = None,
) -> ToolExecutor:
    """The executor for `agent_id` running `spec`: a client per source its tools bind (with
    decrypted credentials), the SQL ledger of the workspace. A principal needs
    `conversations:write` (a channel key only for its own agent); a bare workspace id is for the
    platform's own runtime. A tool whose source is missing, of the wrong kind or outside its
    allowed URL is left without a client: the executor refuses it as `unavailable`. Built-ins
    default to the platform's (`PlatformBuiltins`: the agent's own knowledge index)."""
    if isinstance(principal_or_workspace, Principal):
        principal = principal_or_workspace
        require(principal, "conversations:write")
        if principal.agent_id is not None and principal.agent_id != agent_id:
            raise NotFound("agent", agent_id)
        workspace_id = principal.workspace_id
    else:
        workspace_id = principal_or_workspace
    wanted = {
        tool.binding.source
        for tool in spec.tools
        if isinstance(tool.binding, OpenAPIBinding | MCPBinding | HTTPBinding)
        and tool.binding.source is not None
    }
    with platform.db.tenant_session(workspace_id) as session:
        if session.scalar(select(t.Agent.id).where(t.Agent.id == agent_id)) is None:
            raise NotFound("agent", agent_id)
        rows = {
            row.name: row
            for row in session.scalars(select(t.ToolSource).where(t.ToolSource.name.in_(wanted)))
        }
    decrypted = {
        name: SourceSecrets.decrypt(platform.secrets, row.credentials_encrypted, name)
        for name, row in rows.items()
    }
    sources: dict[str, ToolSourceClient] = {}
    secrets: dict[str, tuple[str, ...]] = {}
    for tool in spec.tools:
        binding = tool.binding
        key = source_key(tool)
        if key is None or key in sources:
            continue
        if isinstance(binding, HTTPBinding):
            row = rows.get(binding.source) if binding.source else None
            if binding.source is not None and (row is None or row.kind != "http"):
                continue
            found = decrypted.get(binding.source or "", SourceSecrets())
            webhook = webhook_client(tool, binding, row, found)
            if webhook is not None:
                sources[key] = webhook
                secrets[key] = found.values()
            continue
        assert isinstance(binding, OpenAPIBinding | MCPBinding)
        row = rows.get(binding.source)
        if row is None or row.kind != binding.kind:
            log.warning("tool source missing", extra={"tool": tool.name, "source": key})
            continue
        try:
            sources[key] = source_client(platform, row, decrypted[binding.source])
        except DeputyError as exc:  # e.g. an MCP command the operator no longer allows
            log.warning("tool source unusable: %s", exc.message, extra={"source": key})
            continue
        secrets[key] = decrypted[binding.source].values()
    platform_builtins = PlatformBuiltins(platform.knowledge, platform.db, spec)
    return ToolExecutor(
        spec,
        sources,
        SqlCallLedger(platform.db, workspace_id),
        builtins if builtins is not None else platform_builtins,
        agent_version=agent_version,
        secrets=secrets,
    )
