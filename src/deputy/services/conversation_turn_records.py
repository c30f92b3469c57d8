"""The database side of a turn (`deputy.services.conversation_turns` runs it): which turns
are open, starting one (`running`, attempts + 1, and everything it starts from), and ending it
in one transaction, completed (with the state and status it led to) or failed (with a
`turn_failed` entry and the state untouched)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from deputy.billing.meter import meter, outcome_fact
from deputy.domain import resources as r
from deputy.domain.errors import Unavailable
from deputy.domain.spec import AgentSpec
from deputy.runtime.context import ConversationRef
from deputy.runtime.journal import MESSAGE_KINDS, Entry, RecordedEntry
from deputy.runtime.outcomes import conversation_outcome
from deputy.runtime.state import AgentState
from deputy.runtime.turn import TurnResult
from deputy.services.conversation_lease import ConversationLease
from deputy.services.conversation_store import (
    add_entry,
    agent_spec,
    conversation_resource,
    entry_resource,
    recorded_entry,
    turn_entries,
)
from deputy.services.memory import SqlMemory
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

OPEN_STATUSES = ("pending", "running")
MAX_TURN_ATTEMPTS = 3
"""A turn that took its process down this many times is failed instead of run again."""
HISTORY_LIMIT = 200
AGENT_KINDS = frozenset({"tool_call", "procedure", "handoff"})
"""Entries of an agent's own work, given back to that agent only."""

RAW_INBOUND: dict[str, str] = {}
"""The customer's own words by turn id while the process that accepted them runs the turn, when
the transcript keeps a masked form: the runtime answers what was said, the store keeps only the
masked text. A turn resumed elsewhere sees the masked form."""


class LeaseLost(Unavailable):
    """This process's lease ran out during a turn and another process took the conversation."""


@dataclass(frozen=True)
class PreparedTurn:
    turn_id: str
    attempts: int
    agent_version: int
    ref: ConversationRef
    spec: AgentSpec
    agent_model: str | None
    state: AgentState
    inbound: RecordedEntry
    history: tuple[RecordedEntry, ...]
    recorded: tuple[RecordedEntry, ...]
    memory: tuple[str, ...]


@dataclass(frozen=True)
class Ended:
    conversation: r.Conversation
    status_changed: bool
    entries: tuple[r.TranscriptEntry, ...] = ()


def open_turn_ids(
    db: Database, workspace_id: str, conversation_id: str, through: int | None
) -> list[str]:
    """The conversation's pending or running turns (up to number `through`), in order."""
    query = select(t.Turn.id).where(
        t.Turn.conversation_id == conversation_id, t.Turn.status.in_(OPEN_STATUSES)
    )
    if through is not None:
        query = query.where(t.Turn.number <= through)
    with db.tenant_session(workspace_id) as session:
        return list(session.scalars(query.order_by(t.Turn.number)))


def agent_history(
    session: Session, conversation: t.Conversation, before_seq: int, agent_id: str
) -> tuple[RecordedEntry, ...]:
    """The earlier entries an agent is given: every message of the conversation, but tool
    calls, procedure events and handoffs only of its own (another agent's work stays with it)."""
    columns = [c for c in t.ConversationEntry.__table__.c if c.name != "workspace_id"]
    entries = t.ConversationEntry
    rows = session.execute(
        select(*columns)
        .where(
            entries.workspace_id == conversation.workspace_id,
            entries.conversation_id == conversation.id,
            entries.seq < before_seq,
            or_(
                entries.kind.in_(MESSAGE_KINDS),
                and_(entries.kind.in_(AGENT_KINDS), entries.agent_id == agent_id),
            ),
        )
        .order_by(entries.seq.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return tuple(recorded_entry(row) for row in reversed(rows))


def agent_turn(
    session: Session,
    conversation: t.Conversation,
    turn: t.Turn,
    inbound: RecordedEntry,
    *,
    agent_id: str,
    agent_version: int,
    state: AgentState,
) -> PreparedTurn:
    """What `agent_id` at `agent_version` starts this turn from (memory is recalled apart)."""
    return PreparedTurn(
        turn_id=turn.id,
        attempts=turn.attempts,
        agent_version=agent_version,
        ref=ConversationRef(
            workspace_id=conversation.workspace_id,
            agent_id=agent_id,
            conversation_id=conversation.id,
            channel=conversation.channel,
            customer_id=conversation.customer_id,
            agent_version=agent_version,
        ),
        spec=agent_spec(session, agent_id, agent_version),
        agent_model=session.scalar(select(t.Agent.model).where(t.Agent.id == agent_id)),
        state=state,
        inbound=inbound,
        history=agent_history(session, conversation, inbound.seq, agent_id),
        recorded=tuple(recorded_entry(row) for row in turn_entries(session, turn.id)),
        memory=(),
    )


def with_memory(db: Database, prepared: PreparedTurn) -> PreparedTurn:
    """`prepared` with the facts its agent remembers about this customer and conversation."""
    facts = SqlMemory(db, prepared.ref.workspace_id).recall(
        agent_id=prepared.ref.agent_id,
        conversation_id=prepared.ref.conversation_id,
        customer_id=prepared.ref.customer_id,
    )
    return replace(prepared, memory=tuple(f.fact for f in facts))


def start_turn(db: Database, workspace_id: str, turn_id: str) -> PreparedTurn | None:
    """Mark the turn running and load what the conversation's current agent starts it from;
    None when it needs no run."""
    with db.tenant_session(workspace_id) as session:
        turn = session.get(t.Turn, turn_id)
        if turn is None or turn.status not in OPEN_STATUSES or turn.inbound_entry_id is None:
            return None
        conversation = session.get_one(t.Conversation, turn.conversation_id)
        if conversation.status != "active":  # handed off or closed by an earlier turn
            turn.status, turn.finished_at = "completed", utcnow()
            return None
        turn.status, turn.attempts, turn.started_at = "running", turn.attempts + 1, utcnow()
        inbound = recorded_entry(session.get_one(t.ConversationEntry, turn.inbound_entry_id))
        raw = RAW_INBOUND.get(turn_id)
        if raw is not None:
            inbound = replace(inbound, text=raw)
        prepared = agent_turn(
            session,
            conversation,
            turn,
            inbound,
            agent_id=conversation.current_agent_id,
            agent_version=conversation.current_agent_version,
            state=AgentState.model_validate(conversation.state),
        )
    return with_memory(db, prepared)


def complete_turn(
    db: Database, lease: ConversationLease, turn: PreparedTurn, result: TurnResult
) -> Ended:
    """In one transaction: the agent that answered (`turn`'s: another one when a route was
    taken) and its new state, the status the turn led to, the turn completed."""
    with db.tenant_session(lease.workspace_id) as session:
        held = session.execute(
            update(t.Conversation)
            .where(
                t.Conversation.id == lease.conversation_id,
                t.Conversation.lease_owner == lease.owner,
            )
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if not held.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(
                f"conversation {lease.conversation_id} was taken over by another process"
            )
        conversation = session.get_one(
            t.Conversation, lease.conversation_id, populate_existing=True
        )
        before = conversation.status
        conversation.current_agent_id = turn.ref.agent_id
        conversation.current_agent_version = turn.agent_version
        conversation.state = result.state.model_dump(mode="json")
        conversation.language = result.state.language or conversation.language
        entries: list[r.TranscriptEntry] = []
        if before == "active" and result.handoff is not None:
            handoff = result.handoff
            conversation.status, conversation.queue = "queued", handoff.queue
            conversation.handoff = {
                "trigger": handoff.trigger,
                "reason": handoff.reason,
                "queue": handoff.queue,
                "rule_id": handoff.rule_id,
                "summary": handoff.summary,
            }
        elif before == "active" and result.end is not None:
            outcome, evidence = conversation_outcome(
                turn.spec, result.state, escalated=False, declared=result.end.outcome
            )
            evidence = {**evidence, "summary": result.end.summary, "closed_by": "agent"}
            row = add_entry(
                session,
                conversation,
                Entry("outcome", "outcome", data={"outcome": outcome, "evidence": evidence}),
                turn_id=turn.turn_id,
            )
            entries.append(entry_resource(row))
            conversation.status, conversation.outcome = "closed", outcome
            conversation.outcome_evidence, conversation.closed_at = evidence, utcnow()
            if (billed := outcome_fact(conversation)) is not None:
                meter(session, billed)
        stored = session.get_one(t.Turn, turn.turn_id)
        stored.status, stored.finished_at, stored.error = "completed", utcnow(), None
        session.flush()
        return Ended(
            conversation_resource(conversation), conversation.status != before, tuple(entries)
        )


def fail_turn(db: Database, workspace_id: str, turn_id: str, error: str) -> Ended | None:
    """Mark the turn failed with a `turn_failed` entry; the conversation state is untouched."""
    with db.tenant_session(workspace_id) as session:
        turn = session.get(t.Turn, turn_id)
        if turn is None or turn.status not in OPEN_STATUSES:
            return None
        conversation = session.get_one(t.Conversation, turn.conversation_id)
        row = add_entry(
            session,
            conversation,
            Entry("turn_failed", "turn_failed", data={"error": error}),
            turn_id=turn_id,
        )
        turn.status, turn.finished_at, turn.error = "failed", utcnow(), error
        session.flush()
        return Ended(conversation_resource(conversation), False, (entry_resource(row),))
