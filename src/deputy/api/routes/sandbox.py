"""The sandbox: prove an agent version against a scenario suite with simulated (or scripted)
customers, k trials per scenario, in a tool world of sandbox targets only (it runs in the
background; poll the run); read its trials and scorecard; compare two runs; cancel one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import resources as r
from deputy.domain import sandbox as s
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.services import sandbox as svc

router = APIRouter(tags=["sandbox"])

RunId = Annotated[str, Query(min_length=1, max_length=40, description="A sandbox run's id.")]
_MODEL_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": r.ErrorBody, "description": "A model of the run is not available"},
}


@router.post(
    "/sandbox/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=s.SandboxRun,
    responses=_MODEL_UNAVAILABLE,
)
async def create_run(
    body: s.SandboxRunCreate, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> s.SandboxRun:
    """Start a sandbox run: every scenario of the suite (or of build `build_id`), `trials`
    times, against the agent version, each trial in a fresh tool world made only of the
    `world` targets (unmapped sources replay recorded calls). Poll the run (`Location`)."""
    run = await svc.create_run(platform, principal, body)
    response.headers["Location"] = f"/v1/sandbox/runs/{run.id}"
    return run


@router.get("/sandbox/runs", response_model=r.Page[s.SandboxRun])
def list_runs(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[
        str | None, Query(max_length=40, description="Only this agent's runs.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[s.SandboxRun]:
    return svc.list_runs(platform, principal, agent_id=agent_id, limit=limit, cursor=cursor)


@router.get("/sandbox/runs/{run_id}", response_model=s.SandboxRun)
def get_run(run_id: str, platform: PlatformDep, principal: PrincipalDep) -> s.SandboxRun:
    """The run: what it runs, where its tools go, its status and progress, and once it has
    succeeded its scorecard."""
    return svc.get_run(platform, principal, run_id)


@router.get("/sandbox/runs/{run_id}/trials", response_model=r.Page[s.SandboxTrial])
def list_trials(
    run_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    scenario_id: Annotated[
        str | None, Query(max_length=64, description="Only this scenario's trials.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[s.SandboxTrial]:
    """The finished trials, in suite order then trial number: transcript, tool calls, checks,
    reward, usage and time (also while the run goes on)."""
    return svc.list_trials(
        platform, principal, run_id, scenario_id=scenario_id, limit=limit, cursor=cursor
    )


@router.get("/sandbox/runs/{run_id}/scorecard", response_model=Scorecard)
def run_scorecard(run_id: str, platform: PlatformDep, principal: PrincipalDep) -> Scorecard:
    """pass^k with confidence intervals, per-scenario results, outcomes, cost and latency
    (409 until the run has succeeded)."""
    return svc.run_scorecard(platform, principal, run_id)


@router.post("/sandbox/runs/{run_id}/cancel", response_model=s.SandboxRun)
async def cancel_run(run_id: str, platform: PlatformDep, principal: PrincipalDep) -> s.SandboxRun:
    """Stop a queued or running run; the trials it finished are kept (409 once it has
    finished)."""
    return await svc.cancel_run(platform, principal, run_id)


@router.get("/sandbox/comparisons", response_model=Comparison)
def compare_runs(
    baseline: RunId, candidate: RunId, platform: PlatformDep, principal: PrincipalDep
) -> Comparison:
    """Candidate against baseline over the same suite: per-scenario pass rates, regressions,
    the change in pass^1 with its interval and a sign test (409 until both have succeeded)."""
    return svc.compare_runs(platform, principal, baseline, candidate)
