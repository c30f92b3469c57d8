"""A canary's metrics from the database: for each arm of a deployment (the live and the canary
version), the conversations that deployment gave that version since the canary started, and
their finished turns; and the canary's status (metrics side by side, breaches, decision).

What counts (see `deputy.lifecycle.canary`): a conversation is settled when it has an outcome
or was handed to a human (`Conversation.handoff`); a turn is finished when it ran (`started_at`)
and ended `completed` or `failed`; a turn violated a guardrail when one of its `guardrail`
entries (input, tool call, or reply: what `TurnContext.record_guardrail` writes) has the
action `block` or `escalate`; its latency is `finished_at - started_at`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import Principal
from deputy.guardrails.decisions import STOPPING
from deputy.lifecycle.canary import ConversationSample, TurnSample, arm_metrics, decide
from deputy.services.access import tenant
from deputy.services.conversation_store import agent_spec
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

FINISHED_TURNS = ("completed", "failed")


def measure_arm(
    session: Session, deployment_id: str, version: int, since: datetime
) -> lc.ArmMetrics:
    """The metrics of the conversations the deployment gave `version` since `since`."""
    where = (
        t.Conversation.deployment_id == deployment_id,
        t.Conversation.agent_version == version,
        t.Conversation.created_at >= since,
    )
    conversations = [
        ConversationSample(outcome=outcome, handed_off=bool(handoff))
        for outcome, handoff in session.execute(
            select(t.Conversation.outcome, t.Conversation.handoff).where(*where)
        )
    ]
    stopped: set[str] = set()
    for turn_id, data in session.execute(
        select(t.ConversationEntry.turn_id, t.ConversationEntry.data)
        .join(t.Conversation, t.ConversationEntry.conversation_id == t.Conversation.id)
        .where(*where, t.ConversationEntry.kind == "guardrail")
    ):
        if turn_id is not None and isinstance(data, dict) and data.get("action") in STOPPING:
            stopped.add(turn_id)
    turns = [
        TurnSample(
            failed=status == "failed",
            guardrail_stopped=turn_id in stopped,
            latency_ms=None
            if finished is None or started is None
            else (finished - started).total_seconds() * 1000,
        )
        for turn_id, status, started, finished in session.execute(
            select(t.Turn.id, t.Turn.status, t.Turn.started_at, t.Turn.finished_at)
            .join(t.Conversation, t.Turn.conversation_id == t.Conversation.id)
            .where(*where, t.Turn.status.in_(FINISHED_TURNS), t.Turn.started_at.is_not(None))
        )
    ]
    return arm_metrics(version, conversations, turns)


def judge(
    session: Session, row: t.Deployment, now: datetime | None = None
) -> tuple[lc.CanaryStatus, AgentSpec]:
    """The canary's status (against the live version's rollback triggers and SLOs) and the
    live version's spec. The deployment must have a canary."""
    since = row.canary_started_at
    if row.canary_version is None or since is None:
        raise Conflict(f"deployment {row.id} has no canary", details={"deployment_id": row.id})
    spec = agent_spec(session, row.agent_id, row.live_version)
    live = measure_arm(session, row.id, row.live_version, since)
    canary = measure_arm(session, row.id, row.canary_version, since)
    action, found, reason = decide(
        live, canary, spec.autonomy, spec.slos, started_at=since, now=now or utcnow()
    )
    status = lc.CanaryStatus(
        deployment_id=row.id,
        live=live,
        canary=canary,
        breaches=found,
        decision=action,
        reason=reason,
        autonomy=spec.autonomy.mode,
    )
    return status, spec


def canary_status(platform: Platform, principal: Principal, deployment_id: str) -> lc.CanaryStatus:
    """The canary's metrics beside the live version's, what it breaches, and what autonomy
    would decide (it acts only under `auto_with_rollback`). 409 without a canary."""
    with tenant(platform, principal, "agents:read") as session:
        row = session.scalar(select(t.Deployment).where(t.Deployment.id == deployment_id))
        if row is None:
            raise NotFound("deployment", deployment_id)
        return judge(session, row)[0]
