"""API keys: created with a secret shown once, stored as a SHA-256 hash, scoped, revocable.

A key's token is `dpy_<key id>_<secret>`; the id locates the row and the secret is compared in
constant time against the stored hash. A member key's power is its scopes intersected with its
member's current role, so demoting a member takes effect on the next request. A widget session's
token (`dpw_…`, `deputy.services.widget_sessions`) authenticates too, for its one conversation.
A channel key holding `widget:sessions` (the key published in web pages) holds nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import InvalidRequest, NotFound, PermissionDenied, Unauthenticated
from deputy.domain.ids import is_id, new_id
from deputy.domain.tenancy import (
    CHANNEL_KEY_SCOPES,
    ROLE_SCOPES,
    WIDGET_KEY_SCOPES,
    WIDGET_SCOPE,
    KeyKind,
    Principal,
    Role,
    Scope,
)
from deputy.services import audit
from deputy.services.access import require, tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.widget_sessions import SESSION_TOKEN_PREFIX, session_principal
from deputy.store import tables as t

TOKEN_PREFIX = "dpy_"  # noqa: S105 - a public prefix, not a secret
LAST_USED_RESOLUTION = timedelta(seconds=60)
OPERATOR_SCOPES: frozenset[Scope] = frozenset({"workspaces:create"})


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _make_token(key_id: str) -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}{key_id}_{secret}", hash_secret(secret)


def _parse_token(token: str) -> tuple[str, str]:
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("malformed API key")
    kind, _, rest = token[len(TOKEN_PREFIX) :].partition("_")
    body, _, secret = rest.partition("_")
    key_id = f"{kind}_{body}"
    if not is_id(key_id, "key") or not secret:
        raise Unauthenticated("malformed API key")
    return key_id, secret


def grantable_scopes(
    kind: KeyKind, role: Role | None, key_scopes: frozenset[str]
) -> frozenset[Scope]:
    """What a key of `kind` may actually do given the member's role (if any)."""
    if kind == "channel":
        # a widget key (published in web pages) has `widget:sessions` and nothing else
        widget_only = WIDGET_SCOPE in key_scopes and not key_scopes & CHANNEL_KEY_SCOPES
        limit = WIDGET_KEY_SCOPES if widget_only else CHANNEL_KEY_SCOPES
    elif kind == "service":
        limit = ROLE_SCOPES["owner"]
    else:
        if role is None:
            return frozenset()
        limit = ROLE_SCOPES[role] | (OPERATOR_SCOPES if role == "owner" else frozenset())
    return frozenset(s for s in limit if s in key_scopes)


def to_info(row: t.ApiKey) -> r.ApiKeyInfo:
    return r.ApiKeyInfo.model_validate(row)


def insert_key(
    session: Session,
    *,
    workspace_id: str,
    kind: KeyKind,
    name: str,
    scopes: frozenset[Scope],
    member_id: str | None = None,
    agent_id: str | None = None,
    expires_at: datetime | None = None,
    created_by_key_id: str | None = None,
) -> r.CreatedApiKey:
    key_id = new_id("key")
    token, secret_hash = _make_token(key_id)
    row = t.ApiKey(
        id=key_id,
        workspace_id=workspace_id,
        kind=kind,
        name=name,
        member_id=member_id,
        agent_id=agent_id,
        scopes=sorted(scopes),
        secret_hash=secret_hash,
        expires_at=expires_at,
        created_by_key_id=created_by_key_id,
    )
    session.add(row)
    session.flush()
    return r.CreatedApiKey(key=to_info(row), secret=token)


def authenticate(platform: Platform, token: str) -> Principal:
    if token.startswith(SESSION_TOKEN_PREFIX):
        return session_principal(platform, token)
    key_id, secret = _parse_token(token)
    now = datetime.now(UTC)
    with platform.db.session() as session:
        row = session.get(t.ApiKey, key_id)
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
            raise Unauthenticated("unknown API key")
        if row.revoked_at is not None:
            raise Unauthenticated("this API key has been revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("this API key has expired")
        role: Role | None = None
        if row.member_id is not None:
            member = session.get(t.Member, row.member_id)
            if member is None:
                raise Unauthenticated("the member of this API key no longer exists")
            role = member.role  # type: ignore[assignment]
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            session.execute(update(t.ApiKey).where(t.ApiKey.id == key_id).values(last_used_at=now))
        return Principal(
            workspace_id=row.workspace_id,
            key_id=row.id,
            key_kind=row.kind,  # type: ignore[arg-type]
            scopes=grantable_scopes(row.kind, role, frozenset(row.scopes)),  # type: ignore[arg-type]
            member_id=row.member_id,
            role=role,
            agent_id=row.agent_id,
        )


def create_key(platform: Platform, principal: Principal, body: r.KeyCreate) -> r.CreatedApiKey:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise InvalidRequest("expires_at must include a time zone", details={"field": "expires_at"})
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise InvalidRequest("expires_at is in the past", details={"field": "expires_at"})
    with tenant(platform, principal, "keys:write") as session:
        member_id: str | None = None
        agent_id: str | None = None
        role: Role | None = None
        if body.kind == "member":
            member_id = body.member_id or principal.member_id
            if member_id is None:
                raise InvalidRequest("member keys need member_id", details={"field": "member_id"})
            if member_id != principal.member_id:
                require(principal, "members:write")
            member = session.scalar(select(t.Member).where(t.Member.id == member_id))
            if member is None:
                raise NotFound("member", member_id)
            role = member.role  # type: ignore[assignment]
        elif body.member_id is not None:
            raise InvalidRequest(
                f"{body.kind} keys belong to no member", details={"field": "member_id"}
            )
        if body.kind == "channel":
            if body.agent_id is None:
                raise InvalidRequest("channel keys need agent_id", details={"field": "agent_id"})
            if session.scalar(select(t.Agent.id).where(t.Agent.id == body.agent_id)) is None:
                raise NotFound("agent", body.agent_id)
            agent_id = body.agent_id
        elif body.agent_id is not None:
            raise InvalidRequest(
                "only channel keys are bound to an agent", details={"field": "agent_id"}
            )
        asked = frozenset(body.scopes) if body.scopes is not None else None
        widget = asked is not None and WIDGET_SCOPE in asked
        if widget and (body.kind != "channel" or asked != WIDGET_KEY_SCOPES):
            raise InvalidRequest(
                f"{WIDGET_SCOPE!r} is for a channel key published in web pages, which holds no "
                "other scope",
                details={"field": "scopes"},
            )
        granting = principal.scopes if asked is None else principal.scopes & asked
        possible = grantable_scopes(body.kind, role, frozenset(granting))
        requested = asked if asked is not None else possible
        beyond = sorted(requested - possible)
        if beyond:
            raise PermissionDenied(
                "a key cannot be given scopes its creator or its holder does not have",
                details={"scopes": beyond},
            )
        created = insert_key(
            session,
            workspace_id=principal.workspace_id,
            kind=body.kind,
            name=body.name,
            scopes=requested,
            member_id=member_id,
            agent_id=agent_id,
            expires_at=body.expires_at,
            created_by_key_id=principal.key_id,
        )
        audit.record_by(
            session,
            principal,
            "key.created",
            "key",
            created.key.id,
            {
                "kind": body.kind,
                "name": body.name,
                "scopes": sorted(requested),
                "member": member_id,
                "agent": agent_id,
                "expires_at": body.expires_at.isoformat() if body.expires_at else None,
            },
        )
        return created


def list_keys(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[r.ApiKeyInfo]:
    with tenant(platform, principal, "keys:read") as session:
        return paginate(
            session, select(t.ApiKey), t.ApiKey.id, limit=limit, cursor=cursor, to_resource=to_info
        )


def _get_row(session: Session, key_id: str) -> t.ApiKey:
    row = session.scalar(select(t.ApiKey).where(t.ApiKey.id == key_id))
    if row is None:
        raise NotFound("key", key_id)
    return row


def get_key(platform: Platform, principal: Principal, key_id: str) -> r.ApiKeyInfo:
    with tenant(platform, principal, "keys:read") as session:
        return to_info(_get_row(session, key_id))


def revoke_key(platform: Platform, principal: Principal, key_id: str) -> r.ApiKeyInfo:
    with tenant(platform, principal, "keys:write") as session:
        row = _get_row(session, key_id)
        if row.member_id is not None and row.member_id != principal.member_id:
            require(principal, "members:write")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.flush()
            audit.record_by(
                session,
                principal,
                "key.revoked",
                "key",
                row.id,
                {"kind": row.kind, "name": row.name, "member": row.member_id},
            )
        session.flush()
        return to_info(row)
