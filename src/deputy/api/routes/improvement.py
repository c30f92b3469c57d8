"""The improvement loop: start a run over an agent's recent production conversations (it goes
on in the background; poll the run), read its report, list runs, cancel one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.domain.improvement import ImprovementRun, ImprovementRunCreate
from deputy.services import improvement as svc

router = APIRouter(tags=["improvement"])

_MODEL_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": r.ErrorBody, "description": "The run's model is not available"},
}


@router.post(
    "/improvement/runs",
    status_code=status.HTTP_201_CREATED,
    response_model=ImprovementRun,
    responses=_MODEL_UNAVAILABLE,
)
async def create_run(
    body: ImprovementRunCreate, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> ImprovementRun:
    """Start an improvement run for an agent: evaluate its production conversations of the
    window, cluster the failures, compare with the previous period, and for the top clusters
    try a change, prove it against the live version in the sandbox and file a proposal when it
    does not regress. 409 while another run of the agent is open. Poll the run (`Location`)."""
    run = await svc.create_run(platform, principal, body)
    response.headers["Location"] = f"/v1/improvement/runs/{run.id}"
    return run


@router.get("/improvement/runs", response_model=r.Page[ImprovementRun])
def list_runs(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[
        str | None, Query(max_length=40, description="Only this agent's runs.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[ImprovementRun]:
    """The workspace's improvement runs (of one agent), newest first."""
    return svc.list_runs(platform, principal, agent_id=agent_id, limit=limit, cursor=cursor)


@router.get("/improvement/runs/{improvement_run_id}", response_model=ImprovementRun)
def get_run(
    improvement_run_id: str, platform: PlatformDep, principal: PrincipalDep
) -> ImprovementRun:
    """The run: its status and progress and, once it has succeeded, the whole report (each
    conversation's evaluation, the failure clusters, the regressions against the previous
    period, and every candidate with its status, reason, sandbox runs, A/B and proposal)."""
    return svc.get_run(platform, principal, improvement_run_id)


@router.post("/improvement/runs/{improvement_run_id}/cancel", response_model=ImprovementRun)
async def cancel_run(
    improvement_run_id: str, platform: PlatformDep, principal: PrincipalDep
) -> ImprovementRun:
    """Stop a queued or running run (409 once it has finished)."""
    return await svc.cancel_run(platform, principal, improvement_run_id)
