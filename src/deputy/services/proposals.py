"""Proposals: a stored agent version offered as a change to the live one, with its diff, its
evidence and its sandbox gate (`deputy.services.proposal_evidence`); and the reviews that
decide it.

Filing needs `agents:write` (the improvement loop files as a system actor, `file_proposal`).
Reviewing needs `reviews:write` *and* a person: only a member's key reviews, never a service
or channel key, so no automation approves its own work. Statuses: `open` →
`changes_requested` → `approved` or `rejected` (from either open state); `deployed` and
`superseded` are set when a deployment uses a proposal (`mark_deployed`). Filing, every
review and every supersession is an audit entry written in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.domain.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal, Scope
from deputy.services import audit
from deputy.services.access import system_principal, tenant
from deputy.services.deployment_routing import live_version
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.proposal_evidence import assess
from deputy.store import tables as t
from deputy.store.tables import utcnow

__all__ = [
    "SYSTEM_DEPLOYMENTS",
    "approved_proposal",
    "create_proposal",
    "file_proposal",
    "get_proposal",
    "list_proposals",
    "list_reviews",
    "mark_deployed",
    "review",
]

SYSTEM_DEPLOYMENTS = "system:deployments"
"""The actor of supersessions when the deployment's caller is not given to `mark_deployed`."""
_FILING_SCOPES: frozenset[Scope] = frozenset({"agents:read", "agents:write"})
_DECIDES: dict[lc.ReviewKind, lc.ProposalStatus] = {
    "request_changes": "changes_requested",
    "approve": "approved",
    "reject": "rejected",
}
_FINAL: frozenset[lc.ReviewKind] = frozenset({"approve", "reject"})
_REVIEW_ACTIONS: dict[lc.ReviewKind, lc.AuditAction] = {
    "comment": "proposal.commented",
    "request_changes": "proposal.changes_requested",
    "approve": "proposal.approved",
    "reject": "proposal.rejected",
}
_SUPERSEDABLE = ("open", "changes_requested", "approved")
_SYSTEM: lc.ActorKind = "system"


def _resource(row: t.Proposal) -> lc.Proposal:
    return lc.Proposal.model_validate(row)


def _row(session: Session, proposal_id: str) -> t.Proposal:
    row = session.scalar(select(t.Proposal).where(t.Proposal.id == proposal_id))
    if row is None:
        raise NotFound("proposal", proposal_id)
    return row


def _spec(session: Session, agent_id: str, number: int) -> dict[str, Any]:
    row = session.scalar(
        select(t.AgentVersion).where(
            t.AgentVersion.agent_id == agent_id, t.AgentVersion.number == number
        )
    )
    if row is None:
        raise NotFound("agent version", f"{agent_id}@{number}")
    return row.spec


def _file(
    platform: Platform,
    principal: Principal,
    body: lc.ProposalCreate,
    origin: lc.ProposalOrigin,
    improvement_run_id: str | None = None,
) -> lc.Proposal:
    with tenant(platform, principal, "agents:write") as session:
        if session.scalar(select(t.Agent.id).where(t.Agent.id == body.agent_id)) is None:
            raise NotFound("agent", body.agent_id)
        candidate = _spec(session, body.agent_id, body.version)
        base = (
            body.base_version
            if body.base_version is not None
            else live_version(session, body.agent_id)
        )
        if base == body.version:
            raise InvalidRequest(
                f"version {body.version} is the base version: propose another version",
                details={"version": body.version, "base_version": base},
            )
        base_spec = None if base is None else _spec(session, body.agent_id, base)
        assessed = assess(session, body, candidate, base, base_spec)
        evidence = assessed.evidence.model_copy(update={"improvement_run_id": improvement_run_id})
        now = utcnow()
        row = t.Proposal(
            id=new_id("prp"),
            workspace_id=principal.workspace_id,
            agent_id=body.agent_id,
            version=body.version,
            base_version=base,
            status="open",
            origin=origin,
            title=body.title,
            rationale=body.rationale,
            evidence=evidence.model_dump(mode="json"),
            changes=[change.model_dump(mode="json") for change in assessed.changes],
            diff_text=assessed.diff_text,
            widens_permissions=assessed.widens_permissions,
            widening_reasons=assessed.widening_reasons,
            gate=assessed.gate.status,
            gate_reason=assessed.gate.reason,
            created_by=principal.key_id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        audit.record_by(
            session,
            principal,
            "proposal.filed",
            "proposal",
            row.id,
            {
                "agent": body.agent_id,
                "version": body.version,
                "base": base,
                "widens_permissions": assessed.widens_permissions,
                "reasons": assessed.widening_reasons,
                "gate": assessed.gate.status,
            },
        )
        return _resource(row)


def create_proposal(
    platform: Platform, principal: Principal, body: lc.ProposalCreate
) -> lc.Proposal:
    """File a proposal for a stored version: the diff from its base (default: the version live
    on `all` channels), the evidence checked and copied, the gate computed."""
    return _file(platform, principal, body, "manual")


def file_proposal(
    platform: Platform,
    workspace_id: str,
    body: lc.ProposalCreate,
    *,
    origin: lc.ProposalOrigin,
    actor: str,
    improvement_run_id: str | None = None,
) -> lc.Proposal:
    """`create_proposal` for the platform itself (`actor` is `system:<component>`): the same
    checks, the audit entry in the system actor's name; the improvement run that filed it
    goes into the evidence."""
    principal = system_principal(workspace_id, actor, _FILING_SCOPES)
    return _file(platform, principal, body, origin, improvement_run_id)


def get_proposal(platform: Platform, principal: Principal, proposal_id: str) -> lc.Proposal:
    with tenant(platform, principal, "agents:read") as session:
        return _resource(_row(session, proposal_id))


def list_proposals(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    status: lc.ProposalStatus | None,
    limit: int,
    cursor: str | None,
) -> r.Page[lc.Proposal]:
    """The workspace's proposals (of one agent, in one status), newest first."""
    query = select(t.Proposal)
    if agent_id is not None:
        query = query.where(t.Proposal.agent_id == agent_id)
    if status is not None:
        query = query.where(t.Proposal.status == status)
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session, query, t.Proposal.id, limit=limit, cursor=cursor, to_resource=_resource
        )


def review(
    platform: Platform, principal: Principal, proposal_id: str, body: lc.ReviewCreate
) -> lc.Review:
    """Comment on, request changes to, approve or reject a proposal, as a person. Deciding a
    proposal that is no longer open is a `Conflict`; a comment never changes the status (and
    may follow the decision)."""
    with tenant(platform, principal, "reviews:write") as session:
        if principal.key_kind != "member":
            raise PermissionDenied(
                f"reviewing a proposal needs a person: this is a {principal.key_kind} key; "
                "use a member's key",
                details={"key_kind": principal.key_kind},
            )
        row = _row(session, proposal_id)
        status = _DECIDES.get(body.kind)
        now = utcnow()
        if status is not None:
            values: dict[str, object] = {"status": status, "updated_at": now}
            if body.kind in _FINAL:
                values |= {"decided_by": principal.key_id, "decided_at": now}
            moved = session.execute(
                update(t.Proposal)
                .where(t.Proposal.id == proposal_id, t.Proposal.status.in_(lc.OPEN_PROPOSALS))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                raise Conflict(
                    f"proposal {proposal_id} is {row.status}: it is no longer open for review",
                    details={"proposal_id": proposal_id, "status": row.status},
                )
            session.refresh(row)
        written = t.ProposalReview(
            id=new_id("rev"),
            workspace_id=principal.workspace_id,
            proposal_id=proposal_id,
            kind=body.kind,
            body=body.body,
            reviewer=principal.key_id,
            member_id=principal.member_id,
            created_at=now,
        )
        session.add(written)
        session.flush()
        audit.record_by(
            session,
            principal,
            _REVIEW_ACTIONS[body.kind],
            "proposal",
            proposal_id,
            {
                "review": written.id,
                "member": principal.member_id,
                "agent": row.agent_id,
                "version": row.version,
                "status": row.status,
                "body": body.body,
            },
        )
        return lc.Review.model_validate(written)


def list_reviews(
    platform: Platform, principal: Principal, proposal_id: str, *, limit: int, cursor: str | None
) -> r.Page[lc.Review]:
    """A proposal's reviews, newest first."""
    with tenant(platform, principal, "agents:read") as session:
        _row(session, proposal_id)
        return paginate(
            session,
            select(t.ProposalReview).where(t.ProposalReview.proposal_id == proposal_id),
            t.ProposalReview.id,
            limit=limit,
            cursor=cursor,
            to_resource=lc.Review.model_validate,
        )


def approved_proposal(session: Session, agent_id: str, version: int) -> t.Proposal | None:
    """The newest approved proposal for that version of the agent (None: none is)."""
    return session.scalar(
        select(t.Proposal)
        .where(
            t.Proposal.agent_id == agent_id,
            t.Proposal.version == version,
            t.Proposal.status == "approved",
        )
        .order_by(t.Proposal.decided_at.desc(), t.Proposal.id.desc())
        .limit(1)
    )


def mark_deployed(session: Session, proposal_id: str, *, by: Principal | None = None) -> None:
    """In the deployment's transaction: the proposal is `deployed`, and every other open or
    approved proposal of the agent made against the same base version is `superseded` (each
    with an audit entry by `by`, else by `SYSTEM_DEPLOYMENTS`). A rejected or superseded
    proposal cannot be deployed (`Conflict`); marking a deployed one again does nothing."""
    row = _row(session, proposal_id)
    if row.status == "deployed":
        return
    if row.status not in _SUPERSEDABLE:
        raise Conflict(
            f"proposal {proposal_id} is {row.status}: it cannot be deployed",
            details={"proposal_id": proposal_id, "status": row.status},
        )
    now = utcnow()
    row.status, row.updated_at = "deployed", now
    same_base = (
        t.Proposal.base_version.is_(None)
        if row.base_version is None
        else t.Proposal.base_version == row.base_version
    )
    others = session.scalars(
        select(t.Proposal)
        .where(
            t.Proposal.agent_id == row.agent_id,
            t.Proposal.id != row.id,
            t.Proposal.status.in_(_SUPERSEDABLE),
            same_base,
        )
        .order_by(t.Proposal.id)
    ).all()
    actor, kind = audit.actor_of(by) if by is not None else (SYSTEM_DEPLOYMENTS, _SYSTEM)
    for other in others:
        other.status, other.updated_at = "superseded", now
        session.flush()
        audit.record(
            session,
            row.workspace_id,
            actor=actor,
            actor_kind=kind,
            action="proposal.superseded",
            subject_type="proposal",
            subject_id=other.id,
            data={
                "agent": other.agent_id,
                "version": other.version,
                "base": other.base_version,
                "by_proposal": row.id,
                "deployed_version": row.version,
            },
        )
    session.flush()
