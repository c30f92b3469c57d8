"""Autonomy: what the platform does by itself under an agent's `auto_with_rollback` policy
(always the live version's policy: a candidate cannot grant itself autonomy).

- `autopilot_canary` starts a proposal's version as a canary on `all` channels when the live
  version allows it, the proposal passed the sandbox gate and it does not widen the agent's
  permissions; otherwise it records why not (`autopilot.declined`). A permission-widening
  change always waits for a human.
- `check_canaries` judges every running canary (`deputy.lifecycle.canary`) and, under
  `auto_with_rollback`, rolls a breaching canary back or promotes a proven one, recorded by
  `system:autopilot` with the breaches and both arms' metrics. A canary that widens the
  agent's permissions (a person started it) is rolled back on a breach but only a person
  promotes it. Canaries under `proposal_only` are judged and reported, never acted on.
- `keep_watching_canaries` runs `check_canaries` every `canary_check_seconds`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import NotFound
from deputy.services import audit
from deputy.services.access import system_principal
from deputy.services.conversation_store import agent_spec
from deputy.services.deployment_metrics import judge
from deputy.services.deployments import promote_canary, rollback_canary, start_canary, widening
from deputy.services.platform import Platform
from deputy.services.proposals import mark_deployed
from deputy.store import tables as t

log = logging.getLogger(__name__)

AUTONOMOUS = "auto_with_rollback"
WILLING = frozenset({"open", "approved"})
"""Proposal statuses autopilot may carry out (a reviewer asking for changes stops it)."""


def _decline_reason(session: Session, proposal: t.Proposal, row: t.Deployment | None) -> str:
    """Why autopilot must not start this proposal's canary ("" when it may)."""
    if proposal.status not in WILLING:
        return f"the proposal is {proposal.status}"
    if row is None:
        return "no version is live on all channels: a human deploys the first one"
    mode = agent_spec(session, row.agent_id, row.live_version).autonomy.mode
    if mode != AUTONOMOUS:
        return f"the live version's autonomy is {mode}: a human approves every change"
    reasons = list(proposal.widening_reasons) if proposal.widens_permissions else []
    reasons += [
        why
        for why in widening(session, row.agent_id, row.live_version, proposal.version)
        if why not in reasons
    ]
    if proposal.widens_permissions or reasons:
        listed = "; ".join(reasons) or "the proposal widens them"
        return f"widens permissions: {listed} — a human must approve"
    if proposal.gate != "passed":
        why = f": {proposal.gate_reason}" if proposal.gate_reason else ""
        return f"the sandbox gate is {proposal.gate}{why}"
    if proposal.version == row.live_version:
        return f"version {proposal.version} is already live"
    if row.canary_version is not None:
        return f"version {row.canary_version} is already the canary"
    return ""


def autopilot_canary(
    platform: Platform, workspace_id: str, proposal_id: str
) -> lc.Deployment | None:
    """Start the proposal's version as a canary at the live version's `canary_percent` on
    `all` channels, when autonomy allows it (see the module doc); None, with an
    `autopilot.declined` audit entry saying why, when it does not."""
    with platform.db.tenant_session(workspace_id) as session:
        proposal = session.scalar(select(t.Proposal).where(t.Proposal.id == proposal_id))
        if proposal is None:
            raise NotFound("proposal", proposal_id)
        row = session.scalar(
            select(t.Deployment)
            .where(
                t.Deployment.agent_id == proposal.agent_id,
                t.Deployment.channel == lc.ALL_CHANNELS,
            )
            .with_for_update()
        )
        reason = _decline_reason(session, proposal, row)
        if reason or row is None:
            audit.record(
                session,
                workspace_id,
                actor=lc.SYSTEM_AUTOPILOT,
                actor_kind="system",
                action="autopilot.declined",
                subject_type="proposal",
                subject_id=proposal.id,
                data={"agent_id": proposal.agent_id, "version": proposal.version, "reason": reason},
            )
            return None
        autonomy = agent_spec(session, row.agent_id, row.live_version).autonomy
        actor = lc.SYSTEM_AUTOPILOT
        start_canary(
            session,
            row,
            proposal.version,
            autonomy.canary_percent,
            actor=actor,
            actor_kind="system",
            reason=f"proposal {proposal.id} passed the sandbox gate and widens no permission",
            proposal_id=proposal.id,
            by_autopilot=True,
        )
        mark_deployed(session, proposal.id, by=system_principal(workspace_id, actor, frozenset()))
        return lc.Deployment.model_validate(row)


def _check(
    platform: Platform, workspace_id: str, deployment_id: str, now: datetime | None
) -> lc.CanaryStatus | None:
    """Judge one canary and, under auto_with_rollback, act on the decision."""
    with platform.db.tenant_session(workspace_id) as session:
        row = session.scalar(
            select(t.Deployment).where(t.Deployment.id == deployment_id).with_for_update()
        )
        if row is None or row.canary_version is None or row.canary_paused:
            return None  # changed since it was listed
        status, _ = judge(session, row, now)
        if status.autonomy != AUTONOMOUS or status.decision == "wait":
            return status
        widens = widening(session, row.agent_id, row.live_version, row.canary_version)
        if status.decision == "promote" and widens:
            why = (
                f"{status.reason}; it widens permissions ({'; '.join(widens)}): a human promotes it"
            )
            return status.model_copy(update={"reason": why})
        evidence = {
            "breaches": status.breaches,
            "live": status.live.model_dump(mode="json"),
            "canary": status.canary.model_dump(mode="json"),
        }
        act = rollback_canary if status.decision == "rollback" else promote_canary
        act(
            session,
            row,
            actor=lc.SYSTEM_AUTOPILOT,
            actor_kind="system",
            reason=status.reason,
            metrics=evidence,
        )
        return status


def check_canaries(platform: Platform, now: datetime | None = None) -> list[lc.CanaryStatus]:
    """Judge every running (unpaused) canary of every workspace and act under
    auto_with_rollback; returns each one's status (the decision taken, or only reported).
    A canary that cannot be judged is logged and skipped: the others still are."""
    with platform.db.session() as session:
        running = session.execute(
            select(t.Deployment.workspace_id, t.Deployment.id).where(
                t.Deployment.canary_version.is_not(None), t.Deployment.canary_paused == false()
            )
        ).all()
    statuses: list[lc.CanaryStatus] = []
    for workspace_id, deployment_id in running:
        try:
            status = _check(platform, workspace_id, deployment_id, now)
        except Exception:
            log.exception("checking a canary failed", extra={"deployment_id": deployment_id})
            continue
        if status is not None:
            statuses.append(status)
    return statuses


async def keep_watching_canaries(platform: Platform) -> None:
    """Check the canaries every `canary_check_seconds` until cancelled."""
    while True:
        try:
            await platform.db.run(check_canaries, platform)
        except Exception:
            log.exception("checking canaries failed")
        await asyncio.sleep(platform.settings.canary_check_seconds)
