from __future__ import annotations

from fastapi import APIRouter, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.services import workspaces as svc

router = APIRouter(tags=["workspaces"])


@router.post("/workspaces", status_code=status.HTTP_201_CREATED, response_model=r.CreatedWorkspace)
def create_workspace(
    body: r.WorkspaceCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.CreatedWorkspace:
    """Create a workspace with its owner; the owner's key is in the response, shown once."""
    return svc.create_workspace(platform, principal, body)


@router.get("/workspace", response_model=r.Workspace)
def get_workspace(platform: PlatformDep, principal: PrincipalDep) -> r.Workspace:
    """The caller's workspace."""
    return svc.get_workspace(platform, principal)


@router.patch("/workspace", response_model=r.Workspace)
def update_workspace(
    body: r.WorkspaceUpdate, platform: PlatformDep, principal: PrincipalDep
) -> r.Workspace:
    return svc.update_workspace(platform, principal, body)


@router.post("/members", status_code=status.HTTP_201_CREATED, response_model=r.Member)
def add_member(body: r.MemberCreate, platform: PlatformDep, principal: PrincipalDep) -> r.Member:
    return svc.add_member(platform, principal, body)


@router.get("/members", response_model=r.Page[r.Member])
def list_members(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.Member]:
    return svc.list_members(platform, principal, limit=limit, cursor=cursor)


@router.get("/members/{member_id}", response_model=r.Member)
def get_member(member_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.Member:
    return svc.get_member(platform, principal, member_id)


@router.patch("/members/{member_id}", response_model=r.Member)
def update_member(
    member_id: str, body: r.MemberUpdate, platform: PlatformDep, principal: PrincipalDep
) -> r.Member:
    return svc.update_member(platform, principal, member_id, body)


@router.delete("/members/{member_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(member_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    """Remove a member and revoke their keys."""
    svc.remove_member(platform, principal, member_id)
