"""`GET /metrics`: the platform's Prometheus page for one viewer, with what is read from the
database at scrape time: queue depths (one grouped count each) and the SLO objectives of every
deployed agent's live spec (one query: an agent's live spec is that of the highest live version
among its deployments).

Who sees what (`deputy.observability.exposition`): a public scrape (DEPUTY_METRICS_PUBLIC) and
the platform operator's key (the bootstrap key, which may create workspaces) see every series;
any other key with `metrics:read` sees its own workspace's series only, and the database reads
for it are scoped to that workspace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from deputy.domain.spec import SLOs
from deputy.domain.tenancy import Principal
from deputy.observability.exposition import (
    AgentObjectives,
    QueueDepths,
    queue_families,
    render,
    slo_families,
)
from deputy.observability.metrics import HttpMetrics
from deputy.services.access import require
from deputy.services.conversation_turn_records import OPEN_STATUSES
from deputy.services.platform import Platform
from deputy.store import tables as t


def metrics_page(platform: Platform, principal: Principal | None, http: HttpMetrics) -> bytes:
    """The page for `principal` (None: a public scrape, which sees everything)."""
    if principal is not None:
        require(principal, "metrics:read")
    operator = principal is None or principal.allows("workspaces:create")
    workspace = None if operator or principal is None else principal.workspace_id
    with _session(platform, workspace) as session:
        depths = queue_depths(session, workspace)
        objectives = agent_objectives(session, workspace)
    return render(
        platform_wide=[http.registry],
        per_workspace=[platform.metrics.registry],
        read_now=queue_families(depths) + slo_families(objectives),
        workspace=workspace,
    )


@contextmanager
def _session(platform: Platform, workspace: str | None) -> Iterator[Session]:
    if workspace is None:
        with platform.db.session() as session:
            yield session
    else:
        with platform.db.tenant_session(workspace) as session:
            yield session


def _scope(column: InstrumentedAttribute[str], workspace: str | None) -> ColumnElement[bool]:
    return true() if workspace is None else column == workspace


def queue_depths(session: Session, workspace: str | None) -> QueueDepths:
    conversations, turns = t.Conversation, t.Turn
    outbox, inbound = t.ChannelOutboxRow, t.ChannelInboundRow
    connections, notifications = t.ChannelConnectionRow, t.AlertNotification
    waiting = (
        select(
            conversations.workspace_id,
            conversations.current_agent_id,
            conversations.queue,
            func.count(),
        )
        .where(conversations.status == "queued", _scope(conversations.workspace_id, workspace))
        .group_by(conversations.workspace_id, conversations.current_agent_id, conversations.queue)
    )
    open_turns = (
        select(turns.workspace_id, conversations.current_agent_id, turns.status, func.count())
        .join(conversations, conversations.id == turns.conversation_id)
        .where(turns.status.in_(OPEN_STATUSES), _scope(turns.workspace_id, workspace))
        .group_by(turns.workspace_id, conversations.current_agent_id, turns.status)
    )
    pending = (
        select(outbox.workspace_id, connections.kind, func.count())
        .join(connections, connections.id == outbox.connection_id)
        .where(outbox.status == "pending", _scope(outbox.workspace_id, workspace))
        .group_by(outbox.workspace_id, connections.kind)
    )
    received = (
        select(inbound.workspace_id, connections.kind, func.count())
        .join(connections, connections.id == inbound.connection_id)
        .where(inbound.status == "received", _scope(inbound.workspace_id, workspace))
        .group_by(inbound.workspace_id, connections.kind)
    )
    unsent = (
        select(notifications.workspace_id, func.count())
        .where(notifications.status == "pending", _scope(notifications.workspace_id, workspace))
        .group_by(notifications.workspace_id)
    )
    return QueueDepths(
        waiting_for_human=[(w, a, q or "default", n) for w, a, q, n in session.execute(waiting)],
        open_turns=[(w, a, s, n) for w, a, s, n in session.execute(open_turns)],
        outbox_pending=[(w, k, n) for w, k, n in session.execute(pending)],
        inbound_unprocessed=[(w, k, n) for w, k, n in session.execute(received)],
        notifications_pending=[(w, n) for w, n in session.execute(unsent)],
    )


def agent_objectives(session: Session, workspace: str | None) -> list[AgentObjectives]:
    """The SLOs of each deployed agent's live spec (only the spec's `slos` part is read)."""
    deployments, versions = t.Deployment, t.AgentVersion
    live = (
        select(
            deployments.workspace_id,
            deployments.agent_id,
            func.max(deployments.live_version).label("version"),
        )
        .where(_scope(deployments.workspace_id, workspace))
        .group_by(deployments.workspace_id, deployments.agent_id)
        .subquery()
    )
    rows = session.execute(
        select(live.c.workspace_id, live.c.agent_id, versions.spec["slos"]).join(
            versions,
            (versions.agent_id == live.c.agent_id) & (versions.number == live.c.version),
        )
    )
    objectives: list[AgentObjectives] = []
    for workspace_id, agent_id, stated in rows:
        slos = SLOs.model_validate(stated or {})
        objectives.append(
            AgentObjectives(
                workspace=workspace_id,
                agent=agent_id,
                availability=slos.availability,
                latency_seconds=slos.latency_p95_ms / 1000,
                accuracy=slos.accuracy,
            )
        )
    return objectives
