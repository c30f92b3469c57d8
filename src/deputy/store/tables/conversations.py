"""Customers, conversations, turns and transcript entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deputy.store.tables.base import Base, TenantOwned, utcnow

# --- conversations ---


class Customer(TenantOwned, Base):
    """Someone an agent talks to, known by the channel's own id for them."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "external_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(TenantOwned, Base):
    """A conversation started with one agent version (`agent_id`, `agent_version`) and answered
    by `current_agent_id` at `current_agent_version` (another agent after a route was taken).
    `state` is the running agent's `AgentState` between turns (written only with a completed
    turn); `last_seq` is the transcript's last entry; `lease_owner`/`lease_until` let one
    process at a time run its turns."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_status", "workspace_id", "status"),
        Index("ix_conversations_agent", "workspace_id", "agent_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    agent_version: Mapped[int] = mapped_column(Integer)
    current_agent_id: Mapped[str] = mapped_column(String(40))
    current_agent_version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # active | queued | human | closed
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_evidence: Mapped[dict[str, Any]]
    language: Mapped[str | None] = mapped_column(String(35))
    queue: Mapped[str | None] = mapped_column(String(100))
    assignee_member_id: Mapped[str | None] = mapped_column(String(40))
    handoff: Mapped[dict[str, Any] | None]
    state: Mapped[dict[str, Any]]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    deployment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    deployment_arm: Mapped[str | None] = mapped_column(String(10))  # live | canary
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


class Turn(TenantOwned, Base):
    """One customer message and the agent's work on it: `pending` once acknowledged, `running`
    while a process works on it, then `completed` or `failed`."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "number"),
        UniqueConstraint(
            "conversation_id", "client_message_id", name="uq_turns_conversation_client_message"
        ),
        Index("ix_turns_status", "status"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # pending | running | completed | failed
    inbound_entry_id: Mapped[str | None] = mapped_column(String(40))
    client_message_id: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ConversationEntry(TenantOwned, Base):
    """One transcript entry (`deputy.runtime.journal`): append-only, in `seq` order; unique by
    key within its turn, so a resumed turn finds what it recorded before."""

    __tablename__ = "conversation_entries"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("turn_id", "key", name="uq_conversation_entries_turn_key"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    turn_id: Mapped[str | None] = mapped_column(ForeignKey("turns.id"))
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
    agent_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
