"""Sandbox runs as a platform capability: prove an agent version against a scenario suite
(given, or a build's), k trials each, in a tool world of sandbox targets only; follow it, read
its trials and scorecard, compare two runs, cancel one.

Starting and cancelling a run needs `agents:write`, reading runs `agents:read`. Everything a
run needs is checked before it is stored (the agent version, the suite and the scenarios
chosen, the models, the world mapping); the run itself is in `deputy.services.sandbox_runs`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain import sandbox as s
from deputy.domain.errors import Conflict, InvalidCursor, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.sandbox import selected_suite
from deputy.domain.sandbox_results import Comparison, Scorecard, TrialResult
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import spec_from_data
from deputy.domain.tenancy import Principal
from deputy.sandbox.compare import compare
from deputy.services.access import require, tenant
from deputy.services.builds import succeeded_row
from deputy.services.leased_jobs import cancel_open_row, run_db
from deputy.services.models import resolve_model
from deputy.services.pagination import decode_cursor, encode_cursor, paginate
from deputy.services.platform import Platform
from deputy.services.sandbox_runs import start_run, stop_local
from deputy.services.sandbox_worlds import check_world
from deputy.store import tables as t
from deputy.store.tables import utcnow

__all__ = [
    "cancel_run",
    "compare_runs",
    "create_run",
    "get_run",
    "list_runs",
    "list_trials",
    "run_scorecard",
]


def run_resource(row: t.SandboxRun) -> s.SandboxRun:
    count = len(row.scenario_ids) if row.scenario_ids else len(row.suite.get("scenarios", []))
    return s.SandboxRun(
        id=row.id,
        agent_id=row.agent_id,
        version=row.agent_version,
        build_id=row.build_id,
        status=row.status,
        suite_name=str(row.suite.get("name", "")),
        trials=row.trials,
        seed=row.seed,
        concurrency=row.concurrency,
        scenario_count=count,
        progress=s.SandboxProgress.model_validate(row.progress),
        world=dict(row.world_description),
        models=s.SandboxModels(agent=row.model, customer=row.customer_model, judge=row.judge_model),
        scorecard=Scorecard.model_validate(row.scorecard) if row.scorecard else None,
        error=s.SandboxRunError.model_validate(row.error) if row.error else None,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def run_row(session: Session, run_id: str) -> t.SandboxRun:
    row = session.scalar(select(t.SandboxRun).where(t.SandboxRun.id == run_id))
    if row is None:
        raise NotFound("sandbox run", run_id)
    return row


def _suite_sha256(suite: ScenarioSuite) -> str:
    data = suite.model_dump(mode="json")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _role(requested: str | None, default: str | None) -> str | None:
    """A role's model name: the one asked for (`none`: no model), else `default`."""
    if requested == s.NO_MODEL:
        return None
    return requested or default


def _model_names(
    platform: Platform, principal: Principal, body: s.SandboxRunCreate
) -> s.SandboxModels:
    """The models of the run: the agent's as its conversations resolve it (the agent's model,
    else the workspace's, else the platform default) unless given; the customer's default is
    the agent's; the judge's the customer's (or the agent's when there is no customer model)."""
    with tenant(platform, principal, "agents:write") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == body.agent_id))
        if agent is None:
            raise NotFound("agent", body.agent_id)
        workspace_default = session.scalar(
            select(t.Workspace.default_model).where(t.Workspace.id == principal.workspace_id)
        )
    model = body.model or platform.models.chain(agent.model or workspace_default)[0]
    customer = _role(body.customer_model, model)
    return s.SandboxModels(
        agent=model, customer=customer, judge=_role(body.judge_model, customer or model)
    )


def _suite(session: Session, body: s.SandboxRunCreate) -> ScenarioSuite:
    if body.suite is not None:
        return body.suite
    assert body.build_id is not None
    return ScenarioSuite.model_validate(succeeded_row(session, body.build_id).scenarios)


def _check_scenarios(suite: ScenarioSuite, body: s.SandboxRunCreate, customer: str | None) -> None:
    known = {scenario.id for scenario in suite.scenarios}
    missing = [sid for sid in body.scenario_ids if sid not in known]
    if missing:
        raise ValidationFailed(
            f"the suite has no scenario {', '.join(missing)}",
            details={"scenario_ids": missing},
        )
    chosen = selected_suite(suite, body.scenario_ids).scenarios
    if not chosen:
        raise ValidationFailed("the suite has no scenarios to run", details={"suite": suite.name})
    simulated = [scenario.id for scenario in chosen if not scenario.script]
    if customer is None and simulated:
        raise ValidationFailed(
            "simulated scenarios need a customer model: give `customer_model`, or choose "
            "scripted scenarios only",
            details={"scenario_ids": simulated},
        )


def _insert(
    platform: Platform, principal: Principal, body: s.SandboxRunCreate, models: s.SandboxModels
) -> s.SandboxRun:
    with tenant(platform, principal, "agents:write") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == body.agent_id))
        if agent is None:
            raise NotFound("agent", body.agent_id)
        number = body.version or agent.latest_version
        version = session.scalar(
            select(t.AgentVersion).where(
                t.AgentVersion.agent_id == agent.id, t.AgentVersion.number == number
            )
        )
        if version is None:
            raise NotFound("agent version", f"{agent.id}/{number}")
        suite = _suite(session, body)
        _check_scenarios(suite, body, models.customer)
        world = check_world(session, platform.settings, spec_from_data(version.spec), body.world)
        now = utcnow()
        row = t.SandboxRun(
            id=new_id("sbx"),
            workspace_id=principal.workspace_id,
            agent_id=agent.id,
            agent_version=number,
            build_id=body.build_id,
            status="queued",
            suite=suite.model_dump(mode="json"),
            suite_sha256=_suite_sha256(suite),
            scenario_ids=list(dict.fromkeys(body.scenario_ids)),
            trials=body.trials,
            seed=body.seed,
            concurrency=body.concurrency,
            model=models.agent,
            customer_model=models.customer,
            judge_model=models.judge,
            world=body.world.model_dump(mode="json"),
            world_description=world,
            progress=s.SandboxProgress().model_dump(mode="json"),
            attempts=0,
            created_by_key_id=principal.key_id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return run_resource(row)


async def create_run(
    platform: Platform, principal: Principal, body: s.SandboxRunCreate
) -> s.SandboxRun:
    """Check everything the run needs, store it `queued` and start it in the background."""
    require(principal, "agents:write")
    models = await run_db(platform.db, _model_names, platform, principal, body)
    for name in dict.fromkeys(n for n in (models.agent, models.customer, models.judge) if n):
        await anyio.to_thread.run_sync(resolve_model, platform, principal.workspace_id, name)
    run = await run_db(platform.db, _insert, platform, principal, body, models)
    start_run(platform, principal.workspace_id, run.id)
    return run


def get_run(platform: Platform, principal: Principal, run_id: str) -> s.SandboxRun:
    with tenant(platform, principal, "agents:read") as session:
        return run_resource(run_row(session, run_id))


def list_runs(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[s.SandboxRun]:
    """The workspace's runs (of one agent), newest first."""
    query = select(t.SandboxRun)
    if agent_id is not None:
        query = query.where(t.SandboxRun.agent_id == agent_id)
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session, query, t.SandboxRun.id, limit=limit, cursor=cursor, to_resource=run_resource
        )


def list_trials(
    platform: Platform,
    principal: Principal,
    run_id: str,
    *,
    scenario_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[s.SandboxTrial]:
    """The run's finished trials in suite order, then trial number, each with its scenario's
    title."""
    with tenant(platform, principal, "agents:read") as session:
        run = run_row(session, run_id)
        titles = {scenario["id"]: scenario["title"] for scenario in run.suite.get("scenarios", [])}
        query = select(t.SandboxTrial).where(t.SandboxTrial.run_id == run_id)
        if scenario_id is not None:
            query = query.where(t.SandboxTrial.scenario_id == scenario_id)
        if cursor:
            after = decode_cursor(cursor)
            if not after.isdigit():
                raise InvalidCursor("the cursor is not one this API returned")
            query = query.where(t.SandboxTrial.position > int(after))
        rows = session.scalars(query.order_by(t.SandboxTrial.position).limit(limit + 1)).all()
        items = [
            s.SandboxTrial.model_validate(
                {**row.result, "scenario_title": titles.get(row.scenario_id, row.scenario_id)}
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        next_cursor = encode_cursor(str(rows[limit - 1].position)) if more else None
        return r.Page[s.SandboxTrial](data=items, next_cursor=next_cursor)


def _finished_row(session: Session, run_id: str) -> t.SandboxRun:
    """The run, which must have succeeded: `Conflict` (with its status) otherwise."""
    row = run_row(session, run_id)
    if row.status != "succeeded" or row.scorecard is None:
        waiting = row.status in s.OPEN
        raise Conflict(
            f"sandbox run {run_id} is {row.status}"
            + (": wait until it has finished" if waiting else ": it has no scorecard"),
            details={"run_id": run_id, "status": row.status},
        )
    return row


def run_scorecard(platform: Platform, principal: Principal, run_id: str) -> Scorecard:
    with tenant(platform, principal, "agents:read") as session:
        data = _finished_row(session, run_id).scorecard
    return Scorecard.model_validate(data)


@dataclass(frozen=True)
class _Finished:
    suite_sha256: str
    seed: int
    results: list[TrialResult]


def trial_results(session: Session, run_id: str) -> list[TrialResult]:
    """A run's stored trial results, in the suite's order."""
    query = (
        select(t.SandboxTrial.result)
        .where(t.SandboxTrial.run_id == run_id)
        .order_by(t.SandboxTrial.position)
    )
    return [TrialResult.model_validate(data) for data in session.scalars(query)]


def incomparable(baseline: t.SandboxRun | _Finished, candidate: t.SandboxRun | _Finished) -> str:
    """Why two runs cannot be an A/B ("" when they can): both versions must have met the
    same customers, so the same suite with the same seed."""
    if baseline.suite_sha256 != candidate.suite_sha256:
        return "the two runs ran different suites: an A/B needs runs of the same suite"
    if baseline.seed != candidate.seed:
        return (
            f"the two runs used different seeds ({baseline.seed} and {candidate.seed}): an "
            "A/B needs runs with the same seed"
        )
    return ""


def _finished(session: Session, run_id: str) -> _Finished:
    row = _finished_row(session, run_id)
    return _Finished(row.suite_sha256, row.seed, trial_results(session, run_id))


def compare_runs(
    platform: Platform, principal: Principal, baseline_id: str, candidate_id: str
) -> Comparison:
    """Candidate against baseline: both must have succeeded (`Conflict`) over the same suite
    with the same seed, so both versions met the same customers (`ValidationFailed`); the
    scenarios only one of them ran are listed apart."""
    with tenant(platform, principal, "agents:read") as session:
        baseline = _finished(session, baseline_id)
        candidate = _finished(session, candidate_id)
    if problem := incomparable(baseline, candidate):
        raise ValidationFailed(
            problem,
            details={
                "baseline": baseline_id,
                "candidate": candidate_id,
                "baseline_seed": baseline.seed,
                "candidate_seed": candidate.seed,
            },
        )
    return compare(baseline.results, candidate.results)


def _cancel(platform: Platform, principal: Principal, run_id: str) -> s.SandboxRun:
    with tenant(platform, principal, "agents:write") as session:
        row = run_row(session, run_id)
        cancel_open_row(session, row, "sandbox run")
        return run_resource(row)


async def cancel_run(platform: Platform, principal: Principal, run_id: str) -> s.SandboxRun:
    """Stop a queued or running run: it is `cancelled` at once (its finished trials are kept);
    the process running it stops when it next renews its lease (this one: now)."""
    run = await run_db(platform.db, _cancel, platform, principal, run_id)
    await stop_local(run_id)
    return run
