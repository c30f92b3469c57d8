"""Synthetic probes: scripted scenarios run on a schedule against an agent's production
deployment; a run that does not pass opens an alert, the next passing run resolves it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import probes as p
from deputy.domain.resources import Page
from deputy.services import probes as svc

router = APIRouter(tags=["probes"])


@router.post("/probes", status_code=status.HTTP_201_CREATED, response_model=p.Probe)
def create_probe(body: p.ProbeCreate, platform: PlatformDep, principal: PrincipalDep) -> p.Probe:
    """Define a probe: a scripted scenario (the customer's messages and what must hold) run
    every `interval_seconds` against the version deployed on `channel`. An enabled probe is
    due at once."""
    return svc.create_probe(platform, principal, body)


@router.get("/probes", response_model=Page[p.Probe])
def list_probes(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[str | None, Query(max_length=40, description="One agent's only.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[p.Probe]:
    return svc.list_probes(platform, principal, agent_id=agent_id, limit=limit, cursor=cursor)


@router.get("/probes/{probe_id}", response_model=p.Probe)
def get_probe(probe_id: str, platform: PlatformDep, principal: PrincipalDep) -> p.Probe:
    return svc.get_probe(platform, principal, probe_id)


@router.patch("/probes/{probe_id}", response_model=p.Probe)
def update_probe(
    probe_id: str, body: p.ProbeUpdate, platform: PlatformDep, principal: PrincipalDep
) -> p.Probe:
    """Change what is given (the probe is checked again as a whole)."""
    return svc.update_probe(platform, principal, probe_id, body)


@router.delete("/probes/{probe_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_probe(probe_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    """Remove the probe and its runs; its firing alert is resolved."""
    svc.delete_probe(platform, principal, probe_id)


@router.post("/probes/{probe_id}/run", response_model=p.ProbeRun)
async def run_probe(probe_id: str, platform: PlatformDep, principal: PrincipalDep) -> p.ProbeRun:
    """Run the probe now and answer with the run once it has finished (409 while another run
    of it is under way)."""
    return await svc.run_now(platform, principal, probe_id)


@router.get("/probes/{probe_id}/runs", response_model=Page[p.ProbeRun])
def list_runs(
    probe_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    run_status: Annotated[
        p.ProbeStatus | None, Query(alias="status", description="Only runs with this status.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[p.ProbeRun]:
    """The probe's runs, newest first."""
    return svc.list_runs(
        platform, principal, probe_id, status=run_status, limit=limit, cursor=cursor
    )
