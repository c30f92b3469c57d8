"""The SLO evaluator: the platform's own burn-rate alerting, from its database, so an install
without Prometheus still gets SLO alerts (Deputy's Prometheus rules, `deploy/prometheus`, apply
the same windows and thresholds to its metrics).

Every `slo_check_seconds`, for every agent with a deployment, each SLI's counts over the burn
windows (`deputy.services.slos`) go through the multiwindow decision
(`deputy.observability.slo.decide`, at least `slo_min_events` events in a rule's short window).
The severity that fires has its alert open (kind `slo_burn`, key
`slo:<agent>:<sli>:<severity>`, details: objective, counts and burn rate per window, the rules
that fire); an alert of the SLI whose severity no longer fires is resolved by `system:slo` (a
page that calms down to a ticket resolves the page and opens the ticket).

Several processes may evaluate at once: an alert key is open at most once (`open_key` is
unique); the process that loses the race to open it gets an IntegrityError and evaluates that
agent again, finding the alert open. An alert resolved by hand while its condition holds is
opened again (a new alert) at the next check."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain.alerts import SliName
from deputy.observability.slo import (
    BURN_WINDOWS,
    SEVERITIES,
    SLI_NAMES,
    BurnDecision,
    Counts,
    burn_rate,
    decide,
    finite,
)
from deputy.services.alert_delivery import wake_alert_delivery
from deputy.services.alerts import close_alert, open_alert
from deputy.services.platform import Platform
from deputy.services.slos import Objectives, cutoffs, objectives, sli_counts
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger(__name__)

SYSTEM_SLO = "system:slo"


def alert_key(agent_id: str, sli: SliName, severity: str) -> str:
    return f"slo:{agent_id}:{sli}:{severity}"


@dataclass(frozen=True)
class SliMeasure:
    """One SLI measured: its objective, counts per window, and the burn-rate decision."""

    sli: SliName
    objective: float
    counts: dict[str, Counts]
    decision: BurnDecision


def measure(
    session: Session, scope: Objectives, now: datetime, *, min_events: int, slo_window: bool
) -> list[SliMeasure]:
    """Every SLI over the burn windows (and the SLO window, for compliance, when asked)."""
    starts = cutoffs(now, BURN_WINDOWS, scope.slos.window_days if slo_window else None)
    counted = sli_counts(session, scope, starts)
    measures = []
    for sli in SLI_NAMES:
        objective = scope.objective(sli)
        burn = {window.name: counted[sli][window.name] for window in BURN_WINDOWS}
        decision = decide(burn, objective, min_events=min_events)
        measures.append(SliMeasure(sli, objective, counted[sli], decision))
    return measures


def alert_details(scope: Objectives, item: SliMeasure, min_events: int) -> dict[str, Any]:
    return {
        "agent_id": scope.agent_id,
        "live_version": scope.live_version,
        "sli": item.sli,
        "objective": item.objective,
        "min_events": min_events,
        "windows": {
            window.name: {
                "good": item.counts[window.name].good,
                "total": item.counts[window.name].total,
                "burn_rate": finite(burn_rate(item.counts[window.name], item.objective)),
            }
            for window in BURN_WINDOWS
        },
        "fired": [
            {
                "severity": result.rule.severity,
                "long_window": result.rule.long,
                "short_window": result.rule.short,
                "threshold": result.rule.threshold,
                "long_burn_rate": finite(result.long_burn),
                "short_burn_rate": finite(result.short_burn),
            }
            for result in item.decision.fired
        ],
    }


def _title(agent_name: str, item: SliMeasure) -> str:
    fastest = max((r.short_burn or 0.0 for r in item.decision.fired), default=0.0)
    rate = "an infinite" if fastest == float("inf") else f"{fastest:.1f}x the sustainable"
    return (
        f"{agent_name}: the {item.sli} SLO ({item.objective:.2%}) burns its error budget at "
        f"{rate} rate"
    )


@dataclass(frozen=True)
class Evaluated:
    agent_id: str
    opened: tuple[str, ...]
    resolved: tuple[str, ...]


def _apply(
    session: Session,
    scope: Objectives,
    agent_name: str,
    measures: list[SliMeasure],
    min_events: int,
) -> Evaluated:
    firing = {
        row.key: row
        for row in session.scalars(
            select(t.Alert).where(
                t.Alert.agent_id == scope.agent_id,
                t.Alert.kind == "slo_burn",
                t.Alert.status == "firing",
            )
        )
    }
    opened: list[str] = []
    resolved: list[str] = []
    for item in measures:
        for severity in SEVERITIES:
            key = alert_key(scope.agent_id, item.sli, severity)
            if item.decision.severity == severity:
                _, new = open_alert(
                    session,
                    scope.workspace_id,
                    key=key,
                    kind="slo_burn",
                    severity=severity,
                    title=_title(agent_name, item),
                    details=alert_details(scope, item, min_events),
                    agent_id=scope.agent_id,
                )
                if new:
                    opened.append(key)
            elif key in firing:
                close_alert(session, firing[key], by=SYSTEM_SLO)
                resolved.append(key)
    return Evaluated(scope.agent_id, tuple(opened), tuple(resolved))


def evaluate_agent(
    platform: Platform, workspace_id: str, agent_id: str, now: datetime | None = None
) -> Evaluated | None:
    """Measure one agent's SLIs and open or resolve its burn-rate alerts; None when it is not
    deployed (any alert of it stays as it is)."""
    min_events = platform.settings.slo_min_events
    for attempt in range(2):
        try:
            with platform.db.tenant_session(workspace_id) as session:
                scope = objectives(session, workspace_id, agent_id)
                name = session.scalar(select(t.Agent.name).where(t.Agent.id == agent_id))
                if scope is None or name is None:
                    return None
                at = now or utcnow()
                measures = measure(session, scope, at, min_events=min_events, slo_window=False)
                return _apply(session, scope, name, measures, min_events)
        except IntegrityError:  # another process opened one of these alerts first
            if attempt:
                raise
    return None


def deployed_agents(platform: Platform) -> list[tuple[str, str]]:
    """(workspace id, agent id) of every agent with a deployment."""
    with platform.db.session() as session:
        rows = session.execute(
            select(t.Deployment.workspace_id, t.Deployment.agent_id).distinct()
        ).all()
        return [(workspace_id, agent_id) for workspace_id, agent_id in rows]


def _evaluate_logged(
    platform: Platform, workspace_id: str, agent_id: str, now: datetime | None
) -> Evaluated | None:
    try:
        return evaluate_agent(platform, workspace_id, agent_id, now)
    except Exception:
        log.exception("evaluating an agent's SLOs failed", extra={"agent_id": agent_id})
        return None


def check_slos(platform: Platform, now: datetime | None = None) -> list[Evaluated]:
    """Evaluate every deployed agent of every workspace now (one that cannot be evaluated is
    logged and skipped), and wake the alert sender when an alert opened or resolved."""
    evaluated = [
        result
        for workspace_id, agent_id in deployed_agents(platform)
        if (result := _evaluate_logged(platform, workspace_id, agent_id, now)) is not None
    ]
    if any(e.opened or e.resolved for e in evaluated):
        wake_alert_delivery()
    return evaluated


async def keep_evaluating_slos(platform: Platform) -> None:
    """Evaluate the SLOs every `slo_check_seconds` until cancelled: each agent in a database
    call of its own, so other work goes on between them (SQLite has one writer thread)."""
    while True:
        try:
            changed = False
            for workspace_id, agent_id in await platform.db.run(deployed_agents, platform):
                result = await platform.db.run(
                    _evaluate_logged, platform, workspace_id, agent_id, None
                )
                changed = changed or bool(result and (result.opened or result.resolved))
            if changed:
                wake_alert_delivery()
        except Exception:
            log.exception("evaluating SLOs failed")
        await asyncio.sleep(platform.settings.slo_check_seconds)
