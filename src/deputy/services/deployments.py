"""Deployments: which version of an agent answers new conversations on a channel (or on `all`
channels: every channel without its own deployment), and at most one canary beside it that takes
`canary_percent` of new conversations, sticky per conversation (a hash of its id).

Deploying needs `deployments:write` and either an approved proposal for the version or a
member's key (a human deciding). Every change (deployed, canary started, promoted, paused,
resumed, rolled back) is written to the audit log in the same transaction, with the versions
before and after, the reason, and, when the version going live or into the canary widens the
agent's permissions against the live one, why (the permission change record)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from deputy.domain.ids import new_id
from deputy.domain.spec import diff_specs
from deputy.domain.tenancy import Principal
from deputy.services import audit
from deputy.services.access import tenant
from deputy.services.conversation_store import agent_spec
from deputy.services.platform import Platform
from deputy.services.proposals import approved_proposal, mark_deployed
from deputy.store import tables as t
from deputy.store.tables import utcnow


def _resource(row: t.Deployment) -> lc.Deployment:
    return lc.Deployment.model_validate(row)


def _state(row: t.Deployment) -> dict[str, Any]:
    return {
        "live_version": row.live_version,
        "previous_version": row.previous_version,
        "canary_version": row.canary_version,
        "canary_percent": row.canary_percent,
        "canary_paused": row.canary_paused,
    }


def _row(session: Session, deployment_id: str, *, lock: bool = False) -> t.Deployment:
    query = select(t.Deployment).where(t.Deployment.id == deployment_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("deployment", deployment_id)
    return row


def _agent(session: Session, agent_id: str) -> t.Agent:
    row = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
    if row is None:
        raise NotFound("agent", agent_id)
    return row


def widening(session: Session, agent_id: str, before: int | None, after: int | None) -> list[str]:
    """Why version `after` widens the agent's permissions against `before` (either None:
    nothing to compare)."""
    if before is None or after is None or before == after:
        return []
    diff = diff_specs(agent_spec(session, agent_id, before), agent_spec(session, agent_id, after))
    return [c.widens_because for c in diff.changes if c.widens_because is not None]


def _record(
    session: Session,
    row: t.Deployment,
    action: lc.AuditAction,
    by: tuple[str, lc.ActorKind],
    before: dict[str, Any],
    data: dict[str, Any],
) -> None:
    actor, actor_kind = by
    audit.record(
        session,
        row.workspace_id,
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        subject_type="deployment",
        subject_id=row.id,
        data={"agent_id": row.agent_id, "channel": row.channel, "before": before}
        | {"after": _state(row), **data},
    )


@contextmanager
def _audited(
    session: Session,
    row: t.Deployment,
    action: lc.AuditAction,
    by: tuple[str, lc.ActorKind],
    reason: str,
    *,
    goes_live: int | None = None,
    **extra: Any,
) -> Iterator[None]:
    """Change `row` in the block, then record the change: the state before and after, the
    reason, and why `goes_live` (the version taking conversations) widens the agent's
    permissions against the live version before the change."""
    before = _state(row)
    widens = widening(session, row.agent_id, row.live_version, goes_live)
    yield
    row.updated_at = utcnow()
    session.flush()
    _record(
        session, row, action, by, before, {"reason": reason, "widens_permissions": widens, **extra}
    )


def list_deployments(
    platform: Platform, principal: Principal, agent_id: str
) -> list[lc.Deployment]:
    """The agent's deployments, one per channel (`all` first)."""
    with tenant(platform, principal, "agents:read") as session:
        _agent(session, agent_id)
        rows = session.scalars(select(t.Deployment).where(t.Deployment.agent_id == agent_id))
        ordered = sorted(rows, key=lambda r: (r.channel != lc.ALL_CHANNELS, r.channel))
        return [_resource(row) for row in ordered]


def get_deployment(platform: Platform, principal: Principal, deployment_id: str) -> lc.Deployment:
    with tenant(platform, principal, "agents:read") as session:
        return _resource(_row(session, deployment_id))


# ---- deploying --------------------------------------------------------------------------------


def _authorized_proposal(
    session: Session, principal: Principal, agent_id: str, body: lc.DeploymentCreate
) -> t.Proposal | None:
    """The proposal the deployment carries out (given, or found approved), or None for a
    human deploying without one; PermissionDenied for anyone else without one."""
    if body.proposal_id is not None:
        found = session.scalar(select(t.Proposal).where(t.Proposal.id == body.proposal_id))
        if found is None:
            raise NotFound("proposal", body.proposal_id)
        if (found.agent_id, found.version) != (agent_id, body.version):
            raise InvalidRequest(
                f"proposal {found.id} is for {found.agent_id} version {found.version}",
                details={"proposal_id": found.id},
            )
        if found.status != "approved":
            raise Conflict(
                f"proposal {found.id} is {found.status}, not approved",
                details={"proposal_id": found.id, "status": found.status},
            )
        return found
    proposal = approved_proposal(session, agent_id, body.version)
    if proposal is None and principal.key_kind != "member":
        raise PermissionDenied(
            f"deploying version {body.version} needs an approved proposal for it, or a "
            "member's key (a human deciding)",
            details={"agent_id": agent_id, "version": body.version},
        )
    return proposal


def _go_live(
    session: Session,
    row: t.Deployment,
    version: int,
    by: tuple[str, lc.ActorKind],
    reason: str,
    **extra: Any,
) -> None:
    """Put `version` live on an existing deployment at once (a canary beside it is dropped)."""
    if version == row.live_version:
        raise Conflict(
            f"version {version} is already live on {row.channel}",
            details={"deployment_id": row.id, "version": version},
        )
    with _audited(
        session, row, "deployment.deployed", by, reason, goes_live=version, version=version, **extra
    ):
        row.previous_version, row.live_version = row.live_version, version
        _clear_canary(row)


def start_canary(
    session: Session,
    row: t.Deployment,
    version: int,
    percent: int,
    *,
    actor: str,
    actor_kind: lc.ActorKind,
    reason: str,
    proposal_id: str | None,
    by_autopilot: bool,
) -> None:
    """Start `version` as the deployment's canary on `percent` of new conversations."""
    if version == row.live_version:
        raise Conflict(
            f"version {version} is the live version; a canary is another version",
            details={"deployment_id": row.id, "version": version},
        )
    if row.canary_version is not None:
        raise Conflict(
            f"version {row.canary_version} is already the canary on {row.channel}: promote or "
            "roll it back first",
            details={"deployment_id": row.id, "canary_version": row.canary_version},
        )
    action: lc.AuditAction = "deployment.canary_started"
    extra = {"version": version, "proposal_id": proposal_id, "autopilot": by_autopilot}
    with _audited(session, row, action, (actor, actor_kind), reason, goes_live=version, **extra):
        row.canary_version, row.canary_percent, row.canary_paused = version, percent, False
        row.canary_started_at = utcnow()
        row.canary_proposal_id, row.canary_by_autopilot = proposal_id, by_autopilot


def _clear_canary(row: t.Deployment) -> None:
    row.canary_version, row.canary_percent, row.canary_paused = None, 0, False
    row.canary_started_at, row.canary_proposal_id, row.canary_by_autopilot = None, None, False


def _first_deployment(
    session: Session, principal: Principal, agent_id: str, body: lc.DeploymentCreate
) -> t.Deployment:
    now = utcnow()
    row = t.Deployment(
        id=new_id("dep"),
        workspace_id=principal.workspace_id,
        agent_id=agent_id,
        channel=body.channel,
        live_version=body.version,
        canary_percent=0,
        canary_paused=False,
        canary_by_autopilot=False,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent first deploy on the same channel
        raise Conflict(
            f"the agent was deployed on {body.channel} at the same time; retry",
            details={"agent_id": agent_id, "channel": body.channel},
        ) from exc
    return row


def deploy(
    platform: Platform, principal: Principal, agent_id: str, body: lc.DeploymentCreate
) -> lc.Deployment:
    """Put a version live on a channel, or start it as the canary beside the live one."""
    by = audit.actor_of(principal)
    with tenant(platform, principal, "deployments:write") as session:
        agent = _agent(session, agent_id)
        if not 1 <= body.version <= agent.latest_version:
            raise NotFound("agent version", f"{agent_id}@{body.version}")
        proposal = _authorized_proposal(session, principal, agent_id, body)
        proposal_id = proposal.id if proposal else None
        row = session.scalar(
            select(t.Deployment)
            .where(t.Deployment.agent_id == agent_id, t.Deployment.channel == body.channel)
            .with_for_update()
        )
        if row is None and body.canary_percent is not None:
            raise Conflict(
                f"nothing is live on {body.channel} yet: deploy a version before a canary",
                details={"agent_id": agent_id, "channel": body.channel},
            )
        if row is None:
            row = _first_deployment(session, principal, agent_id, body)
            data = {"reason": body.note, "widens_permissions": [], "version": body.version}
            _record(
                session, row, "deployment.deployed", by, {}, data | {"proposal_id": proposal_id}
            )
        elif body.canary_percent is None:
            _go_live(session, row, body.version, by, body.note, proposal_id=proposal_id)
        else:
            actor, actor_kind = by
            start_canary(
                session,
                row,
                body.version,
                body.canary_percent,
                actor=actor,
                actor_kind=actor_kind,
                reason=body.note,
                proposal_id=proposal_id,
                by_autopilot=False,
            )
        if proposal is not None:
            mark_deployed(session, proposal.id, by=principal)
        return _resource(row)


# ---- the canary and rollback ----------------------------------------------------------------


def _canary(row: t.Deployment) -> int:
    if row.canary_version is None:
        raise Conflict(f"deployment {row.id} has no canary", details={"deployment_id": row.id})
    return row.canary_version


def promote_canary(
    session: Session,
    row: t.Deployment,
    *,
    actor: str,
    actor_kind: lc.ActorKind,
    reason: str,
    metrics: dict[str, Any] | None = None,
) -> None:
    """The canary becomes the live version (the old live one is where a rollback goes).
    `metrics`: what the decision saw (autopilot: the breaches and both arms), kept in the
    audit entry."""
    canary, by, evidence = _canary(row), (actor, actor_kind), metrics or {}
    action: lc.AuditAction = "deployment.promoted"
    with _audited(session, row, action, by, reason, goes_live=canary, version=canary, **evidence):
        row.previous_version, row.live_version = row.live_version, canary
        _clear_canary(row)


def rollback_canary(
    session: Session,
    row: t.Deployment,
    *,
    actor: str,
    actor_kind: lc.ActorKind,
    reason: str,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Remove the canary; the live version takes every new conversation again. Conversations
    the canary started keep their version (assignment is sticky). `metrics` as for
    `promote_canary`."""
    canary, by, evidence = _canary(row), (actor, actor_kind), metrics or {}
    action: lc.AuditAction = "deployment.rolled_back"
    with _audited(
        session, row, action, by, reason, rolled_back="canary", version=canary, **evidence
    ):
        _clear_canary(row)


def _rollback_live(
    session: Session, row: t.Deployment, by: tuple[str, lc.ActorKind], reason: str
) -> None:
    previous = row.previous_version
    if previous is None:
        raise Conflict(
            f"deployment {row.id} has no previous version to roll back to",
            details={"deployment_id": row.id},
        )
    action: lc.AuditAction = "deployment.rolled_back"
    extra = {"rolled_back": "live", "version": previous}
    with _audited(session, row, action, by, reason, goes_live=previous, **extra):
        row.live_version, row.previous_version = previous, None


def _pause(
    session: Session, row: t.Deployment, by: tuple[str, lc.ActorKind], *, paused: bool
) -> None:
    _canary(row)
    if row.canary_paused == paused:
        state = "paused" if paused else "running"
        raise Conflict(f"the canary is already {state}", details={"deployment_id": row.id})
    action: lc.AuditAction = "deployment.paused" if paused else "deployment.resumed"
    with _audited(session, row, action, by, ""):
        row.canary_paused = paused


def _change(
    platform: Platform,
    principal: Principal,
    deployment_id: str,
    action: Literal["promote", "pause", "resume", "rollback"],
    reason: str = "",
) -> lc.Deployment:
    """Promote, pause, resume or roll back, as `principal`."""
    by = audit.actor_of(principal)
    actor, actor_kind = by
    with tenant(platform, principal, "deployments:write") as session:
        row = _row(session, deployment_id, lock=True)
        if action == "promote":
            promote_canary(session, row, actor=actor, actor_kind=actor_kind, reason=reason)
        elif action == "rollback" and row.canary_version is not None:
            rollback_canary(session, row, actor=actor, actor_kind=actor_kind, reason=reason)
        elif action == "rollback":
            _rollback_live(session, row, by, reason)
        else:
            _pause(session, row, by, paused=action == "pause")
        return _resource(row)


def promote(platform: Platform, principal: Principal, deployment_id: str) -> lc.Deployment:
    """The canary becomes the live version."""
    return _change(platform, principal, deployment_id, "promote")


def pause(platform: Platform, principal: Principal, deployment_id: str) -> lc.Deployment:
    """The canary takes no new conversations until resumed (its own ones go on)."""
    return _change(platform, principal, deployment_id, "pause")


def resume(platform: Platform, principal: Principal, deployment_id: str) -> lc.Deployment:
    return _change(platform, principal, deployment_id, "resume")


def rollback(
    platform: Platform, principal: Principal, deployment_id: str, body: lc.RollbackRequest
) -> lc.Deployment:
    """With a canary: remove it (the live version stays). Without: the previous version goes
    live again (409 when there is none)."""
    return _change(platform, principal, deployment_id, "rollback", body.reason)
