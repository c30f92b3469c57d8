"""Channel connections, bindings, threads, the inbound store and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deputy.store.tables.base import Base, TenantOwned, utcnow

# --- channels ---


class ChannelConnectionRow(TenantOwned, Base):
    """An agent's account on an external channel (`deputy.domain.channels`): settings in
    `config`, secrets as one JSON object encrypted with the platform's SecretBox."""

    __tablename__ = "channel_connections"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    secret_names: Mapped[list[str]]
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelBinding(TenantOwned, Base):
    """A conversation carried on a connection: where its replies go (`reply_to`) and how far
    its transcript has been handed to the outbox (`delivered_seq`)."""

    __tablename__ = "channel_bindings"
    __table_args__ = (UniqueConstraint("connection_id", "conversation_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("channel_connections.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    reply_to: Mapped[dict[str, Any]]
    delivered_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelThread(TenantOwned, Base):
    """A key that ties channel messages to a conversation (a chat id, a Message-ID...)."""

    __tablename__ = "channel_threads"
    __table_args__ = (UniqueConstraint("connection_id", "thread_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("channel_connections.id", ondelete="CASCADE"), index=True
    )
    thread_key: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelInboundRow(TenantOwned, Base):
    """A delivery from a channel, stored before it is acknowledged: a repeat of the same
    `delivery_id` is ignored; `received` ones a crash left are processed again."""

    __tablename__ = "channel_inbound"
    __table_args__ = (
        UniqueConstraint("connection_id", "delivery_id"),
        Index("ix_channel_inbound_status", "status", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("channel_connections.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # received | processed | ignored | failed
    payload: Mapped[dict[str, Any]]
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class ChannelOutboxRow(TenantOwned, Base):
    """One message to send on a channel, written before the send is tried; retried with
    backoff until sent or out of attempts."""

    __tablename__ = "channel_outbox"
    __table_args__ = (
        UniqueConstraint("connection_id", "conversation_id", "entry_seq"),
        Index("ix_channel_outbox_due", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("channel_connections.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    entry_seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
