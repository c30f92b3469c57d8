"""Tool sources (OpenAPI documents, MCP servers, webhook credentials), their operations, spec
entries generated from them, and the audit trail of an agent's tool calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.domain.resources import ErrorBody
from deputy.services import tool_ledger, tool_sources

router = APIRouter(tags=["tools"])
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The MCP server cannot be reached"}
}


@router.post("/tool-sources", status_code=status.HTTP_201_CREATED, response_model=r.ToolSource)
def create_source(
    body: r.ToolSourceCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.ToolSource:
    """Register a tool source: an OpenAPI document (inline or an uploaded material) with its base
    URL, an MCP server (stdio: only commands the operator allows; or HTTP), or webhook
    credentials. `auth` is stored encrypted and never returned."""
    return tool_sources.create_source(platform, principal, body)


@router.get("/tool-sources", response_model=r.Page[r.ToolSource])
def list_sources(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.ToolSource]:
    return tool_sources.list_sources(platform, principal, limit=limit, cursor=cursor)


@router.get("/tool-sources/{source_id}", response_model=r.ToolSource)
def get_source(source_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.ToolSource:
    return tool_sources.get_source(platform, principal, source_id)


@router.patch("/tool-sources/{source_id}", response_model=r.ToolSource)
def update_source(
    source_id: str, body: r.ToolSourceUpdate, platform: PlatformDep, principal: PrincipalDep
) -> r.ToolSource:
    """Change a source; `auth` rotates its credentials."""
    return tool_sources.update_source(platform, principal, source_id, body)


@router.delete("/tool-sources/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_source(source_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    tool_sources.delete_source(platform, principal, source_id)


@router.get(
    "/tool-sources/{source_id}/tools",
    response_model=r.ToolSourceOperations,
    responses=UNAVAILABLE,
)
async def source_operations(
    source_id: str, platform: PlatformDep, principal: PrincipalDep
) -> r.ToolSourceOperations:
    """The operations the source offers, as tool definitions (arguments schema, inferred
    effect)."""
    return await tool_sources.source_operations(platform, principal, source_id)


@router.post(
    "/tool-sources/{source_id}/spec-tools", response_model=r.SpecTools, responses=UNAVAILABLE
)
async def spec_tools(
    source_id: str, body: r.SpecToolsRequest, platform: PlatformDep, principal: PrincipalDep
) -> r.SpecTools:
    """AgentSpec `tools` entries for the chosen operations (default: all), ready to paste."""
    return await tool_sources.spec_tools(platform, principal, source_id, body)


@router.get("/agents/{agent_id}/tool-calls", response_model=r.Page[r.ToolCallInfo])
def list_tool_calls(
    agent_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    conversation_id: Annotated[
        str | None, Query(max_length=100, description="Only this conversation's calls.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.ToolCallInfo]:
    """The agent's recorded tool calls, newest first: arguments, outcome, redacted request and
    response, timings and attempts."""
    return tool_ledger.list_tool_calls(
        platform, principal, agent_id, conversation_id=conversation_id, limit=limit, cursor=cursor
    )
