from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep, VersionNumber
from deputy.domain import resources as r
from deputy.services import agents as svc

router = APIRouter(tags=["agents"])


@router.post("/agents", status_code=status.HTTP_201_CREATED, response_model=r.Agent)
def create_agent(body: r.AgentCreate, platform: PlatformDep, principal: PrincipalDep) -> r.Agent:
    return svc.create_agent(platform, principal, body)


@router.get("/agents", response_model=r.Page[r.Agent])
def list_agents(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.Agent]:
    return svc.list_agents(platform, principal, limit=limit, cursor=cursor)


@router.get("/agents/{agent_id}", response_model=r.Agent)
def get_agent(agent_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.Agent:
    return svc.get_agent(platform, principal, agent_id)


@router.patch("/agents/{agent_id}", response_model=r.Agent)
def update_agent(
    agent_id: str, body: r.AgentUpdate, platform: PlatformDep, principal: PrincipalDep
) -> r.Agent:
    """Change an agent's description or the model it runs on."""
    return svc.update_agent(platform, principal, agent_id, body)


@router.post(
    "/agents/{agent_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=r.AgentVersion,
)
def create_version(
    agent_id: str, body: r.VersionCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.AgentVersion:
    """Validate a spec and store it as the agent's next immutable version."""
    return svc.create_version(platform, principal, agent_id, body)


@router.get("/agents/{agent_id}/versions", response_model=r.Page[r.AgentVersion])
def list_versions(
    agent_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.AgentVersion]:
    return svc.list_versions(platform, principal, agent_id, limit=limit, cursor=cursor)


@router.get("/agents/{agent_id}/versions/{number}", response_model=r.AgentVersion)
def get_version(
    agent_id: str, number: VersionNumber, platform: PlatformDep, principal: PrincipalDep
) -> r.AgentVersion:
    return svc.get_version(platform, principal, agent_id, number)


@router.get("/agents/{agent_id}/versions/{number}/diff", response_model=r.VersionDiff)
def diff_versions(
    agent_id: str,
    number: VersionNumber,
    platform: PlatformDep,
    principal: PrincipalDep,
    against: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="The version to compare with (default: number - 1)."),
    ] = None,
) -> r.VersionDiff:
    """What changed from version `against` to version `number`: each change with its values
    before and after and whether it widens what the agent may do, and the text a reviewer
    reads (widening changes first)."""
    return svc.diff_versions(platform, principal, agent_id, number, against)
