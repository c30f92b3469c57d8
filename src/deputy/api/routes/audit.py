"""The workspace's audit log: every decision, deployment, rollback and permission change,
append-only, each entry hashing the one before; and the check of that chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.services import audit as svc

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=r.Page[lc.AuditEntry])
def list_entries(
    platform: PlatformDep,
    principal: PrincipalDep,
    action: Annotated[lc.AuditAction | None, Query(description="Only this action.")] = None,
    subject_id: Annotated[
        str | None, Query(max_length=60, description="Only entries about this subject.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[lc.AuditEntry]:
    """The audit log, newest first (`audit:read`)."""
    return svc.list_entries(
        platform, principal, limit=limit, cursor=cursor, action=action, subject_id=subject_id
    )


@router.get("/audit/verify", response_model=lc.AuditVerification)
def verify(platform: PlatformDep, principal: PrincipalDep) -> lc.AuditVerification:
    """Check the whole chain from its first entry: `ok`, the number of entries and the head
    hash (anchor it elsewhere to detect a rewritten log); otherwise the first entry that does
    not check and why."""
    return svc.verify(platform, principal)
