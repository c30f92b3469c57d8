"""Alerts: opened and resolved by whatever watches (SLO burn rates, budgets, probes), in the
caller's transaction, with one notification row per enabled target written in the same
transaction (an outbox: `deputy.services.alert_delivery` sends them with retries).

One alert per `key` is open at a time (`open_key` is unique while firing). Opening an alert
whose key is already firing updates its details and notifies no one again; resolving one that
is not firing does nothing. A silenced alert stays open (and still resolves), but writes no
notifications until its silence ends.

Operators list and read alerts (`metrics:read`), silence and resolve them (`alerts:write`,
audited as `alert.silenced` and `alert.resolved`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import alerts as a
from deputy.domain.alerts import AlertKind, Severity
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.resources import Page
from deputy.domain.tenancy import Principal
from deputy.services import audit
from deputy.services.access import tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

__all__ = [
    "SEVERITY_RANK",
    "AlertKind",
    "Severity",
    "alert_resource",
    "close_alert",
    "firing",
    "get_alert",
    "is_silenced",
    "list_alerts",
    "open_alert",
    "resolve_alert",
    "resolve_by_hand",
    "silence_alert",
]

SEVERITY_RANK: dict[str, int] = {"ticket": 0, "page": 1}


def firing(session: Session, key: str) -> t.Alert | None:
    return session.scalar(select(t.Alert).where(t.Alert.open_key == key))


def is_silenced(alert: t.Alert, now: datetime | None = None) -> bool:
    return alert.silenced_until is not None and alert.silenced_until > (now or utcnow())


def _notify(session: Session, alert: t.Alert, event: Literal["opened", "resolved"]) -> None:
    if is_silenced(alert):
        return
    targets = session.scalars(
        select(t.AlertTarget).where(
            t.AlertTarget.workspace_id == alert.workspace_id, t.AlertTarget.enabled.is_(True)
        )
    )
    for target in targets:
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK.get(target.min_severity, 0):
            continue
        session.add(
            t.AlertNotification(
                id=new_id("ntf"),
                workspace_id=alert.workspace_id,
                alert_id=alert.id,
                target_id=target.id,
                event=event,
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )


def open_alert(
    session: Session,
    workspace_id: str,
    *,
    key: str,
    kind: AlertKind,
    severity: Severity,
    title: str,
    details: dict[str, Any],
    agent_id: str | None = None,
) -> tuple[t.Alert, bool]:
    """The firing alert for `key` (opened now, with notifications, when none was); True when
    this call opened it."""
    existing = firing(session, key)
    if existing is not None:
        existing.details = details
        existing.title = title[:500]
        return existing, False
    alert = t.Alert(
        id=new_id("alr"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        key=key,
        open_key=key,
        kind=kind,
        severity=severity,
        status="firing",
        title=title[:500],
        details=details,
        opened_at=utcnow(),
    )
    session.add(alert)
    session.flush()
    _notify(session, alert, "opened")
    session.flush()
    return alert, True


def close_alert(session: Session, alert: t.Alert, *, by: str) -> None:
    """Resolve a firing alert (notifying its targets unless silenced)."""
    if alert.status != "firing":
        return
    alert.status, alert.open_key = "resolved", None
    alert.resolved_at, alert.resolved_by = utcnow(), by
    session.flush()
    _notify(session, alert, "resolved")
    session.flush()


def resolve_alert(session: Session, key: str, *, by: str) -> t.Alert | None:
    """Resolve the alert firing for `key`, if any; returns it."""
    alert = firing(session, key)
    if alert is not None:
        close_alert(session, alert, by=by)
    return alert


# ---- what operators do through the API ----------------------------------------------------


def alert_resource(row: t.Alert) -> a.Alert:
    return a.Alert.model_validate(row)


def _alert(session: Session, alert_id: str) -> t.Alert:
    row = session.scalar(select(t.Alert).where(t.Alert.id == alert_id))
    if row is None:
        raise NotFound("alert", alert_id)
    return row


def list_alerts(
    platform: Platform,
    principal: Principal,
    *,
    status: a.AlertStatus | None,
    agent_id: str | None,
    kind: a.AlertKind | None,
    limit: int,
    cursor: str | None,
) -> Page[a.Alert]:
    """The workspace's alerts, newest first."""
    query = select(t.Alert)
    for column, value in (
        (t.Alert.status, status),
        (t.Alert.agent_id, agent_id),
        (t.Alert.kind, kind),
    ):
        if value is not None:
            query = query.where(column == value)
    with tenant(platform, principal, "metrics:read") as session:
        return paginate(
            session, query, t.Alert.id, limit=limit, cursor=cursor, to_resource=alert_resource
        )


def get_alert(platform: Platform, principal: Principal, alert_id: str) -> a.Alert:
    with tenant(platform, principal, "metrics:read") as session:
        return alert_resource(_alert(session, alert_id))


def silence_alert(
    platform: Platform, principal: Principal, alert_id: str, body: a.AlertSilence
) -> a.Alert:
    """Silence a firing alert for `minutes` from now (a new silence replaces the old one): it
    stays firing and still resolves, but no notification about it is written or sent until
    the silence ends (notifications already queued wait for the end of the silence)."""
    with tenant(platform, principal, "alerts:write") as session:
        row = _alert(session, alert_id)
        if row.status != "firing":
            raise Conflict(
                f"alert {alert_id} is {row.status}: only a firing alert can be silenced",
                details={"alert_id": alert_id, "status": row.status},
            )
        row.silenced_until = utcnow() + timedelta(minutes=body.minutes)
        row.silenced_by = principal.key_id
        audit.record_by(
            session,
            principal,
            "alert.silenced",
            "alert",
            row.id,
            {
                "key": row.key,
                "minutes": body.minutes,
                "until": row.silenced_until.isoformat(),
                "reason": body.reason,
            },
        )
        session.flush()
        return alert_resource(row)


def resolve_by_hand(
    platform: Platform, principal: Principal, alert_id: str, body: a.AlertResolve
) -> a.Alert:
    """Resolve a firing alert now (its targets are told, unless it is silenced). Whatever
    watches the condition opens a new alert at its next check if the condition still holds
    (the SLO evaluator: within `DEPUTY_SLO_CHECK_SECONDS`)."""
    with tenant(platform, principal, "alerts:write") as session:
        row = _alert(session, alert_id)
        if row.status != "firing":
            raise Conflict(
                f"alert {alert_id} is already resolved",
                details={"alert_id": alert_id, "status": row.status},
            )
        close_alert(session, row, by=principal.key_id)
        audit.record_by(
            session,
            principal,
            "alert.resolved",
            "alert",
            row.id,
            {"key": row.key, "reason": body.reason},
        )
        return alert_resource(row)
