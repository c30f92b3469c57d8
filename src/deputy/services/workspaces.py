"""Workspaces (tenants), their members and the first-start bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.billing.seats import meter_seat
from deputy.domain import resources as r
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.tenancy import ALL_SCOPES, ROLE_SCOPES, Principal
from deputy.services import audit
from deputy.services.access import require, tenant
from deputy.services.keys import insert_key
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t


def _new_workspace(
    session: Session, body: r.WorkspaceCreate, *, operator: bool
) -> r.CreatedWorkspace:
    workspace = t.Workspace(id=new_id("ws"), name=body.name)
    session.add(workspace)
    session.flush()
    owner = t.Member(
        id=new_id("mem"),
        workspace_id=workspace.id,
        email=str(body.owner_email).lower(),
        name=body.owner_name,
        role="owner",
    )
    session.add(owner)
    session.flush()
    meter_seat(session, owner)
    scopes = ALL_SCOPES if operator else ROLE_SCOPES["owner"]
    key = insert_key(
        session,
        workspace_id=workspace.id,
        kind="member",
        name="owner key" + (" (platform operator)" if operator else ""),
        scopes=scopes,
        member_id=owner.id,
    )
    return r.CreatedWorkspace(
        workspace=r.Workspace.model_validate(workspace),
        owner=r.Member.model_validate(owner),
        owner_key=key,
    )


def create_workspace(
    platform: Platform, principal: Principal, body: r.WorkspaceCreate
) -> r.CreatedWorkspace:
    require(principal, "workspaces:create")
    with platform.db.session() as session:
        return _new_workspace(session, body, operator=False)


@dataclass(frozen=True)
class Bootstrap:
    created: r.CreatedWorkspace | None  # None when the platform was already bootstrapped


def bootstrap(
    platform: Platform,
    *,
    name: str = "Default workspace",
    owner_email: str = "owner@localhost.localdomain",
    owner_name: str = "Owner",
) -> Bootstrap:
    """First start: create a workspace and an owner key (the platform operator's), exactly once."""
    with platform.db.session() as session:
        if platform.db.engine.dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(7317002)))
        if session.scalar(select(func.count()).select_from(t.Workspace)):
            return Bootstrap(created=None)
        body = r.WorkspaceCreate(name=name, owner_email=owner_email, owner_name=owner_name)
        return Bootstrap(created=_new_workspace(session, body, operator=True))


def get_workspace(platform: Platform, principal: Principal) -> r.Workspace:
    with tenant(platform, principal, "workspace:read") as session:
        row = session.get(t.Workspace, principal.workspace_id)
        if row is None:
            raise NotFound("workspace", principal.workspace_id)
        return r.Workspace.model_validate(row)


def update_workspace(
    platform: Platform, principal: Principal, body: r.WorkspaceUpdate
) -> r.Workspace:
    with tenant(platform, principal, "workspace:admin") as session:
        row = session.get(t.Workspace, principal.workspace_id)
        if row is None:
            raise NotFound("workspace", principal.workspace_id)
        if body.name is not None:
            row.name = body.name
        if "default_model" in body.model_fields_set:
            row.default_model = body.default_model
        session.flush()
        return r.Workspace.model_validate(row)


# ---- members ------------------------------------------------------------------------------


def _member(session: Session, member_id: str) -> t.Member:
    row = session.scalar(select(t.Member).where(t.Member.id == member_id))
    if row is None:
        raise NotFound("member", member_id)
    return row


def _owners(session: Session) -> int:
    return (
        session.scalar(select(func.count()).select_from(t.Member).where(t.Member.role == "owner"))
        or 0
    )


def add_member(platform: Platform, principal: Principal, body: r.MemberCreate) -> r.Member:
    with tenant(platform, principal, "members:write") as session:
        email = str(body.email).lower()
        if session.scalar(select(t.Member.id).where(t.Member.email == email)):
            raise Conflict(f"{email} is already a member", details={"email": email})
        row = t.Member(
            id=new_id("mem"),
            workspace_id=principal.workspace_id,
            email=email,
            name=body.name,
            role=body.role,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent add of the same email
            raise Conflict(f"{email} is already a member", details={"email": email}) from exc
        audit.record_by(
            session, principal, "member.added", "member", row.id, {"email": email, "role": row.role}
        )
        meter_seat(session, row)
        return r.Member.model_validate(row)


def list_members(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[r.Member]:
    with tenant(platform, principal, "members:read") as session:
        return paginate(
            session,
            select(t.Member),
            t.Member.id,
            limit=limit,
            cursor=cursor,
            to_resource=r.Member.model_validate,
        )


def get_member(platform: Platform, principal: Principal, member_id: str) -> r.Member:
    with tenant(platform, principal, "members:read") as session:
        return r.Member.model_validate(_member(session, member_id))


def update_member(
    platform: Platform, principal: Principal, member_id: str, body: r.MemberUpdate
) -> r.Member:
    with tenant(platform, principal, "members:write") as session:
        row = _member(session, member_id)
        if body.role is not None and body.role != row.role:
            if row.role == "owner" and _owners(session) <= 1:
                raise Conflict("a workspace keeps at least one owner")
            audit.record_by(
                session,
                principal,
                "member.role_changed",
                "member",
                row.id,
                {"email": row.email, "from": row.role, "to": body.role},
            )
            row.role = body.role
        if body.name is not None:
            row.name = body.name
        session.flush()
        return r.Member.model_validate(row)


def remove_member(platform: Platform, principal: Principal, member_id: str) -> None:
    """Remove a member; their keys are revoked with them (kept for the audit trail)."""
    with tenant(platform, principal, "members:write") as session:
        row = _member(session, member_id)
        if row.role == "owner" and _owners(session) <= 1:
            raise Conflict("a workspace keeps at least one owner")
        now = datetime.now(UTC)
        keys = session.scalars(select(t.ApiKey).where(t.ApiKey.member_id == member_id)).all()
        for key in keys:
            if key.revoked_at is None:
                audit.record_by(
                    session,
                    principal,
                    "key.revoked",
                    "key",
                    key.id,
                    {
                        "kind": key.kind,
                        "name": key.name,
                        "member": member_id,
                        "member_removed": True,
                    },
                )
            key.revoked_at = key.revoked_at or now
            key.member_id = None
        audit.record_by(
            session,
            principal,
            "member.removed",
            "member",
            member_id,
            {"email": row.email, "role": row.role, "keys_revoked": len(keys)},
        )
        session.flush()
        session.delete(row)
        session.flush()
