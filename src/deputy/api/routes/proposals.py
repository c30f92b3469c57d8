"""Proposals: a stored agent version offered as a change to the live one, with its spec diff,
what widens the agent's permissions, its sandbox evidence and gate; and the reviews (by
people only) that comment on, send back, approve or reject it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.services import proposals as svc

router = APIRouter(tags=["proposals"])


@router.post("/proposals", status_code=status.HTTP_201_CREATED, response_model=lc.Proposal)
def create_proposal(
    body: lc.ProposalCreate, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> lc.Proposal:
    """Offer a stored version as a change to `base_version` (default: the version live on
    `all` channels). The sandbox runs given are checked (succeeded, of the right versions, the
    same suite and seed) and their scorecard and A/B copied in; the diff, what widens
    permissions and the sandbox gate are computed."""
    proposal = svc.create_proposal(platform, principal, body)
    response.headers["Location"] = f"/v1/proposals/{proposal.id}"
    return proposal


@router.get("/proposals", response_model=r.Page[lc.Proposal])
def list_proposals(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[
        str | None, Query(max_length=40, description="Only this agent's proposals.")
    ] = None,
    status: Annotated[
        lc.ProposalStatus | None, Query(description="Only proposals in this status.")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[lc.Proposal]:
    """The workspace's proposals, newest first."""
    return svc.list_proposals(
        platform, principal, agent_id=agent_id, status=status, limit=limit, cursor=cursor
    )


@router.get("/proposals/{proposal_id}", response_model=lc.Proposal)
def get_proposal(proposal_id: str, platform: PlatformDep, principal: PrincipalDep) -> lc.Proposal:
    return svc.get_proposal(platform, principal, proposal_id)


@router.post(
    "/proposals/{proposal_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=lc.Review,
)
def review_proposal(
    proposal_id: str, body: lc.ReviewCreate, platform: PlatformDep, principal: PrincipalDep
) -> lc.Review:
    """Comment, request changes, approve or reject, with a member's key (`reviews:write`;
    service and channel keys get 403). Deciding a proposal that is no longer open: 409."""
    return svc.review(platform, principal, proposal_id, body)


@router.get("/proposals/{proposal_id}/reviews", response_model=r.Page[lc.Review])
def list_reviews(
    proposal_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[lc.Review]:
    """The proposal's reviews, newest first."""
    return svc.list_reviews(platform, principal, proposal_id, limit=limit, cursor=cursor)
