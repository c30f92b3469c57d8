"""An agent's trust record: how its proposals fared with reviewers and how its canaries went,
counted from the proposals and the audit log (which keeps every decision even after a
proposal moves on to `deployed` or `superseded`). It is the evidence for widening an agent's
autonomy, or for taking it back."""

from __future__ import annotations

from sqlalchemy import func, select

from deputy.domain import lifecycle as lc
from deputy.domain.errors import NotFound
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.conversation_store import agent_spec
from deputy.services.deployment_routing import live_version
from deputy.services.platform import Platform
from deputy.store import tables as t

REVIEW_ACTIONS = ("proposal.approved", "proposal.rejected", "proposal.changes_requested")
DEPLOYMENT_ACTIONS = ("deployment.canary_started", "deployment.promoted", "deployment.rolled_back")


def trust_record(platform: Platform, principal: Principal, agent_id: str) -> lc.TrustRecord:
    """Proposals filed, approved, rejected and sent back (each proposal counted once per
    decision); canaries autopilot started, promoted and rolled back; rollbacks by autopilot
    and by people; and the autonomy of the version live on all channels."""
    with tenant(platform, principal, "agents:read") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
        if agent is None:
            raise NotFound("agent", agent_id)
        proposal_ids = select(t.Proposal.id).where(t.Proposal.agent_id == agent_id)
        filed = session.scalar(select(func.count()).select_from(proposal_ids.subquery())) or 0
        decided: dict[str, int] = {
            action: number
            for action, number in session.execute(
                select(
                    t.AuditEntryRow.action, func.count(func.distinct(t.AuditEntryRow.subject_id))
                )
                .where(
                    t.AuditEntryRow.subject_id.in_(proposal_ids),
                    t.AuditEntryRow.action.in_(REVIEW_ACTIONS),
                )
                .group_by(t.AuditEntryRow.action)
            )
        }
        deployment_ids = select(t.Deployment.id).where(t.Deployment.agent_id == agent_id)
        entries = session.execute(
            select(t.AuditEntryRow.action, t.AuditEntryRow.actor, t.AuditEntryRow.data).where(
                t.AuditEntryRow.subject_id.in_(deployment_ids),
                t.AuditEntryRow.action.in_(DEPLOYMENT_ACTIONS),
            )
        ).all()
        live = live_version(session, agent_id)
        autonomy = None if live is None else agent_spec(session, agent_id, live).autonomy.mode

    def count(action: str, *, by_autopilot: bool | None = None, canary: bool = False) -> int:
        return sum(
            1
            for done, actor, data in entries
            if done == action
            and (by_autopilot is None or (actor == lc.SYSTEM_AUTOPILOT) == by_autopilot)
            and (not canary or data.get("rolled_back") == "canary")
        )

    return lc.TrustRecord(
        agent_id=agent_id,
        autonomy=autonomy,
        proposals=filed,
        approved=decided.get("proposal.approved", 0),
        rejected=decided.get("proposal.rejected", 0),
        changes_requested=decided.get("proposal.changes_requested", 0),
        auto_deployed=count("deployment.canary_started", by_autopilot=True),
        canaries_promoted=count("deployment.promoted"),
        canaries_rolled_back=count("deployment.rolled_back", canary=True),
        automatic_rollbacks=count("deployment.rolled_back", by_autopilot=True),
        manual_rollbacks=count("deployment.rolled_back", by_autopilot=False),
    )
