"""The human queue: conversations the agent handed off wait (`queued`) until a member claims
one (`human`: the member answers, the agent is silent), then hands it back to the agent
(`active`). Claiming, replying and handing back need a member key; only the member who claimed
a conversation replies in it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deputy.domain import resources as r
from deputy.domain.errors import Conflict, PermissionDenied
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.guardrails import redact_for_storage, resolve_guardrails
from deputy.runtime.journal import Entry
from deputy.services.access import tenant
from deputy.services.conversation_journal import publish_entry
from deputy.services.conversation_store import (
    add_entry,
    agent_spec,
    conversation_resource,
    entry_resource,
    load_conversation,
    next_seq,
)
from deputy.services.pagination import decode_cursor, encode_cursor
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow


def publish_status(platform: Platform, conversation: r.Conversation) -> None:
    platform.events.publish(
        conversation.id, r.ConversationEvent(type="status", conversation=conversation)
    )


def _member(principal: Principal) -> str:
    if principal.key_kind != "member" or principal.member_id is None:
        raise PermissionDenied("the human queue is for members: use a member's key")
    return principal.member_id


def _in_status(row: t.Conversation, status: r.ConversationStatus, action: str) -> None:
    if row.status != status:
        raise Conflict(
            f"conversation {row.id} is {row.status}: only a {status} conversation can be {action}",
            details={"conversation_id": row.id, "status": row.status},
        )


def _transition(
    session: Session,
    row: t.Conversation,
    status: r.ConversationStatus,
    action: str,
    values: dict[str, Any],
) -> None:
    """Change a conversation that is in `status` (checked and changed in one statement, so two
    members claiming at once cannot both win)."""
    changed = session.execute(
        update(t.Conversation)
        .where(t.Conversation.id == row.id, t.Conversation.status == status)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.refresh(row)
        _in_status(row, status, action)


def list_queue(
    platform: Platform,
    principal: Principal,
    *,
    queue: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[r.Conversation]:
    """Conversations waiting for a human (in `queue`, or any), oldest first."""
    query = select(t.Conversation).where(t.Conversation.status == "queued")
    if queue is not None:
        query = query.where(t.Conversation.queue == queue)
    if principal.agent_id is not None:
        query = query.where(t.Conversation.agent_id == principal.agent_id)
    if principal.conversation_id is not None:
        query = query.where(t.Conversation.id == principal.conversation_id)
    if cursor:
        query = query.where(t.Conversation.id > decode_cursor(cursor))
    with tenant(platform, principal, "conversations:read") as session:
        rows = session.scalars(query.order_by(t.Conversation.id).limit(limit + 1)).all()
        data = [conversation_resource(row) for row in rows[:limit]]
    more = len(rows) > limit and bool(data)
    return r.Page[r.Conversation](
        data=data, next_cursor=encode_cursor(data[-1].id) if more else None
    )


def claim_conversation(
    platform: Platform, principal: Principal, conversation_id: str
) -> r.Conversation:
    """Take a queued conversation: the calling member answers it from now on."""
    member_id = _member(principal)
    with tenant(platform, principal, "conversations:write") as session:
        row = load_conversation(session, principal, conversation_id)
        _transition(
            session, row, "queued", "claimed", {"status": "human", "assignee_member_id": member_id}
        )
        conversation = conversation_resource(row)
    publish_status(platform, conversation)
    return conversation


def reply_as_human(
    platform: Platform, principal: Principal, conversation_id: str, body: r.HumanReply
) -> r.TranscriptEntry:
    """The assigned member's message to the customer (stored as the guardrails require)."""
    member_id = _member(principal)
    with tenant(platform, principal, "conversations:write") as session:
        seq = next_seq(session, conversation_id)
        row = load_conversation(session, principal, conversation_id)
        _in_status(row, "human", "answered by a member")
        if row.assignee_member_id != member_id:
            raise PermissionDenied(
                "only the member who claimed the conversation replies in it",
                details={"assignee_member_id": row.assignee_member_id},
            )
        spec = agent_spec(session, row.current_agent_id, row.current_agent_version)
        text = redact_for_storage(body.text, resolve_guardrails(spec))
        message = Entry("human_message", f"human/{new_id('ent')}", text, {"member_id": member_id})
        entry = entry_resource(add_entry(session, row, message, seq=seq))
    publish_entry(platform.events, conversation_id, entry)
    return entry


def hand_back(platform: Platform, principal: Principal, conversation_id: str) -> r.Conversation:
    """Return a conversation a member has to the agent, which answers the next message."""
    _member(principal)
    with tenant(platform, principal, "conversations:write") as session:
        row = load_conversation(session, principal, conversation_id)
        _transition(
            session,
            row,
            "human",
            "handed back",
            {"status": "active", "assignee_member_id": None, "queue": None},
        )
        conversation = conversation_resource(row)
    publish_status(platform, conversation)
    return conversation
