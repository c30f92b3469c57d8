"""Alerts and where they go, and an agent's SLOs and status.

Reading needs `metrics:read`; changing targets, silencing, resolving and test sends need
`alerts:write`. Target secrets are write-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import alerts as a
from deputy.domain.resources import Page
from deputy.services import agent_status, alert_targets, alerts
from deputy.services.alert_delivery import send_test

router = APIRouter(tags=["alerts"])


# ---- targets ------------------------------------------------------------------------------


@router.post("/alert-targets", status_code=status.HTTP_201_CREATED, response_model=a.AlertTarget)
def create_target(
    body: a.AlertTargetCreate, platform: PlatformDep, principal: PrincipalDep
) -> a.AlertTarget:
    """Send the workspace's alerts to a webhook (signed JSON POSTs; `secret` signs them) or to
    email addresses through an SMTP server (`secret`: its password). `min_severity: page`
    keeps tickets away from it."""
    return alert_targets.create_target(platform, principal, body)


@router.get("/alert-targets", response_model=Page[a.AlertTarget])
def list_targets(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[a.AlertTarget]:
    return alert_targets.list_targets(platform, principal, limit=limit, cursor=cursor)


@router.get("/alert-targets/{target_id}", response_model=a.AlertTarget)
def get_target(target_id: str, platform: PlatformDep, principal: PrincipalDep) -> a.AlertTarget:
    return alert_targets.get_target(platform, principal, target_id)


@router.patch("/alert-targets/{target_id}", response_model=a.AlertTarget)
def update_target(
    target_id: str, body: a.AlertTargetUpdate, platform: PlatformDep, principal: PrincipalDep
) -> a.AlertTarget:
    """Replace the settings, set the secret (an empty string removes it: only an email target
    may have none), change the minimum severity, enable or disable."""
    return alert_targets.update_target(platform, principal, target_id, body)


@router.delete("/alert-targets/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(target_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    """Remove the target and the notifications still queued for it."""
    alert_targets.delete_target(platform, principal, target_id)


# ---- alerts -------------------------------------------------------------------------------


@router.post("/alerts/test", response_model=a.AlertTestResult)
async def test_target(
    body: a.AlertTest, platform: PlatformDep, principal: PrincipalDep
) -> a.AlertTestResult:
    """Send a test notification to a target now; the answer says whether it went through."""
    return await send_test(platform, principal, body)


@router.get("/alerts", response_model=Page[a.Alert])
def list_alerts(
    platform: PlatformDep,
    principal: PrincipalDep,
    status: Annotated[a.AlertStatus | None, Query(description="firing or resolved.")] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[a.AlertKind | None, Query()] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[a.Alert]:
    """The workspace's alerts, newest first."""
    return alerts.list_alerts(
        platform,
        principal,
        status=status,
        agent_id=agent_id,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )


@router.get("/alerts/{alert_id}", response_model=a.Alert)
def get_alert(alert_id: str, platform: PlatformDep, principal: PrincipalDep) -> a.Alert:
    return alerts.get_alert(platform, principal, alert_id)


@router.post("/alerts/{alert_id}/silence", response_model=a.Alert)
def silence_alert(
    alert_id: str, body: a.AlertSilence, platform: PlatformDep, principal: PrincipalDep
) -> a.Alert:
    """Silence a firing alert for `minutes`: it stays firing (and still resolves), but no one
    is notified about it until the silence ends. Audited (`alert.silenced`)."""
    return alerts.silence_alert(platform, principal, alert_id, body)


@router.post("/alerts/{alert_id}/resolve", response_model=a.Alert)
def resolve_alert(
    alert_id: str, body: a.AlertResolve, platform: PlatformDep, principal: PrincipalDep
) -> a.Alert:
    """Resolve a firing alert now (its targets are told). Audited (`alert.resolved`). If its
    condition still holds, the watcher opens a new alert at its next check (the SLO evaluator
    within `DEPUTY_SLO_CHECK_SECONDS`)."""
    return alerts.resolve_by_hand(platform, principal, alert_id, body)


# ---- SLOs and status ----------------------------------------------------------------------


@router.get("/agents/{agent_id}/slos", response_model=a.AgentSlos)
def agent_slos(agent_id: str, platform: PlatformDep, principal: PrincipalDep) -> a.AgentSlos:
    """Each SLI of the agent's live version: objective, compliance and error budget left over
    the SLO window, burn rates over the alerting windows, the rules and the firing alert."""
    return agent_status.agent_slos(platform, principal, agent_id)


@router.get("/agents/{agent_id}/status", response_model=a.AgentStatus)
def get_agent_status(
    agent_id: str, platform: PlatformDep, principal: PrincipalDep
) -> a.AgentStatus:
    """The agent at a glance: health (ok, degraded, down, idle, and why), SLOs, budget burn,
    recent incidents (firing first) and the latest run of each probe."""
    return agent_status.agent_status(platform, principal, agent_id)
