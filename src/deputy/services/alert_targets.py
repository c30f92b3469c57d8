"""Alert targets: where a workspace's alerts go (a signed webhook, or email through SMTP).

Changing one needs `alerts:write`, reading one `metrics:read`. The secret (a webhook's signing
secret, an email target's SMTP password) is encrypted before it reaches the database and never
returned: a target only says whether one is set. Removing a target drops its queued
notifications."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain import alerts as a
from deputy.domain.errors import Conflict, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.resources import Page
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.tool_source_config import problems
from deputy.store import tables as t

MIN_WEBHOOK_SECRET = 16
TargetConfig = a.WebhookTargetConfig | a.EmailTargetConfig


@dataclass(frozen=True)
class LoadedTarget:
    """A target as a sender needs it: settings parsed, secret decrypted (never log it)."""

    id: str
    workspace_id: str
    name: str
    kind: a.TargetKind
    config: TargetConfig
    secret: str | None


def parse_config(kind: a.TargetKind, raw: dict[str, object]) -> TargetConfig:
    try:
        return a.TARGET_CONFIGS[kind].model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(
            f"the {kind} target's settings are not valid", details={"errors": problems(exc)}
        ) from None


def _check_secret(kind: a.TargetKind, secret: str | None) -> None:
    if kind == "webhook" and (secret is None or len(secret) < MIN_WEBHOOK_SECRET):
        raise ValidationFailed(
            f"a webhook target needs a signing secret of at least {MIN_WEBHOOK_SECRET} characters",
            details={"field": "secret"},
        )


def _resource(row: t.AlertTarget) -> a.AlertTarget:
    return a.AlertTarget(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        kind=row.kind,
        config=row.config,
        secret_set=row.secret_encrypted is not None,
        min_severity=row.min_severity,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _row(session: Session, target_id: str) -> t.AlertTarget:
    row = session.scalar(select(t.AlertTarget).where(t.AlertTarget.id == target_id))
    if row is None:
        raise NotFound("alert target", target_id)
    return row


def create_target(
    platform: Platform, principal: Principal, body: a.AlertTargetCreate
) -> a.AlertTarget:
    config = parse_config(body.kind, body.config)
    _check_secret(body.kind, body.secret)
    conflict = Conflict(f"an alert target named {body.name!r} exists", details={})
    try:
        with tenant(platform, principal, "alerts:write") as session:
            if session.scalar(select(t.AlertTarget.id).where(t.AlertTarget.name == body.name)):
                raise conflict
            row = t.AlertTarget(
                id=new_id("altg"),
                workspace_id=principal.workspace_id,
                name=body.name,
                kind=body.kind,
                config=config.model_dump(mode="json"),
                secret_encrypted=platform.secrets.encrypt(body.secret) if body.secret else None,
                min_severity=body.min_severity,
                enabled=body.enabled,
            )
            session.add(row)
            session.flush()
            return _resource(row)
    except IntegrityError as exc:
        raise conflict from exc


def list_targets(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> Page[a.AlertTarget]:
    with tenant(platform, principal, "metrics:read") as session:
        return paginate(
            session,
            select(t.AlertTarget),
            t.AlertTarget.id,
            limit=limit,
            cursor=cursor,
            to_resource=_resource,
        )


def get_target(platform: Platform, principal: Principal, target_id: str) -> a.AlertTarget:
    with tenant(platform, principal, "metrics:read") as session:
        return _resource(_row(session, target_id))


def update_target(
    platform: Platform, principal: Principal, target_id: str, body: a.AlertTargetUpdate
) -> a.AlertTarget:
    with tenant(platform, principal, "alerts:write") as session:
        row = _row(session, target_id)
        kind: a.TargetKind = row.kind  # type: ignore[assignment]  # written from a TargetKind
        if body.config is not None:
            row.config = parse_config(kind, body.config).model_dump(mode="json")
        if body.secret is not None:
            _check_secret(kind, body.secret or None)
            row.secret_encrypted = platform.secrets.encrypt(body.secret) if body.secret else None
        if body.min_severity is not None:
            row.min_severity = body.min_severity
        if body.enabled is not None:
            row.enabled = body.enabled
        session.flush()
        return _resource(row)


def delete_target(platform: Platform, principal: Principal, target_id: str) -> None:
    """Remove a target and the notifications queued for it."""
    with tenant(platform, principal, "alerts:write") as session:
        row = _row(session, target_id)
        for item in session.scalars(
            select(t.AlertNotification).where(t.AlertNotification.target_id == row.id)
        ):
            session.delete(item)
        session.flush()
        session.delete(row)


def loaded_target(platform: Platform, row: t.AlertTarget) -> LoadedTarget:
    kind: a.TargetKind = row.kind  # type: ignore[assignment]  # written from a TargetKind
    return LoadedTarget(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        kind=kind,
        config=a.TARGET_CONFIGS[kind].model_validate(row.config),
        secret=platform.secrets.decrypt(row.secret_encrypted) if row.secret_encrypted else None,
    )


def load_target(platform: Platform, principal: Principal, target_id: str) -> LoadedTarget:
    """A target of the caller's workspace, ready to send to (`alerts:write`: a test send)."""
    with tenant(platform, principal, "alerts:write") as session:
        return loaded_target(platform, _row(session, target_id))
