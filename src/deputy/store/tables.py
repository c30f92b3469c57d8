"""The relational schema. Every tenant-owned row carries `workspace_id` (see `TenantOwned`);
`deputy.store.db` adds the workspace filter to every ORM query in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class TenantOwned:
    """Marker: rows of this table belong to one workspace and are only visible inside it."""

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    default_model: Mapped[str | None] = mapped_column(String(200))


class Member(TenantOwned, Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(TenantOwned, Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), index=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_key_id: Mapped[str | None] = mapped_column(String(40))
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Material(TenantOwned, Base):
    __tablename__ = "materials"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(120))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_key_id: Mapped[str] = mapped_column(String(40))


class Agent(TenantOwned, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str | None] = mapped_column(String(200))


class AgentVersion(TenantOwned, Base):
    """An immutable spec version: rows are inserted, never updated."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "number"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    spec_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_key_id: Mapped[str] = mapped_column(String(40))


class ModelEndpoint(TenantOwned, Base):
    """A workspace's OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenRouter, Azure):
    models on it are named `openai-compatible:<name>/<model>`. The key is stored encrypted."""

    __tablename__ = "model_endpoints"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String(2000))
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageEventRow(TenantOwned, Base):
    """An immutable billable fact (`deputy.billing.meter`): a model call, a conversation, an
    outcome or its reversal, a tool call, minutes of voice, a seat-month. `event_id` is derived
    from the fact (or unique per model call), so writing it twice is a no-op: exactly once.
    Corrections are new events (`reverses_event_id`), never updates."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_kind_time", "workspace_id", "kind", "occurred_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(200))  # tool name, outcome, member id
    quantity: Mapped[str] = mapped_column(String(40), default="1")  # a Decimal, exact
    unit: Mapped[str] = mapped_column(String(20), default="call")
    reverses_event_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[str | None] = mapped_column(String(40))  # provider cost, a Decimal, exact
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """A POST's stored response, keyed by the caller's credential and its Idempotency-Key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("credential_hash", "key"),
        Index("ix_idempotency_records_created_at", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    credential_hash: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))  # in_progress | done
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobWorker(Base):
    """Liveness of each durable-jobs executor, so a live one can recover a dead one's work."""

    __tablename__ = "job_workers"
    executor_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    recovered_at: Mapped[datetime | None]


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


# --- builds ---


class Build(TenantOwned, Base):
    """A run of the builder: its inputs (goal, constraints, materials, tool sources, model),
    where it is (`queued`, `running`, then `succeeded` or `failed`), and its result: the current
    revision of the AgentSpec draft, its scenario suite and the build report. A change request
    writes the next revision (`build_changes`). `lease_owner`/`lease_expires_at` let one process
    at a time run it; `attempts` counts the runs started."""

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # queued | running | succeeded | failed
    name: Mapped[str | None] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(Text)
    constraints: Mapped[list[str]]
    material_ids: Mapped[list[str]]
    tool_source_ids: Mapped[list[str]]
    model: Mapped[str | None] = mapped_column(String(200))
    progress: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any] | None]
    scenarios: Mapped[dict[str, Any] | None]
    report: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class BuildChange(TenantOwned, Base):
    """A change request in plain language applied to a build's draft: what was done, the diff,
    the scenarios to run again and the questions left; `revision` is the build's revision after
    it (unchanged when nothing could be applied). Rows are inserted, never updated."""

    __tablename__ = "build_changes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    request: Mapped[str] = mapped_column(Text)
    applied: Mapped[list[str]]
    diff: Mapped[dict[str, Any]]
    affected_scenarios: Mapped[list[str]]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- sandbox ---


class SandboxRun(TenantOwned, Base):
    """A sandbox run: one agent version against a scenario suite, `trials` times each, in a
    tool world made only of sandbox targets (`world`: spec source -> target). Where it is
    (`queued`, `running`, then `succeeded`, `failed` or `cancelled`), its progress, and at the
    end its scorecard. `suite` is the whole suite given (or the build's); `scenario_ids` the
    subset run (empty: all). `lease_owner`/`lease_expires_at` let one process at a time run it;
    `attempts` counts the runs started. Each finished trial is a `sandbox_trials` row."""

    __tablename__ = "sandbox_runs"
    __table_args__ = (Index("ix_sandbox_runs_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    agent_version: Mapped[int] = mapped_column(Integer)
    build_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # queued | running | succeeded | ...
    suite: Mapped[dict[str, Any]]
    suite_sha256: Mapped[str] = mapped_column(String(64))
    scenario_ids: Mapped[list[str]]
    trials: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    customer_model: Mapped[str | None] = mapped_column(String(200))
    judge_model: Mapped[str | None] = mapped_column(String(200))
    world: Mapped[dict[str, Any]]
    world_description: Mapped[dict[str, Any]]
    progress: Mapped[dict[str, Any]]
    scorecard: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SandboxTrial(TenantOwned, Base):
    """One finished trial of a sandbox run (a `TrialResult` as JSON in `result`), inserted
    once and never updated: a resumed run skips the trials it finds here. `position` orders
    them by the suite's scenario order, then trial number."""

    __tablename__ = "sandbox_trials"
    __table_args__ = (UniqueConstraint("run_id", "position"),)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("sandbox_runs.id", ondelete="CASCADE"), primary_key=True
    )
    scenario_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool]
    termination: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- review, deployment, audit, improvement ---


class AuditEntryRow(TenantOwned, Base):
    """One audit log entry; inserted, never updated (`deputy.lifecycle.audit`). `seq` is unique
    per workspace, so two writers cannot both extend the chain from the same entry."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("workspace_id", "seq"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(60))
    actor_kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(60), index=True)
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Proposal(TenantOwned, Base):
    """A candidate version offered as a change to the live one, with its evidence."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_agent_status", "agent_id", "status"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    version: Mapped[int] = mapped_column(Integer)
    base_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]]
    changes: Mapped[list[Any]] = mapped_column(JSON)
    diff_text: Mapped[str] = mapped_column(Text, default="")
    widens_permissions: Mapped[bool]
    widening_reasons: Mapped[list[str]]
    gate: Mapped[str] = mapped_column(String(20))
    gate_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(60))
    decided_at: Mapped[datetime | None]


class ProposalReview(TenantOwned, Base):
    __tablename__ = "proposal_reviews"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(60))
    member_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(TenantOwned, Base):
    """What answers an agent's new conversations on one channel (or `all`): the live version
    and at most one canary."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("agent_id", "channel"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    live_version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    canary_version: Mapped[int | None] = mapped_column(Integer)
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    canary_paused: Mapped[bool] = mapped_column(default=False)
    canary_started_at: Mapped[datetime | None]
    canary_proposal_id: Mapped[str | None] = mapped_column(String(40))
    canary_by_autopilot: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImprovementRun(TenantOwned, Base):
    """One pass of the improvement loop over an agent's recent conversations (a leased
    background job like builds and sandbox runs); `report` holds every step's result."""

    __tablename__ = "improvement_runs"
    __table_args__ = (Index("ix_improvement_runs_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    request: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    progress: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any] | None]
    proposal_ids: Mapped[list[str]]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


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


# --- billing ---


class BillingPlan(TenantOwned, Base):
    """What a workspace (`agent_id` NULL) or one agent pays: `plan` is a `deputy.domain.billing`
    plan as JSON. `scope_key` is the agent id or "workspace" (one plan per scope)."""

    __tablename__ = "billing_plans"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    plan: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Budget(TenantOwned, Base):
    """A spending limit per calendar month for the workspace or one agent, with alert
    thresholds (fractions of `amount`) and an optional hard stop on new conversations."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    amount: Mapped[str] = mapped_column(String(40))  # a Decimal, exact
    currency: Mapped[str] = mapped_column(String(3))
    alert_thresholds: Mapped[list[float]] = mapped_column(JSON)
    hard_stop: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dispute(TenantOwned, Base):
    """A contested outcome: `open` until accepted (a reversal event is written, with an audit
    entry) or rejected. One per conversation."""

    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("workspace_id", "conversation_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    agent_id: Mapped[str] = mapped_column(String(40), index=True)
    outcome_event_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # open | accepted | rejected
    reason: Mapped[str] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    reversal_event_id: Mapped[str | None] = mapped_column(String(64))
    opened_by: Mapped[str] = mapped_column(String(100))
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class Invoice(TenantOwned, Base):
    """An issued invoice for one period and scope: lines (JSON, each with the ids of the usage
    events it sums) and the total, frozen when issued."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("workspace_id", "scope_key", "period_start"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    scope_key: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[str] = mapped_column(String(40))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- alerts, SLOs and probes ---


class Alert(TenantOwned, Base):
    """Something an operator must know: an SLO burning its error budget too fast, a budget
    threshold crossed, a failing probe. `open_key` is `key` while firing and NULL once resolved,
    so one alert per key is open at a time; a silenced alert stays open but notifies no one."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "open_key"),
        Index("ix_alerts_status", "workspace_id", "status", "opened_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    key: Mapped[str] = mapped_column(String(200))
    open_key: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # slo_burn | budget | probe
    severity: Mapped[str] = mapped_column(String(10))  # page | ticket
    status: Mapped[str] = mapped_column(String(20))  # firing | resolved
    title: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]]
    silenced_until: Mapped[datetime | None]
    silenced_by: Mapped[str | None] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class AlertTarget(TenantOwned, Base):
    """Where a workspace's alerts go: a webhook (HMAC-signed with an encrypted secret) or email
    addresses."""

    __tablename__ = "alert_targets"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # webhook | email
    config: Mapped[dict[str, Any]]
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    min_severity: Mapped[str] = mapped_column(String(10), default="ticket")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertNotification(TenantOwned, Base):
    """One message about an alert to one target, written in the transaction that opened or
    resolved the alert and sent from there with retries (an outbox)."""

    __tablename__ = "alert_notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "target_id", "event"),
        Index("ix_alert_notifications_due", "status", "next_attempt_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    target_id: Mapped[str] = mapped_column(ForeignKey("alert_targets.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))  # opened | resolved
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Probe(TenantOwned, Base):
    """A synthetic customer run on a schedule against an agent's production deployment:
    `scenario` is a scripted sandbox scenario (turns and assertions) as JSON."""

    __tablename__ = "probes"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(40))
    scenario: Mapped[dict[str, Any]]
    interval_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProbeRun(TenantOwned, Base):
    """One run of a probe: the production conversation it had and whether it passed."""

    __tablename__ = "probe_runs"
    __table_args__ = (Index("ix_probe_runs_probe", "probe_id", "started_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    probe_id: Mapped[str] = mapped_column(ForeignKey("probes.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(40), index=True)
    agent_version: Mapped[int | None] = mapped_column(Integer)
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # passed | failed | error
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
