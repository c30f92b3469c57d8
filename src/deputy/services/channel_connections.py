"""Channel connections: an agent's accounts on email, messaging platforms and the phone.

Creating, changing and removing one needs `agents:write`; reading one `agents:read`. Secrets
are encrypted before they reach the database and only their names are ever returned.

Inbound traffic carries no API key: a webhook names its connection in the URL and proves
itself with the platform's signature. `load_connection` finds the connection without a
principal (the only unscoped read here), and `channel_principal` is who then acts: a
channel principal of the connection's workspace, bound to its agent, that may only talk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from deputy.domain import channels as c
from deputy.domain.errors import Conflict, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.resources import Page
from deputy.domain.tenancy import CHANNEL_KEY_SCOPES, Principal
from deputy.services.access import tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.tool_source_config import problems
from deputy.store import tables as t
from deputy.store.tables import utcnow

INBOUND_PREFIX = "/v1/channels"


@dataclass(frozen=True)
class LoadedConnection:
    """A connection as an adapter needs it: settings parsed, secrets decrypted (never log
    them). `principal` acts for the connection's agent."""

    id: str
    workspace_id: str
    agent_id: str
    kind: c.ChannelKind
    name: str
    config: c.KindConfig
    secrets: dict[str, str]
    enabled: bool

    @property
    def principal(self) -> Principal:
        return channel_principal(self.workspace_id, self.id, self.agent_id)

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name) or None


def channel_principal(workspace_id: str, connection_id: str, agent_id: str) -> Principal:
    """Who acts for inbound traffic on a connection: it may only talk, to its agent."""
    return Principal(
        workspace_id=workspace_id,
        key_id=f"channel:{connection_id}",
        key_kind="channel",
        scopes=CHANNEL_KEY_SCOPES,
        agent_id=agent_id,
    )


def inbound_path(connection_id: str, kind: str) -> str:
    return f"{INBOUND_PREFIX}/{connection_id}/{'voice' if kind == 'voice' else 'webhook'}"


def parse_config(kind: c.ChannelKind, raw: dict[str, Any]) -> c.KindConfig:
    try:
        return c.KIND_CONFIGS[kind].model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            f"the {kind} connection's settings are not valid",
            details={"errors": problems(exc)},
        ) from None


def _merge_secrets(
    kind: c.ChannelKind, current: dict[str, str], given: dict[str, str]
) -> dict[str, str]:
    unknown = sorted(set(given) - c.KIND_SECRETS[kind])
    if unknown:
        raise ValidationFailed(
            f"a {kind} connection has no secret named {', '.join(unknown)}",
            details={"unknown": unknown, "allowed": sorted(c.KIND_SECRETS[kind])},
        )
    merged = {**current, **given}
    merged = {name: value for name, value in merged.items() if value}
    missing = sorted(c.REQUIRED_SECRETS[kind] - set(merged))
    if missing:
        raise ValidationFailed(
            f"a {kind} connection needs the secrets {', '.join(missing)}",
            details={"missing": missing},
        )
    return merged


def _decrypt(platform: Platform, row: t.ChannelConnectionRow) -> dict[str, str]:
    if not row.secrets_encrypted:
        return {}
    loaded: dict[str, str] = json.loads(platform.secrets.decrypt(row.secrets_encrypted))
    return loaded


def _encrypt(platform: Platform, secrets: dict[str, str]) -> str | None:
    return platform.secrets.encrypt(json.dumps(secrets, sort_keys=True)) if secrets else None


def _resource(row: t.ChannelConnectionRow) -> c.ChannelConnection:
    return c.ChannelConnection(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        kind=row.kind,
        name=row.name,
        config=row.config,
        secrets_set=sorted(row.secret_names),
        enabled=row.enabled,
        inbound_path=inbound_path(row.id, row.kind),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(session: Any, connection_id: str) -> t.ChannelConnectionRow:
    row = session.get(t.ChannelConnectionRow, connection_id)
    if row is None:
        raise NotFound("channel connection", connection_id)
    found: t.ChannelConnectionRow = row
    return found


def create_connection(
    platform: Platform, principal: Principal, body: c.ChannelConnectionCreate
) -> c.ChannelConnection:
    config = parse_config(body.kind, body.config)
    secrets = _merge_secrets(body.kind, {}, body.secrets)
    conflict = Conflict(f"a channel connection named {body.name!r} exists", details={})
    try:
        with tenant(platform, principal, "agents:write") as session:
            if session.get(t.Agent, body.agent_id) is None:
                raise NotFound("agent", body.agent_id)
            taken = select(t.ChannelConnectionRow.id).where(
                t.ChannelConnectionRow.name == body.name
            )
            if session.scalar(taken):
                raise conflict
            row = t.ChannelConnectionRow(
                id=new_id("chn"),
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                kind=body.kind,
                name=body.name,
                config=config.model_dump(mode="json"),
                secrets_encrypted=_encrypt(platform, secrets),
                secret_names=sorted(secrets),
                enabled=True,
            )
            session.add(row)
            session.flush()
            return _resource(row)
    except IntegrityError as exc:
        raise conflict from exc


def list_connections(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[c.ChannelConnection]:
    query = select(t.ChannelConnectionRow)
    if agent_id is not None:
        query = query.where(t.ChannelConnectionRow.agent_id == agent_id)
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            query,
            t.ChannelConnectionRow.id,
            limit=limit,
            cursor=cursor,
            to_resource=_resource,
        )


def get_connection(
    platform: Platform, principal: Principal, connection_id: str
) -> c.ChannelConnection:
    with tenant(platform, principal, "agents:read") as session:
        return _resource(_row(session, connection_id))


def update_connection(
    platform: Platform, principal: Principal, connection_id: str, body: c.ChannelConnectionUpdate
) -> c.ChannelConnection:
    with tenant(platform, principal, "agents:write") as session:
        row = _row(session, connection_id)
        kind: c.ChannelKind = row.kind  # type: ignore[assignment]
        if body.config is not None:
            row.config = parse_config(kind, body.config).model_dump(mode="json")
        if body.secrets:
            secrets = _merge_secrets(kind, _decrypt(platform, row), body.secrets)
            row.secrets_encrypted = _encrypt(platform, secrets)
            row.secret_names = sorted(secrets)
        if body.enabled is not None:
            row.enabled = body.enabled
        row.updated_at = utcnow()
        session.flush()
        return _resource(row)


def delete_connection(platform: Platform, principal: Principal, connection_id: str) -> None:
    """Remove a connection; its conversations stay (their channel bookkeeping goes)."""
    with tenant(platform, principal, "agents:write") as session:
        row = _row(session, connection_id)
        for table in (
            t.ChannelOutboxRow,
            t.ChannelInboundRow,
            t.ChannelThread,
            t.ChannelBinding,
        ):
            for item in session.scalars(select(table).where(table.connection_id == row.id)):
                session.delete(item)
        session.flush()
        session.delete(row)


def _loaded(platform: Platform, row: t.ChannelConnectionRow) -> LoadedConnection:
    kind: c.ChannelKind = row.kind  # type: ignore[assignment]
    return LoadedConnection(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        kind=kind,
        name=row.name,
        config=c.KIND_CONFIGS[kind].model_validate(row.config),
        secrets=_decrypt(platform, row),
        enabled=row.enabled,
    )


def load_connection(
    platform: Platform, connection_id: str, kind: c.ChannelKind | tuple[c.ChannelKind, ...]
) -> LoadedConnection:
    """The enabled connection a webhook names, of the kind(s) that webhook serves; unknown,
    disabled or of another kind: `NotFound` (the same answer for each, so a caller learns
    nothing about connections it cannot prove it owns)."""
    kinds = (kind,) if isinstance(kind, str) else kind
    with platform.db.session() as session:
        row = session.get(t.ChannelConnectionRow, connection_id)
        if row is None or not row.enabled or row.kind not in kinds:
            raise NotFound("channel connection", connection_id)
        return _loaded(platform, row)


def enabled_connections(platform: Platform, kind: c.ChannelKind) -> list[LoadedConnection]:
    """Every enabled connection of `kind`, across workspaces (the email listener and poller
    serve them all)."""
    with platform.db.session() as session:
        rows = session.scalars(
            select(t.ChannelConnectionRow).where(
                t.ChannelConnectionRow.kind == kind, t.ChannelConnectionRow.enabled.is_(True)
            )
        ).all()
        return [_loaded(platform, row) for row in rows]
