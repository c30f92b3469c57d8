"""The improvement loop as a platform capability: start a run over an agent's recent production
conversations (it goes on in the background, `deputy.services.improvement_runs`), follow it,
read its report (every step: evaluations, clusters, regressions, candidates and why each was
proposed or rejected), list runs, cancel one.

Starting and cancelling a run needs `agents:write`, reading runs `agents:read`. One run at a
time per agent: a second is refused (`Conflict`) while one is open. Everything a run needs is
checked before it is stored (the agent and a version of it, the window, the model, the sandbox
world)."""

from __future__ import annotations

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import NotFound
from deputy.domain.improvement import (
    ImprovementProgress,
    ImprovementReport,
    ImprovementRun,
    ImprovementRunCreate,
)
from deputy.domain.tenancy import Principal
from deputy.services.access import require, tenant
from deputy.services.improvement_runs import agent_model, insert_run, start_run, stop_local
from deputy.services.leased_jobs import cancel_open_row, run_db
from deputy.services.models import resolve_model
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t

__all__ = ["cancel_run", "create_run", "get_run", "list_runs"]


def run_resource(row: t.ImprovementRun) -> ImprovementRun:
    return ImprovementRun(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        trigger="schedule" if row.trigger == "schedule" else "manual",
        status=row.status,
        model=row.model,
        progress=ImprovementProgress.model_validate(row.progress),
        report=ImprovementReport.model_validate(row.report) if row.report else None,
        proposal_ids=list(row.proposal_ids),
        error={str(k): str(v) for k, v in row.error.items()} if row.error else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _run_row(session: Session, run_id: str) -> t.ImprovementRun:
    row = session.scalar(select(t.ImprovementRun).where(t.ImprovementRun.id == run_id))
    if row is None:
        raise NotFound("improvement run", run_id)
    return row


def _model_name(platform: Platform, principal: Principal, body: ImprovementRunCreate) -> str:
    """The run's model: the one asked for, else the one the agent's conversations use."""
    with tenant(platform, principal, "agents:write") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == body.agent_id))
        if agent is None:
            raise NotFound("agent", body.agent_id)
        return body.model or agent_model(platform, session, agent)


def _insert(
    platform: Platform, principal: Principal, body: ImprovementRunCreate, model: str
) -> ImprovementRun:
    with tenant(platform, principal, "agents:write") as session:
        row = insert_run(
            platform, session, body, trigger="manual", key_id=principal.key_id, model=model
        )
        return run_resource(row)


async def create_run(
    platform: Platform, principal: Principal, body: ImprovementRunCreate
) -> ImprovementRun:
    """Check everything the run needs, store it `queued` and start it in the background."""
    require(principal, "agents:write")
    model = await run_db(platform.db, _model_name, platform, principal, body)
    await anyio.to_thread.run_sync(resolve_model, platform, principal.workspace_id, model)
    run = await run_db(platform.db, _insert, platform, principal, body, model)
    start_run(platform, principal.workspace_id, run.id)
    return run


def get_run(platform: Platform, principal: Principal, run_id: str) -> ImprovementRun:
    with tenant(platform, principal, "agents:read") as session:
        return run_resource(_run_row(session, run_id))


def list_runs(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[ImprovementRun]:
    """The workspace's runs (of one agent), newest first."""
    query = select(t.ImprovementRun)
    if agent_id is not None:
        query = query.where(t.ImprovementRun.agent_id == agent_id)
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            query,
            t.ImprovementRun.id,
            limit=limit,
            cursor=cursor,
            to_resource=run_resource,
        )


def _cancel(platform: Platform, principal: Principal, run_id: str) -> ImprovementRun:
    with tenant(platform, principal, "agents:write") as session:
        row = _run_row(session, run_id)
        cancel_open_row(session, row, "improvement run")
        return run_resource(row)


async def cancel_run(platform: Platform, principal: Principal, run_id: str) -> ImprovementRun:
    """Stop a queued or running run: it is `cancelled` at once, and the sandbox runs of a
    validation it was waiting for are cancelled with it. Candidate versions already stored stay
    (undeployed); proposals already filed stay open for review."""
    run = await run_db(platform.db, _cancel, platform, principal, run_id)
    await stop_local(run_id)
    return run
