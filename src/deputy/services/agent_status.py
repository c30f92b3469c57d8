"""An agent's SLOs and its status for the console (`metrics:read`).

`agent_slos`: each SLI over the live version's SLO window (compliance, error budget left) and
the burn windows (burn rates, the rules, the alert firing for it), measured as the SLO evaluator
measures (`deputy.services.slo_evaluator`).

`agent_status` adds:
- **health**: `idle` when the agent is not deployed, or had no turn and no probe run in the
  last hour; `down` when at least half of the last hour's availability events (turns, probe
  runs) were bad; `degraded` when the last hour's error ratio exceeds the availability error
  budget, an SLO or probe alert of the agent fires, or its latest probe run did not pass;
  else `ok`; with the reasons in words;
- **budget**: the agent's budgets this period (`deputy.services.budgets.budget_burn`);
- **incidents**: its most recent alerts, firing ones first;
- **probes**: the latest run of each of its probes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from deputy.domain import alerts as a
from deputy.domain.errors import NotFound
from deputy.domain.tenancy import Principal
from deputy.observability.slo import BURN_WINDOWS, budget_remaining, burn_rate, compliance, finite
from deputy.services.access import tenant
from deputy.services.alerts import alert_resource
from deputy.services.budgets import budget_burn
from deputy.services.platform import Platform
from deputy.services.slo_evaluator import SliMeasure, alert_key, measure
from deputy.services.slos import SLI_DESCRIPTIONS, SLO_WINDOW, Objectives, objectives
from deputy.store import tables as t
from deputy.store.tables import utcnow

DOWN_RATIO = 0.5
RECENT_INCIDENTS = 20


def _agent_name(session: Session, agent_id: str) -> str:
    name = session.scalar(select(t.Agent.name).where(t.Agent.id == agent_id))
    if name is None:
        raise NotFound("agent", agent_id)
    return name


def _firing_slo_alerts(session: Session, agent_id: str) -> dict[str, t.Alert]:
    rows = session.scalars(
        select(t.Alert).where(
            t.Alert.agent_id == agent_id, t.Alert.kind == "slo_burn", t.Alert.status == "firing"
        )
    )
    return {row.key: row for row in rows}


def sli_status(scope: Objectives, item: SliMeasure, firing: dict[str, t.Alert]) -> a.SliStatus:
    overall = item.counts[SLO_WINDOW]
    alert = next(
        (
            firing[key]
            for severity in ("page", "ticket")
            if (key := alert_key(scope.agent_id, item.sli, severity)) in firing
        ),
        None,
    )
    return a.SliStatus(
        sli=item.sli,
        description=SLI_DESCRIPTIONS[item.sli],
        objective=item.objective,
        window_days=scope.slos.window_days,
        good=overall.good,
        total=overall.total,
        compliance=compliance(overall),
        error_budget=round(1.0 - item.objective, 12),
        budget_remaining=finite(budget_remaining(overall, item.objective)),
        windows=[
            a.SliWindow(
                window=window.name,
                seconds=window.seconds,
                good=item.counts[window.name].good,
                total=item.counts[window.name].total,
                error_ratio=item.counts[window.name].error_ratio,
                burn_rate=finite(burn_rate(item.counts[window.name], item.objective)),
            )
            for window in BURN_WINDOWS
        ],
        rules=[
            a.BurnRuleStatus(
                severity=result.rule.severity,
                long_window=result.rule.long,
                short_window=result.rule.short,
                threshold=result.rule.threshold,
                long_burn_rate=finite(result.long_burn),
                short_burn_rate=finite(result.short_burn),
                short_window_events=result.short_events,
                fires=result.fires,
            )
            for result in item.decision.rules
        ],
        firing_severity=item.decision.severity,
        alert=alert_resource(alert) if alert is not None else None,
    )


def _slos(
    session: Session, platform: Platform, workspace_id: str, agent_id: str, now: datetime
) -> tuple[a.AgentSlos, Objectives | None, list[SliMeasure]]:
    scope = objectives(session, workspace_id, agent_id)
    min_events = platform.settings.slo_min_events
    if scope is None:
        empty = a.AgentSlos(
            agent_id=agent_id,
            deployed=False,
            live_version=None,
            evaluated_at=now,
            min_events=min_events,
            slis=[],
        )
        return empty, None, []
    measures = measure(session, scope, now, min_events=min_events, slo_window=True)
    firing = _firing_slo_alerts(session, agent_id)
    slos = a.AgentSlos(
        agent_id=agent_id,
        deployed=True,
        live_version=scope.live_version,
        evaluated_at=now,
        min_events=min_events,
        slis=[sli_status(scope, item, firing) for item in measures],
    )
    return slos, scope, measures


def agent_slos(platform: Platform, principal: Principal, agent_id: str) -> a.AgentSlos:
    with tenant(platform, principal, "metrics:read") as session:
        _agent_name(session, agent_id)
        return _slos(session, platform, principal.workspace_id, agent_id, utcnow())[0]


def latest_probe_runs(session: Session, agent_id: str) -> list[a.ProbeRunSummary]:
    """Each probe of the agent with its latest run (none yet: the run fields are null)."""
    run = t.ProbeRun
    latest = (
        select(run.probe_id, func.max(run.started_at).label("at"))
        .where(run.agent_id == agent_id)
        .group_by(run.probe_id)
        .subquery()
    )
    rows = session.execute(
        select(t.Probe, run)
        .outerjoin(latest, latest.c.probe_id == t.Probe.id)
        .outerjoin(run, and_(run.probe_id == t.Probe.id, run.started_at == latest.c.at))
        .where(t.Probe.agent_id == agent_id)
        .order_by(t.Probe.name)
    ).all()
    summaries: dict[str, a.ProbeRunSummary] = {}
    for probe, last in rows:
        summaries.setdefault(
            probe.id,
            a.ProbeRunSummary(
                probe_id=probe.id,
                probe_name=probe.name,
                enabled=probe.enabled,
                run_id=last.id if last else None,
                status=last.status if last else None,
                started_at=last.started_at if last else None,
                finished_at=last.finished_at if last else None,
                latency_ms=last.latency_ms if last else None,
                conversation_id=last.conversation_id if last else None,
                agent_version=last.agent_version if last else None,
            ),
        )
    return list(summaries.values())


def recent_incidents(session: Session, agent_id: str) -> list[a.Alert]:
    firing_first = case((t.Alert.status == "firing", 0), else_=1)
    rows = session.scalars(
        select(t.Alert)
        .where(t.Alert.agent_id == agent_id)
        .order_by(firing_first, t.Alert.opened_at.desc(), t.Alert.id.desc())
        .limit(RECENT_INCIDENTS)
    )
    return [alert_resource(row) for row in rows]


def health(
    scope: Objectives | None,
    measures: list[SliMeasure],
    probes: list[a.ProbeRunSummary],
    incidents: list[a.Alert],
) -> a.AgentHealth:
    ran = [p for p in probes if p.started_at is not None]
    last = max(ran, key=lambda p: p.started_at or datetime.min) if ran else None
    if scope is None:
        return a.AgentHealth(
            state="idle",
            reasons=["the agent is not deployed"],
            deployed=False,
            live_version=None,
            events_last_hour=0,
            error_ratio_last_hour=None,
            last_probe_run=last,
        )
    hour = next(m for m in measures if m.sli == "availability").counts["1h"]
    ratio = hour.error_ratio
    reasons: list[str] = []
    state: a.HealthState = "ok"
    if ratio is None:
        state = "idle"
        reasons.append("no turn and no probe run in the last hour")
    elif ratio >= DOWN_RATIO:
        state = "down"
        reasons.append(f"{hour.bad} of {hour.total} turns and probe runs failed in the last hour")
    elif ratio > 1.0 - scope.slos.availability:
        state = "degraded"
        reasons.append(
            f"{hour.bad} of {hour.total} turns and probe runs failed in the last hour, above "
            f"the availability error budget ({1.0 - scope.slos.availability:.2%})"
        )
    watched = [i for i in incidents if i.status == "firing" and i.kind in ("slo_burn", "probe")]
    for incident in watched:
        reasons.append(f"firing: {incident.title}")
    if last is not None and last.status != "passed":
        reasons.append(f"the latest probe run ({last.probe_name}) {last.status}")
    if state in ("ok", "idle") and (watched or (last is not None and last.status != "passed")):
        state = "degraded"
    if state == "ok":
        reasons.append(f"{hour.total} turns and probe runs in the last hour, {hour.bad} failed")
    return a.AgentHealth(
        state=state,
        reasons=reasons,
        deployed=True,
        live_version=scope.live_version,
        events_last_hour=hour.total,
        error_ratio_last_hour=ratio,
        last_probe_run=last,
    )


def agent_status(platform: Platform, principal: Principal, agent_id: str) -> a.AgentStatus:
    now = utcnow()
    with tenant(platform, principal, "metrics:read") as session:
        name = _agent_name(session, agent_id)
        slos, scope, measures = _slos(session, platform, principal.workspace_id, agent_id, now)
        probes = latest_probe_runs(session, agent_id)
        incidents = recent_incidents(session, agent_id)
        budget = budget_burn(session, principal.workspace_id, agent_id)
        return a.AgentStatus(
            agent_id=agent_id,
            agent_name=name,
            evaluated_at=now,
            health=health(scope, measures, probes, incidents),
            slos=slos,
            budget=budget,
            incidents=incidents,
            probes=probes,
        )
