"""What an agent knows and uses: knowledge indexes, tool sources and calls, memory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deputy.store.tables.base import Base, TenantOwned, utcnow

# --- knowledge ---


class KnowledgeIndex(TenantOwned, Base):
    """One agent's knowledge as a whole. `generation` grows with every change to its documents,
    so a process knows when its in-memory search index of the agent is stale."""

    __tablename__ = "knowledge_indexes"
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeDocument(TenantOwned, Base):
    """A document in an agent's knowledge, unique by title per agent. `signature` names the
    embedding model and chunking its chunks were made with; `revision` counts replacements."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (UniqueConstraint("agent_id", "title"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    title: Mapped[str] = mapped_column(String(255))
    material_id: Mapped[str | None] = mapped_column(
        ForeignKey("materials.id", ondelete="SET NULL"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str] = mapped_column(String(200))
    signature: Mapped[str] = mapped_column(String(300))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeChunk(TenantOwned, Base):
    """A retrievable span of a document: `text` is `char_start:char_end` of its parsed text;
    `embedding` is its vector as little-endian float32 bytes."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (Index("ix_knowledge_chunks_document_id_ordinal", "document_id", "ordinal"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE")
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, default="")
    heading_path: Mapped[list[str]]
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    locator_kind: Mapped[str] = mapped_column(String(20))
    locator_start: Mapped[int] = mapped_column(Integer)
    locator_end: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


# --- tools ---


class ToolSource(TenantOwned, Base):
    """Where an agent's tools live: an imported OpenAPI document (with its base URL), an MCP
    server, or plain webhooks. `config` holds only non-secret settings; the credentials (an
    `AuthConfig` as JSON) are encrypted with the platform's SecretBox and never returned."""

    __tablename__ = "tool_sources"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # openapi | mcp | http
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]]
    auth_type: Mapped[str] = mapped_column(String(40), default="none")
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolCallRow(TenantOwned, Base):
    """One tool call, inserted `pending` before its request leaves, then finished: the ledger that
    makes write and irreversible calls idempotent, and the audit trail of every call."""

    __tablename__ = "tool_calls"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_tool_calls_conversation", "workspace_id", "conversation_id", "tool"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    agent_version: Mapped[int | None] = mapped_column(Integer)
    conversation_id: Mapped[str] = mapped_column(String(100))
    step_key: Mapped[str] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(200))
    effect: Mapped[str | None] = mapped_column(String(20))
    idempotency_key: Mapped[str | None] = mapped_column(String(80))
    arguments: Mapped[dict[str, Any]]
    arguments_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(40))
    request: Mapped[dict[str, Any]]
    response: Mapped[dict[str, Any]]
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)


# --- memory ---


class MemoryFactRow(TenantOwned, Base):
    """A fact an agent chose to remember (the `remember_fact` built-in): about one conversation,
    or about one customer of one agent across conversations. At most one per call site
    (conversation, step), so a resumed turn never stores it twice."""

    __tablename__ = "memory_facts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "conversation_id", "step_key"),
        Index("ix_memory_facts_customer", "workspace_id", "agent_id", "customer_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(20))  # conversation | customer
    customer_id: Mapped[str | None] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(100), index=True)
    step_key: Mapped[str] = mapped_column(String(200))
    fact: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
