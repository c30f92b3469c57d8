"""Disputes: contesting the outcome a conversation was billed for.

A dispute names a closed conversation whose outcome was metered (one dispute per
conversation). Accepting it writes, in one transaction with the dispute's resolution and its
audit entry, an `outcome_reversal` usage event (event id `reversal:<outcome event id>`,
quantity -1, the outcome's agent and subject): the outcome's charge is taken back, in the
outcome's period's invoice if it is not issued yet, else as a credit line of the current one
(`deputy.billing.pricing`). Rejecting it leaves the charge. A dispute is decided once.

Opening and deciding need `billing:write`, reading `billing:read`; all three are audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.billing.event_lookup import by_event_ids
from deputy.billing.meter import UsageFact, meter
from deputy.domain import resources as r
from deputy.domain.disputes import Dispute, DisputeDecision, DisputeOpen, DisputeStatus
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.audit import record_by
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow


def _resource(row: t.Dispute) -> Dispute:
    return Dispute.model_validate(row)


def _outcome_event(session: Session, workspace_id: str, event_id: str) -> Any:
    """The outcome event `event_id` (a conversation's is `outcome:<conversation id>`)."""
    found = by_event_ids(session, workspace_id, [event_id])
    return found[0] if found and found[0].kind == "outcome" else None


def _existing(session: Session, conversation_id: str) -> t.Dispute | None:
    return session.scalar(select(t.Dispute).where(t.Dispute.conversation_id == conversation_id))


def _already(found: t.Dispute) -> Conflict:
    return Conflict(
        f"the outcome of conversation {found.conversation_id} is disputed already "
        f"({found.id}, {found.status})",
        details={"dispute_id": found.id, "status": found.status},
    )


def open_dispute(platform: Platform, principal: Principal, body: DisputeOpen) -> Dispute:
    try:
        with tenant(platform, principal, "billing:write") as session:
            conversation = session.get(t.Conversation, body.conversation_id)
            if conversation is None:
                raise NotFound("conversation", body.conversation_id)
            outcome = _outcome_event(session, principal.workspace_id, f"outcome:{conversation.id}")
            if conversation.status != "closed" or outcome is None:
                raise Conflict(
                    "only a closed conversation whose outcome was billed can be disputed",
                    details={"conversation_id": conversation.id, "status": conversation.status},
                )
            found = _existing(session, conversation.id)
            if found is not None:
                raise _already(found)
            row = t.Dispute(
                id=new_id("dsp"),
                workspace_id=principal.workspace_id,
                conversation_id=conversation.id,
                agent_id=outcome.agent_id or conversation.agent_id,
                outcome_event_id=outcome.event_id,
                status="open",
                reason=body.reason,
                opened_by=principal.key_id,
                opened_at=utcnow(),
            )
            session.add(row)
            session.flush()
            record_by(
                session,
                principal,
                "billing.outcome_disputed",
                "dispute",
                row.id,
                {
                    "conversation_id": conversation.id,
                    "outcome_event_id": outcome.event_id,
                    "outcome": outcome.subject,
                    "reason": body.reason,
                },
            )
            return _resource(row)
    except IntegrityError:  # opened at the same moment by another request
        with tenant(platform, principal, "billing:read") as session:
            found = _existing(session, body.conversation_id)
        if found is None:
            raise
        raise _already(found) from None


def _decide(
    session: Session, principal: Principal, dispute_id: str, status: DisputeStatus, note: str
) -> t.Dispute:
    """Move an open dispute to `status` (a guarded update: deciding twice is a conflict)."""
    row = session.get(t.Dispute, dispute_id)
    if row is None:
        raise NotFound("dispute", dispute_id)
    decided = session.execute(
        update(t.Dispute)
        .where(t.Dispute.id == dispute_id, t.Dispute.status == "open")
        .values(
            status=status,
            resolution_note=note,
            resolved_by=principal.key_id,
            resolved_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if not decided.rowcount:  # type: ignore[attr-defined]
        session.refresh(row)
        raise Conflict(
            f"dispute {dispute_id} is {row.status} already",
            details={"dispute_id": dispute_id, "status": row.status},
        )
    session.refresh(row)
    return row


def _reversal(row: t.Dispute, outcome: Any) -> UsageFact:
    return UsageFact(
        event_id=f"reversal:{outcome.event_id}",
        kind="outcome_reversal",
        workspace_id=row.workspace_id,
        quantity=Decimal(-1),
        unit="outcome",
        occurred_at=utcnow(),
        agent_id=outcome.agent_id,
        conversation_id=outcome.conversation_id,
        channel=outcome.channel,
        subject=outcome.subject,
        outcome=outcome.subject,
        reverses_event_id=outcome.event_id,
        data={"dispute_id": row.id, "outcome_occurred_at": outcome.occurred_at.isoformat()},
    )


def accept_dispute(
    platform: Platform, principal: Principal, dispute_id: str, body: DisputeDecision
) -> Dispute:
    """Accept: reverse the outcome's charge (once) and resolve the dispute, audited."""
    with tenant(platform, principal, "billing:write") as session:
        row = _decide(session, principal, dispute_id, "accepted", body.note)
        outcome = _outcome_event(session, principal.workspace_id, row.outcome_event_id)
        if outcome is None:  # events are never deleted: a broken database
            raise NotFound("usage event", row.outcome_event_id)
        fact = _reversal(row, outcome)
        meter(session, fact)
        row.reversal_event_id = fact.event_id
        session.flush()
        record_by(
            session,
            principal,
            "billing.dispute_accepted",
            "dispute",
            row.id,
            {
                "conversation_id": row.conversation_id,
                "outcome_event_id": row.outcome_event_id,
                "reversal_event_id": fact.event_id,
                "note": body.note,
            },
        )
        return _resource(row)


def reject_dispute(
    platform: Platform, principal: Principal, dispute_id: str, body: DisputeDecision
) -> Dispute:
    """Reject: the charge stands."""
    with tenant(platform, principal, "billing:write") as session:
        row = _decide(session, principal, dispute_id, "rejected", body.note)
        record_by(
            session,
            principal,
            "billing.dispute_rejected",
            "dispute",
            row.id,
            {"conversation_id": row.conversation_id, "note": body.note},
        )
        return _resource(row)


def get_dispute(platform: Platform, principal: Principal, dispute_id: str) -> Dispute:
    with tenant(platform, principal, "billing:read") as session:
        row = session.get(t.Dispute, dispute_id)
        if row is None:
            raise NotFound("dispute", dispute_id)
        return _resource(row)


def list_disputes(
    platform: Platform,
    principal: Principal,
    *,
    status: DisputeStatus | None,
    limit: int,
    cursor: str | None,
) -> r.Page[Dispute]:
    """Disputes, newest first (those of one `status` only, when given)."""
    query: Any = select(t.Dispute)
    if status is not None:
        query = query.where(t.Dispute.status == status)
    with tenant(platform, principal, "billing:read") as session:
        return paginate(
            session, query, t.Dispute.id, limit=limit, cursor=cursor, to_resource=_resource
        )
