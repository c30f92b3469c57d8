"""A2A tasks and contexts on Deputy's tables: the conversation an A2A context names (a
conversation id, or a caller's own context id remembered in the conversation's metadata), and
a turn read back as a task (`deputy.channels.a2a_protocol.TurnView`).

Everything is tenant-scoped through the caller's principal and limited to one agent: a task or
context of another agent (or workspace) is not found."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deputy.channels.a2a_protocol import Said, TurnStatus, TurnView
from deputy.domain import resources as r
from deputy.domain.errors import NotFound
from deputy.domain.ids import is_id
from deputy.domain.tenancy import Principal
from deputy.services import conversations
from deputy.services.access import tenant
from deputy.services.conversation_store import not_closed, turn_entries, visible
from deputy.services.platform import Platform
from deputy.store import tables as t

CHANNEL = "a2a"
CONTEXT_META = "a2a_context"
SPOKEN = {"customer_message": "user", "agent_message": "agent", "human_message": "agent"}
FAILED_TEXT = "The agent could not answer this message; it is on record."


def context_of(row: t.Conversation) -> str:
    """The context id a conversation goes by: the caller's own, else its id."""
    named = (row.meta or {}).get(CONTEXT_META)
    return named if isinstance(named, str) and named else row.id


def _by_context(
    session: Session, principal: Principal, agent_id: str, context_id: str
) -> t.Conversation | None:
    if is_id(context_id, "cnv"):
        row = session.get(t.Conversation, context_id)
        if row is not None and row.agent_id == agent_id:
            return visible(row, principal, context_id)
    return session.scalar(
        select(t.Conversation)
        .where(
            t.Conversation.agent_id == agent_id,
            t.Conversation.channel == CHANNEL,
            t.Conversation.meta[CONTEXT_META].as_string() == context_id,
        )
        .order_by(t.Conversation.created_at.desc())
        .limit(1)
    )


def _open_context(
    platform: Platform, principal: Principal, agent_id: str, context_id: str
) -> str | None:
    with tenant(platform, principal, "conversations:write") as session:
        row = _by_context(session, principal, agent_id, context_id)
        if row is None:
            return None
        not_closed(row)
        return row.id


def conversation_for(
    platform: Platform, principal: Principal, agent_id: str, context_id: str
) -> str:
    """The open conversation of `context_id` (empty: a new one, on the `a2a` channel). A
    context id the caller chose and Deputy does not know starts a conversation that keeps it."""
    if context_id:
        found = _open_context(platform, principal, agent_id, context_id)
        if found is not None:
            return found
    body = r.ConversationCreate(
        agent_id=agent_id,
        channel=CHANNEL,
        metadata={CONTEXT_META: context_id} if context_id and not is_id(context_id, "cnv") else {},
    )
    return conversations.create_conversation(platform, principal, body).id


def _view(session: Session, conversation: t.Conversation, turn: t.Turn) -> TurnView:
    said = tuple(
        Said(
            str(entry.data.get("client_message_id") or entry.id),
            "user" if SPOKEN[entry.kind] == "user" else "agent",
            entry.text,
        )
        for entry in turn_entries(session, turn.id)
        if entry.kind in SPOKEN and entry.text.strip()
    )
    status: TurnStatus = turn.status  # type: ignore[assignment]
    return TurnView(
        turn_id=turn.id,
        conversation_id=context_of(conversation),
        status=status,
        messages=said,
        updated_at=turn.finished_at or turn.started_at or turn.created_at,
        error=FAILED_TEXT if turn.status == "failed" else None,
    )


def turn_view(platform: Platform, principal: Principal, agent_id: str, turn_id: str) -> TurnView:
    """The turn `turn_id` of this agent's conversations; `NotFound` otherwise."""
    with tenant(platform, principal, "conversations:read") as session:
        turn = session.get(t.Turn, turn_id) if is_id(turn_id, "turn") else None
        conversation = session.get(t.Conversation, turn.conversation_id) if turn else None
        if turn is None or conversation is None or conversation.agent_id != agent_id:
            raise NotFound("task", turn_id)
        return _view(session, visible(conversation, principal, turn_id), turn)


@dataclass(frozen=True)
class TaskPage:
    views: tuple[TurnView, ...]
    total: int
    next_offset: int | None


def list_turns(
    platform: Platform,
    principal: Principal,
    agent_id: str,
    *,
    context_id: str,
    offset: int,
    limit: int,
) -> TaskPage:
    """This agent's turns, newest first: of one context, or of every `a2a` conversation."""
    with tenant(platform, principal, "conversations:read") as session:
        where = [t.Conversation.agent_id == agent_id]
        if principal.agent_id is not None:
            where.append(t.Conversation.agent_id == principal.agent_id)
        if context_id:
            row = _by_context(session, principal, agent_id, context_id)
            if row is None:
                return TaskPage((), 0, None)
            where.append(t.Conversation.id == row.id)
        else:
            where.append(t.Conversation.channel == CHANNEL)
        joined = select(t.Turn, t.Conversation).join(
            t.Conversation, t.Conversation.id == t.Turn.conversation_id
        )
        total = session.scalar(
            select(func.count(t.Turn.id))
            .join(t.Conversation, t.Conversation.id == t.Turn.conversation_id)
            .where(*where)
        )
        rows = session.execute(
            joined.where(*where)
            .order_by(t.Turn.created_at.desc(), t.Turn.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        views = tuple(_view(session, conversation, turn) for turn, conversation in rows)
    count = int(total or 0)
    following = offset + len(views)
    return TaskPage(views, count, following if following < count else None)
