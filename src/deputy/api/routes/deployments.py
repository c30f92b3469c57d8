"""Deployments: which version of an agent answers on each channel, a canary beside it on a
share of new conversations (sticky per conversation), promote, pause, resume and roll back;
the canary's metrics against the live version; the agent's trust record."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.domain import lifecycle as lc
from deputy.services import deployments as svc
from deputy.services.deployment_metrics import canary_status
from deputy.services.trust import trust_record

router = APIRouter(tags=["deployments"])


@router.post(
    "/agents/{agent_id}/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=lc.Deployment,
)
def deploy(
    agent_id: str,
    body: lc.DeploymentCreate,
    response: Response,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> lc.Deployment:
    """Put a version live on a channel (`all`: every channel without its own deployment), or
    with `canary_percent` start it as the canary beside the live version. Needs an approved
    proposal for the version (`proposal_id`, or the newest approved one) or a member's key."""
    deployment = svc.deploy(platform, principal, agent_id, body)
    response.headers["Location"] = f"/v1/deployments/{deployment.id}"
    return deployment


@router.get("/agents/{agent_id}/deployments", response_model=list[lc.Deployment])
def list_deployments(
    agent_id: str, platform: PlatformDep, principal: PrincipalDep
) -> list[lc.Deployment]:
    """The agent's deployments, one per channel, `all` first."""
    return svc.list_deployments(platform, principal, agent_id)


@router.get("/deployments/{deployment_id}", response_model=lc.Deployment)
def get_deployment(
    deployment_id: str, platform: PlatformDep, principal: PrincipalDep
) -> lc.Deployment:
    return svc.get_deployment(platform, principal, deployment_id)


@router.post("/deployments/{deployment_id}/promote", response_model=lc.Deployment)
def promote(deployment_id: str, platform: PlatformDep, principal: PrincipalDep) -> lc.Deployment:
    """The canary becomes the live version (409 without a canary)."""
    return svc.promote(platform, principal, deployment_id)


@router.post("/deployments/{deployment_id}/pause", response_model=lc.Deployment)
def pause(deployment_id: str, platform: PlatformDep, principal: PrincipalDep) -> lc.Deployment:
    """The canary takes no new conversations until resumed; its own conversations go on."""
    return svc.pause(platform, principal, deployment_id)


@router.post("/deployments/{deployment_id}/resume", response_model=lc.Deployment)
def resume(deployment_id: str, platform: PlatformDep, principal: PrincipalDep) -> lc.Deployment:
    return svc.resume(platform, principal, deployment_id)


@router.post("/deployments/{deployment_id}/rollback", response_model=lc.Deployment)
def rollback(
    deployment_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    body: lc.RollbackRequest | None = None,
) -> lc.Deployment:
    """With a canary: remove it (the live version stays). Without: the previous version goes
    live again at once (409 when there is none)."""
    return svc.rollback(platform, principal, deployment_id, body or lc.RollbackRequest())


@router.get("/deployments/{deployment_id}/canary", response_model=lc.CanaryStatus)
def get_canary(
    deployment_id: str, platform: PlatformDep, principal: PrincipalDep
) -> lc.CanaryStatus:
    """The canary's metrics beside the live version's since it started, the rollback
    triggers and SLOs it breaches, and the decision (autopilot acts on it only under
    `auto_with_rollback`). 409 without a canary."""
    return canary_status(platform, principal, deployment_id)


@router.get("/agents/{agent_id}/trust", response_model=lc.TrustRecord)
def get_trust(agent_id: str, platform: PlatformDep, principal: PrincipalDep) -> lc.TrustRecord:
    """What justifies widening the agent's autonomy: proposals approved, rejected and sent
    back; canaries started by autopilot, promoted and rolled back."""
    return trust_record(platform, principal, agent_id)
