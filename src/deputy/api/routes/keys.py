from __future__ import annotations

from fastapi import APIRouter, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.services import keys as svc

router = APIRouter(tags=["keys"])


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=r.CreatedApiKey)
def create_key(
    body: r.KeyCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.CreatedApiKey:
    """Create a member, service or channel key. The secret is in this response only."""
    return svc.create_key(platform, principal, body)


@router.get("/keys", response_model=r.Page[r.ApiKeyInfo])
def list_keys(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[r.ApiKeyInfo]:
    return svc.list_keys(platform, principal, limit=limit, cursor=cursor)


@router.get("/keys/{key_id}", response_model=r.ApiKeyInfo)
def get_key(key_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.ApiKeyInfo:
    return svc.get_key(platform, principal, key_id)


@router.post("/keys/{key_id}/revoke", response_model=r.ApiKeyInfo)
def revoke_key(key_id: str, platform: PlatformDep, principal: PrincipalDep) -> r.ApiKeyInfo:
    """Revoke a key at once; it stays listed with its revocation time."""
    return svc.revoke_key(platform, principal, key_id)
