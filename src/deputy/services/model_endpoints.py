"""A workspace's OpenAI-compatible model servers. Keys are encrypted at rest and never returned."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.platform import Platform
from deputy.store import tables as t


def _resource(row: t.ModelEndpoint) -> r.ModelEndpoint:
    return r.ModelEndpoint(
        id=row.id,
        name=row.name,
        base_url=row.base_url,
        has_api_key=row.api_key_encrypted is not None,
        created_at=row.created_at,
    )


def create_endpoint(
    platform: Platform, principal: Principal, body: r.ModelEndpointCreate
) -> r.ModelEndpoint:
    encrypted = platform.secrets.encrypt(body.api_key) if body.api_key is not None else None
    try:
        with tenant(platform, principal, "workspace:admin") as session:
            if session.scalar(select(t.ModelEndpoint.id).where(t.ModelEndpoint.name == body.name)):
                raise Conflict(
                    f"an endpoint named {body.name!r} exists", details={"name": body.name}
                )
            row = t.ModelEndpoint(
                id=new_id("mep"),
                workspace_id=principal.workspace_id,
                name=body.name,
                base_url=body.base_url.rstrip("/"),
                api_key_encrypted=encrypted,
            )
            session.add(row)
            session.flush()
            return _resource(row)
    except IntegrityError as exc:
        raise Conflict(
            f"an endpoint named {body.name!r} exists", details={"name": body.name}
        ) from exc


def list_endpoints(platform: Platform, principal: Principal) -> list[r.ModelEndpoint]:
    with tenant(platform, principal, "workspace:read") as session:
        rows = session.scalars(select(t.ModelEndpoint).order_by(t.ModelEndpoint.name))
        return [_resource(row) for row in rows]


def delete_endpoint(platform: Platform, principal: Principal, name: str) -> None:
    with tenant(platform, principal, "workspace:admin") as session:
        row = session.scalar(select(t.ModelEndpoint).where(t.ModelEndpoint.name == name))
        if row is None:
            raise NotFound("model endpoint", name)
        session.delete(row)


def endpoint_credentials(
    platform: Platform, workspace_id: str
) -> dict[str, tuple[str, str | None]]:
    """Name -> (base URL, decrypted key) for building the workspace's model registry."""
    with platform.db.tenant_session(workspace_id) as session:
        rows = session.scalars(select(t.ModelEndpoint)).all()
        return {
            row.name: (
                row.base_url,
                platform.secrets.decrypt(row.api_key_encrypted) if row.api_key_encrypted else None,
            )
            for row in rows
        }
