"""Conversations: start one with an agent, post the customer's messages (each one a durable
turn, see `deputy.services.conversation_turns`), read the transcript, close it with its outcome;
and the human queue (`deputy.services.conversation_queue`).

Reads need `conversations:read`, the rest `conversations:write`. A channel key is bound to one
agent: it may only start and see that agent's conversations (others are not found)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.billing.meter import conversation_fact, meter, outcome_fact
from deputy.domain import resources as r
from deputy.domain.errors import InvalidRequest, NotFound, PermissionDenied
from deputy.domain.ids import new_id
from deputy.domain.probes import PROBE_METADATA_KEY, SYSTEM_PROBE
from deputy.domain.tenancy import Principal
from deputy.runtime.journal import Entry
from deputy.runtime.outcomes import conversation_outcome
from deputy.runtime.state import AgentState
from deputy.services.access import require, tenant
from deputy.services.budgets import ensure_within_budget
from deputy.services.conversation_journal import publish_entry
from deputy.services.conversation_messages import post_message
from deputy.services.conversation_queue import (
    claim_conversation,
    hand_back,
    list_queue,
    publish_status,
    reply_as_human,
)
from deputy.services.conversation_store import (
    CUSTOMER_FACING,
    add_entry,
    agent_spec,
    conversation_resource,
    entry_resource,
    load_conversation,
    next_seq,
    not_closed,
)
from deputy.services.conversation_turns import resume_pending_turns
from deputy.services.deployment_routing import choose_version
from deputy.services.pagination import MAX_LIMIT, paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

__all__ = [
    "claim_conversation",
    "close_conversation",
    "create_conversation",
    "get_conversation",
    "hand_back",
    "list_conversations",
    "list_entries",
    "list_queue",
    "post_message",
    "reply_as_human",
    "resume_pending_turns",
]

GREETING_CHANNELS = frozenset({"chat", "api"})


def _customer(session: Session, workspace_id: str, ref: r.CustomerRef) -> str:
    """The id of the customer known as `ref` (created on first sight)."""
    where = (t.Customer.channel == ref.channel, t.Customer.external_id == ref.external_id)
    row = session.scalar(select(t.Customer).where(*where))
    if row is None:
        row = t.Customer(
            id=new_id("cus"),
            workspace_id=workspace_id,
            channel=ref.channel,
            external_id=ref.external_id,
            display_name=ref.display_name,
        )
        session.add(row)
        session.flush()
    elif ref.display_name and ref.display_name != row.display_name:
        row.display_name = ref.display_name
    return row.id


def _upsert_customer(platform: Platform, principal: Principal, ref: r.CustomerRef) -> str:
    try:
        with tenant(platform, principal, "conversations:write") as session:
            return _customer(session, principal.workspace_id, ref)
    except IntegrityError:  # created by a concurrent request: it is there now
        with tenant(platform, principal, "conversations:write") as session:
            return _customer(session, principal.workspace_id, ref)


def create_conversation(
    platform: Platform, principal: Principal, body: r.ConversationCreate
) -> r.Conversation:
    """Start a conversation with the version deployed on its channel (the canary for its
    share of new conversations; `deputy.services.deployment_routing.choose_version`), or the agent's
    latest version when it was never deployed; `context` becomes the runtime's context (e.g.
    the authenticated user); the spec's chat greeting opens the transcript."""
    require(principal, "conversations:write")
    if principal.conversation_id is not None:
        raise PermissionDenied(
            "a widget session's token may only talk in its own conversation: start a new "
            "session with the widget key"
        )
    if principal.agent_id is not None and principal.agent_id != body.agent_id:
        raise NotFound("agent", body.agent_id)
    probing = PROBE_METADATA_KEY in body.metadata
    if probing and principal.key_id != SYSTEM_PROBE:
        # The mark exempts a conversation from billing and budgets: only probes may set it.
        raise InvalidRequest(
            f"metadata.{PROBE_METADATA_KEY} is reserved for the platform's synthetic probes",
            details={"field": f"metadata.{PROBE_METADATA_KEY}"},
        )
    conversation_id = new_id("cnv")  # known before the version: a canary share hashes it
    with tenant(platform, principal, "conversations:read") as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == body.agent_id))
        if agent is None:
            raise NotFound("agent", body.agent_id)
        if agent.latest_version < 1:
            raise InvalidRequest(
                f"agent {agent.name!r} has no version yet: create one before talking to it",
                details={"agent_id": agent.id},
            )
        chosen = choose_version(session, agent.id, body.channel, conversation_id)
        version, deployment_id, arm = chosen or (agent.latest_version, None, None)
        spec = agent_spec(session, agent.id, version)
        if not probing:  # a probe is the platform checking itself: never billed nor stopped
            ensure_within_budget(session, principal.workspace_id, agent.id)
    customer_id = _upsert_customer(platform, principal, body.customer) if body.customer else None
    with tenant(platform, principal, "conversations:write") as session:
        now = utcnow()
        row = t.Conversation(
            id=conversation_id,
            workspace_id=principal.workspace_id,
            agent_id=body.agent_id,
            agent_version=version,
            current_agent_id=body.agent_id,
            current_agent_version=version,
            deployment_id=deployment_id,
            deployment_arm=arm,
            customer_id=customer_id,
            channel=body.channel,
            status="active",
            outcome_evidence={},
            state=AgentState(context=dict(body.context)).model_dump(mode="json"),
            meta=dict(body.metadata),
            last_seq=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        if (started := conversation_fact(row)) is not None:
            meter(session, started)
        greeting = None
        if spec.channels.chat.greeting and body.channel in GREETING_CHANNELS:
            greeting = entry_resource(
                add_entry(
                    session,
                    row,
                    Entry("agent_message", "greeting", text=spec.channels.chat.greeting),
                )
            )
        conversation = conversation_resource(row)
    if greeting is not None:
        publish_entry(platform.events, conversation.id, greeting)
    platform.metrics.conversation_started(
        conversation.workspace_id, conversation.agent_id, conversation.channel
    )
    return conversation


def get_conversation(
    platform: Platform, principal: Principal, conversation_id: str
) -> r.Conversation:
    with tenant(platform, principal, "conversations:read") as session:
        return conversation_resource(load_conversation(session, principal, conversation_id))


def list_conversations(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    status: r.ConversationStatus | None,
    customer_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[r.Conversation]:
    """The workspace's conversations, newest first (a channel key: its agent's only; a widget
    session's token: its own)."""
    query = select(t.Conversation)
    for column, value in (
        (t.Conversation.agent_id, agent_id),
        (t.Conversation.agent_id, principal.agent_id),
        (t.Conversation.id, principal.conversation_id),
        (t.Conversation.status, status),
        (t.Conversation.customer_id, customer_id),
    ):
        if value is not None:
            query = query.where(column == value)
    with tenant(platform, principal, "conversations:read") as session:
        return paginate(
            session,
            query,
            t.Conversation.id,
            limit=limit,
            cursor=cursor,
            to_resource=conversation_resource,
        )


def list_entries(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    *,
    after: int = 0,
    limit: int = 200,
) -> r.TranscriptPage:
    """The transcript in order, from the entry after position `after`."""
    limit = max(1, min(limit, MAX_LIMIT))
    with tenant(platform, principal, "conversations:read") as session:
        load_conversation(session, principal, conversation_id)
        query = select(t.ConversationEntry).where(
            t.ConversationEntry.conversation_id == conversation_id,
            t.ConversationEntry.seq > after,
        )
        if principal.conversation_id is not None:
            query = query.where(t.ConversationEntry.kind.in_(CUSTOMER_FACING))
        rows = session.scalars(query.order_by(t.ConversationEntry.seq).limit(limit + 1)).all()
        entries = [entry_resource(row) for row in rows[:limit]]
    return r.TranscriptPage(
        entries=entries, next_after=entries[-1].seq if len(rows) > limit else None
    )


def give_feedback(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    body: r.ConversationFeedback,
) -> r.TranscriptEntry:
    """Record the customer's rating and/or comment as a `feedback` entry (open or closed
    conversations alike)."""
    with tenant(platform, principal, "conversations:write") as session:
        seq = next_seq(session, conversation_id)
        row = load_conversation(session, principal, conversation_id)
        entry = add_entry(
            session,
            row,
            Entry("feedback", "feedback", text=body.comment, data={"rating": body.rating}),
            seq=seq,
        )
        session.flush()
        recorded = entry_resource(entry)
    publish_entry(platform.events, conversation_id, recorded)
    return recorded


def close_conversation(
    platform: Platform, principal: Principal, conversation_id: str, body: r.ConversationClose
) -> r.Conversation:
    """Close the conversation with an outcome: the one given, else the one its evidence shows
    (`deputy.runtime.outcomes`), recorded as an `outcome` entry."""
    with tenant(platform, principal, "conversations:write") as session:
        seq = next_seq(session, conversation_id)
        row = load_conversation(session, principal, conversation_id)
        not_closed(row)
        if body.outcome is not None:
            outcome, evidence = body.outcome, {"rule": "given when closing"}
        else:
            spec = agent_spec(session, row.current_agent_id, row.current_agent_version)
            state = AgentState.model_validate(row.state)
            outcome, evidence = conversation_outcome(spec, state, escalated=row.handoff is not None)
        evidence = {**evidence, "reason": body.reason, "closed_by": principal.key_id}
        entry = add_entry(
            session,
            row,
            Entry(
                "outcome",
                "outcome",
                text=body.reason,
                data={"outcome": outcome, "evidence": evidence},
            ),
            seq=seq,
        )
        row.status, row.outcome, row.outcome_evidence = "closed", outcome, evidence
        row.closed_at = row.updated_at = utcnow()
        session.flush()
        if (billed := outcome_fact(row)) is not None:
            meter(session, billed)
        conversation, recorded = conversation_resource(row), entry_resource(entry)
    publish_entry(platform.events, conversation_id, recorded)
    publish_status(platform, conversation)
    platform.metrics.closed(
        conversation.workspace_id,
        conversation.current_agent_id,
        conversation.channel,
        outcome,
    )
    return conversation
