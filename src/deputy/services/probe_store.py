"""How probes are stored and leased.

The `probes.scenario` column holds `{"scenario": <Scenario>, "options": <ProbeOptions>}`: the
scripted scenario and the run options the table has no column for. A run is recorded in
`probe_runs` with `details` holding what the API shows beside the columns (`ProbeRun`).

A probe runs under a lease on its row (`lease_owner`, `lease_until`): a claim is a conditional
update (nobody holds it, or the holder's lease expired), renewed while the run goes on and
released with the run's record, so two processes (or the scheduler and a "run now") never run
the same probe at once, and a crashed process's probe is run again once its lease expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from deputy.domain import probes as p
from deputy.domain.errors import NotFound
from deputy.domain.scenarios import Scenario
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

LEASE_SECONDS = 60.0
"""How long a claim holds without renewal; a run renews it every third of that."""


@dataclass(frozen=True)
class ProbeOptions:
    allow_irreversible: bool = False
    judge_model: str | None = None
    turn_timeout_seconds: float = p.DEFAULT_TURN_TIMEOUT_SECONDS
    max_turn_latency_ms: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "allow_irreversible": self.allow_irreversible,
            "judge_model": self.judge_model,
            "turn_timeout_seconds": self.turn_timeout_seconds,
            "max_turn_latency_ms": self.max_turn_latency_ms,
        }


@dataclass(frozen=True)
class ProbeJob:
    """What one run of a probe needs, read from its row when it was claimed."""

    workspace_id: str
    probe_id: str
    agent_id: str
    name: str
    channel: str
    interval_seconds: int
    scenario: Scenario
    options: ProbeOptions
    owner: str


def stored_scenario(scenario: Scenario, options: ProbeOptions) -> dict[str, Any]:
    return {"scenario": scenario.model_dump(mode="json"), "options": options.as_json()}


def scenario_of(row: t.Probe) -> Scenario:
    return Scenario.model_validate(row.scenario["scenario"])


def options_of(row: t.Probe) -> ProbeOptions:
    given = row.scenario.get("options") or {}
    return ProbeOptions(
        allow_irreversible=bool(given.get("allow_irreversible", False)),
        judge_model=given.get("judge_model"),
        turn_timeout_seconds=float(
            given.get("turn_timeout_seconds", p.DEFAULT_TURN_TIMEOUT_SECONDS)
        ),
        max_turn_latency_ms=given.get("max_turn_latency_ms"),
    )


def probe_resource(row: t.Probe, now: datetime | None = None) -> p.Probe:
    options = options_of(row)
    held = row.lease_until is not None and row.lease_until > (now or utcnow())
    return p.Probe(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        name=row.name,
        channel=row.channel,
        scenario=scenario_of(row),
        interval_seconds=row.interval_seconds,
        enabled=row.enabled,
        allow_irreversible=options.allow_irreversible,
        judge_model=options.judge_model,
        turn_timeout_seconds=options.turn_timeout_seconds,
        max_turn_latency_ms=options.max_turn_latency_ms,
        next_run_at=row.next_run_at,
        running=row.lease_owner is not None and held,
        created_at=row.created_at,
    )


def run_resource(row: t.ProbeRun) -> p.ProbeRun:
    details = row.details
    return p.ProbeRun(
        id=row.id,
        probe_id=row.probe_id,
        agent_id=row.agent_id,
        agent_version=row.agent_version,
        conversation_id=row.conversation_id,
        status=row.status,
        reason=str(details.get("reason", "")),
        latency_ms=row.latency_ms,
        channel=str(details.get("channel", "")),
        deployment_arm=details.get("deployment_arm"),
        turns=[p.ProbeTurn.model_validate(turn) for turn in details.get("turns", [])],
        checks=[p.ProbeCheck.model_validate(check) for check in details.get("checks", [])],
        outcome=details.get("outcome"),
        alert=p.ProbeAlert.model_validate(details["alert"]) if details.get("alert") else None,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def probe_row(session: Session, probe_id: str) -> t.Probe:
    row = session.get(t.Probe, probe_id)
    if row is None:
        raise NotFound("probe", probe_id)
    return row


def _job(row: t.Probe, owner: str) -> ProbeJob:
    return ProbeJob(
        workspace_id=row.workspace_id,
        probe_id=row.id,
        agent_id=row.agent_id,
        name=row.name,
        channel=row.channel,
        interval_seconds=row.interval_seconds,
        scenario=scenario_of(row),
        options=options_of(row),
        owner=owner,
    )


def _free(now: datetime) -> Any:
    return or_(t.Probe.lease_owner.is_(None), t.Probe.lease_until < now)


def _take(session: Session, probe_id: str, owner: str, now: datetime, *due: Any) -> bool:
    taken = session.execute(
        update(t.Probe)
        .where(t.Probe.id == probe_id, _free(now), *due)
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def claim_probe(session: Session, probe_id: str, owner: str) -> ProbeJob | None:
    """Lease one probe of the session's workspace now, due or not (a "run now"); None when
    another run holds it."""
    row = probe_row(session, probe_id)
    if not _take(session, row.id, owner, utcnow()):
        return None
    session.refresh(row)
    return _job(row, owner)


def claim_due(db: Database, owner: str, limit: int) -> list[ProbeJob]:
    """Lease up to `limit` enabled probes that are due, across workspaces, oldest due first.
    Each claim is its own conditional update, so a probe another process took first is
    skipped."""
    now = utcnow()
    due = (t.Probe.enabled.is_(True), t.Probe.next_run_at <= now)
    claimed: list[ProbeJob] = []
    with db.session() as session:
        candidates = session.scalars(
            select(t.Probe.id).where(*due, _free(now)).order_by(t.Probe.next_run_at).limit(limit)
        ).all()
        for probe_id in candidates:
            if _take(session, probe_id, owner, now, *due):
                claimed.append(_job(session.get_one(t.Probe, probe_id), owner))
    return claimed


def renew_lease(db: Database, workspace_id: str, probe_id: str, owner: str) -> bool:
    """Extend a held lease; False when it was lost (expired and taken, or the probe deleted)."""
    with db.tenant_session(workspace_id) as session:
        renewed = session.execute(
            update(t.Probe)
            .where(t.Probe.id == probe_id, t.Probe.lease_owner == owner)
            .values(lease_until=utcnow() + timedelta(seconds=LEASE_SECONDS))
            .execution_options(synchronize_session=False)
        )
        return bool(renewed.rowcount)  # type: ignore[attr-defined]


def release_lease(
    session: Session, probe_id: str, owner: str, next_run_at: datetime | None = None
) -> None:
    """Give the lease back (when still held by `owner`), with the next due time if given."""
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
    if next_run_at is not None:
        values["next_run_at"] = next_run_at
    session.execute(
        update(t.Probe)
        .where(and_(t.Probe.id == probe_id, t.Probe.lease_owner == owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def release(db: Database, workspace_id: str, probe_id: str, owner: str) -> None:
    with db.tenant_session(workspace_id) as session:
        release_lease(session, probe_id, owner)
