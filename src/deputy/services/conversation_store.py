"""Conversation rows and their resources: loading what a principal may see, appending transcript
entries with the next sequence number, and the conversions between rows, runtime entries and
API resources. Everything here runs inside a caller's session (blocking database work)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.ids import new_id
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import Principal
from deputy.runtime.journal import Entry, RecordedEntry
from deputy.store import tables as t
from deputy.store.tables import utcnow


def conversation_resource(row: t.Conversation) -> r.Conversation:
    return r.Conversation.model_validate(row)


def entry_resource(row: t.ConversationEntry) -> r.TranscriptEntry:
    return r.TranscriptEntry.model_validate(row)


def recorded_entry(row: t.ConversationEntry | Row[Any]) -> RecordedEntry:
    """An entry as the runtime knows it, from an ORM row or a plain row of its columns."""
    return RecordedEntry(
        id=row.id,
        seq=row.seq,
        turn_id=row.turn_id,
        kind=row.kind,  # type: ignore[arg-type]
        key=row.key,
        text=row.text,
        data=dict(row.data),
        created_at=row.created_at,
        agent_id=row.agent_id,
    )


def transcript_entry(entry: RecordedEntry) -> r.TranscriptEntry:
    return r.TranscriptEntry(
        id=entry.id,
        seq=entry.seq,
        turn_id=entry.turn_id,
        kind=entry.kind,
        text=entry.text,
        data=dict(entry.data),
        agent_id=entry.agent_id,
        created_at=entry.created_at,
    )


CUSTOMER_FACING: frozenset[str] = frozenset(
    {"customer_message", "agent_message", "human_message", "feedback"}
)
"""The entries a widget session's token sees: what was said, never the model's raw steps,
tool calls or guardrail verdicts (a blocked draft must not reach the customer's browser)."""


def shows(principal: Principal, kind: str) -> bool:
    """Whether `principal` may see transcript entries of `kind`."""
    return principal.conversation_id is None or kind in CUSTOMER_FACING


def visible(
    row: t.Conversation | None, principal: Principal, conversation_id: str
) -> t.Conversation:
    """The row if the principal may see it: a channel key sees only its own agent's, a widget
    session's token only its own conversation."""
    if (
        row is None
        or (principal.agent_id is not None and row.agent_id != principal.agent_id)
        or (principal.conversation_id is not None and row.id != principal.conversation_id)
    ):
        raise NotFound("conversation", conversation_id)
    return row


def load_conversation(
    session: Session, principal: Principal, conversation_id: str
) -> t.Conversation:
    row = session.scalar(select(t.Conversation).where(t.Conversation.id == conversation_id))
    return visible(row, principal, conversation_id)


def not_closed(row: t.Conversation) -> None:
    if row.status == "closed":
        raise Conflict(f"conversation {row.id} is closed", details={"conversation_id": row.id})


_SPECS: dict[tuple[str, int], AgentSpec] = {}
_SPEC_CACHE_SIZE = 256


def agent_spec(session: Session, agent_id: str, number: int) -> AgentSpec:
    """The spec of an agent version. Versions are immutable and agent ids unique, so a parsed
    spec is kept (a bounded cache) instead of being validated again on every turn."""
    cached = _SPECS.get((agent_id, number))
    if cached is not None:
        return cached
    spec = session.scalar(
        select(t.AgentVersion.spec).where(
            t.AgentVersion.agent_id == agent_id, t.AgentVersion.number == number
        )
    )
    if spec is None:
        raise NotFound("agent version", f"{agent_id}@{number}")
    parsed = AgentSpec.model_validate(spec)
    if len(_SPECS) >= _SPEC_CACHE_SIZE:
        del _SPECS[next(iter(_SPECS))]
    _SPECS[(agent_id, number)] = parsed
    return parsed


def next_seq(session: Session, conversation_id: str) -> int:
    """Take the conversation's next transcript position. The row update is the first write of
    the transaction and locks the row until commit, so concurrent appenders queue up."""
    seq = session.execute(
        update(t.Conversation)
        .where(t.Conversation.id == conversation_id)
        .values(last_seq=t.Conversation.last_seq + 1, updated_at=utcnow())
        .returning(t.Conversation.last_seq)
        .execution_options(synchronize_session="fetch")
    ).scalar_one_or_none()
    if seq is None:
        raise NotFound("conversation", conversation_id)
    return int(seq)


def add_entry(
    session: Session,
    row: t.Conversation,
    entry: Entry,
    *,
    seq: int | None = None,
    turn_id: str | None = None,
) -> t.ConversationEntry:
    """Append `entry` at `seq` (default: the next position, taken now)."""
    stored = t.ConversationEntry(
        id=new_id("ent"),
        workspace_id=row.workspace_id,
        conversation_id=row.id,
        seq=seq if seq is not None else next_seq(session, row.id),
        turn_id=turn_id,
        kind=entry.kind,
        key=entry.key,
        text=entry.text,
        data=plain_json(entry.data),
        agent_id=row.current_agent_id,
        created_at=utcnow(),
    )
    session.add(stored)
    session.flush()
    return stored


def plain_json(data: dict[str, Any]) -> dict[str, Any]:
    """A plain JSON copy (the runtime's data may hold tuples and the like)."""
    value: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return value


def turn_entries(session: Session, turn_id: str) -> list[t.ConversationEntry]:
    return list(
        session.scalars(
            select(t.ConversationEntry)
            .where(t.ConversationEntry.turn_id == turn_id)
            .order_by(t.ConversationEntry.seq)
        )
    )


def turn_result(session: Session, row: t.Conversation, turn: t.Turn) -> r.TurnResult:
    """What a turn produced, as stored: its entries and the agent's reply, if any."""
    entries = turn_entries(session, turn.id)
    replies = [e for e in entries if e.kind == "agent_message"]
    return r.TurnResult(
        conversation=conversation_resource(row),
        turn_id=turn.id,
        reply=entry_resource(replies[-1]) if replies else None,
        entries=[entry_resource(e) for e in entries],
    )
