"""Alerts: opened and resolved by whatever watches (SLO burn rates, budgets, probes), in the
caller's transaction, with one notification row per enabled target written in the same
transaction (an outbox: `deputy.services.alert_delivery` sends them with retries).

One alert per `key` is open at a time (`open_key` is unique while firing). Opening an alert
whose key is already firing updates its details and notifies no one again; resolving one that
is not firing does nothing. A silenced alert stays open (and still resolves), but writes no
notifications until its silence ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain.ids import new_id
from deputy.store import tables as t
from deputy.store.tables import utcnow

AlertKind = Literal["slo_burn", "budget", "probe"]
Severity = Literal["page", "ticket"]
SEVERITY_RANK: dict[str, int] = {"ticket": 0, "page": 1}


def firing(session: Session, key: str) -> t.Alert | None:
    return session.scalar(select(t.Alert).where(t.Alert.open_key == key))


def is_silenced(alert: t.Alert, now: datetime | None = None) -> bool:
    return alert.silenced_until is not None and alert.silenced_until > (now or utcnow())


def _notify(session: Session, alert: t.Alert, event: Literal["opened", "resolved"]) -> None:
    if is_silenced(alert):
        return
    targets = session.scalars(select(t.AlertTarget).where(t.AlertTarget.enabled.is_(True)))
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
