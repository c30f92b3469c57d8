"""The platform's resources as callers see them: what the API returns and the SDK parses."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from deputy.domain.spec import LintFinding, SpecChange, Tool
from deputy.domain.tenancy import KeyKind, Role, Scope

T = TypeVar("T")


class Resource(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page."""

    data: list[T]
    next_cursor: str | None = None


class Workspace(Resource):
    id: str
    name: str
    created_at: datetime
    default_model: str | None = Field(
        default=None, description="Model for this workspace's agents; null: the platform default."
    )


class Member(Resource):
    id: str
    workspace_id: str
    email: str
    name: str
    role: Role
    created_at: datetime


class ApiKeyInfo(Resource):
    id: str
    workspace_id: str
    kind: KeyKind
    name: str
    member_id: str | None
    agent_id: str | None
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKey(Resource):
    """A new key: `secret` is shown this once and never stored in clear."""

    key: ApiKeyInfo
    secret: str


class CreatedWorkspace(Resource):
    workspace: Workspace
    owner: Member
    owner_key: CreatedApiKey


class Material(Resource):
    id: str
    workspace_id: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class Agent(Resource):
    id: str
    workspace_id: str
    name: str
    description: str
    latest_version: int
    created_at: datetime
    model: str | None = Field(
        default=None, description="Model for this agent; null: the workspace's default."
    )


class AgentVersion(Resource):
    id: str
    agent_id: str
    number: int
    spec: dict[str, Any]
    spec_sha256: str
    note: str
    created_at: datetime
    lint: list[LintFinding] = Field(
        default_factory=list,
        description="The linter's warnings about the spec (a spec with lint errors is refused).",
    )


class VersionDiff(Resource):
    """What changed from one version of an agent's spec to another: what a reviewer approves."""

    agent_id: str
    from_version: int
    to_version: int
    changes: list[SpecChange]
    widens_permissions: bool = Field(
        description="Some change widens what the agent may do (see each change's reason)."
    )
    text: str = Field(description="The changes as text for reviewers, widening ones first.")


# ---- request bodies ----------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkspaceCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    owner_email: EmailStr
    owner_name: str = Field(min_length=1, max_length=200)


ModelName = Annotated[
    str,
    Field(
        min_length=3,
        max_length=200,
        pattern=r"^(openai|anthropic|openai-compatible|local):\S+$",
        description="`provider:model`, e.g. `local:qwen2.5-coder-1.5b`, `openai:gpt-4.1-mini`, "
        "`openai-compatible:<endpoint>/<model>`.",
    ),
]


class WorkspaceUpdate(Body):
    """Fields to change; `default_model: null` returns to the platform default."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_model: ModelName | None = None


class AgentUpdate(Body):
    """Fields to change; `model: null` returns to the workspace default."""

    description: str | None = Field(default=None, max_length=4000)
    model: ModelName | None = None


class ModelEndpoint(Resource):
    """An OpenAI-compatible server of the workspace; its key is never returned."""

    id: str
    name: str
    base_url: str
    has_api_key: bool
    created_at: datetime


class ModelEndpointCreate(Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    base_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://\S+$")
    api_key: str | None = Field(default=None, min_length=1, max_length=4000)


class MemberCreate(Body):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: Role


class MemberUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None


class KeyCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    kind: KeyKind = "member"
    member_id: str | None = Field(
        default=None, description="Member keys: whose key (default: the caller's member)."
    )
    agent_id: str | None = Field(default=None, description="Channel keys: the agent it talks to.")
    scopes: list[Scope] | None = Field(
        default=None, description="Default: every scope the caller may grant for this kind."
    )
    expires_at: datetime | None = None


class AgentCreate(Body):
    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
    description: str = Field(default="", max_length=4000)


class VersionCreate(Body):
    spec: dict[str, Any]
    note: str = Field(default="", max_length=4000)


class LocalModelInfo(Resource):
    name: str
    title: str
    role: str
    state: Literal["not_installed", "installed", "assembled"]
    size_bytes: int
    installed_bytes: int
    install_command: str | None
    is_default: bool
    problems: list[str]


class ModelCatalog(Resource):
    """What models the caller's workspace can use, and which one it uses by default."""

    default_model: str
    platform_default: str
    fallback_models: list[str]
    local: list[LocalModelInfo]
    endpoints: list[str]
    hosted: dict[str, bool]


class ModelTry(Body):
    model: ModelName | None = Field(default=None, description="Default: the workspace's model.")
    prompt: str = Field(min_length=1, max_length=20_000)
    system: str | None = Field(default=None, max_length=20_000)
    response_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema the answer must satisfy."
    )
    max_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)


class ModelTryResult(Resource):
    model: str
    text: str
    parsed: Any = None
    finish_reason: str
    input_tokens: int
    output_tokens: int
    latency_seconds: float


class ErrorInfo(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorInfo


# ---- knowledge ---------------------------------------------------------------------------

KnowledgeMode = Literal["bm25", "vector", "hybrid"]
KnowledgeTitle = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"\S",
        description="The document's name in the agent's knowledge; adding a document under a "
        "title that exists replaces that document.",
    ),
]


class KnowledgeDocument(Resource):
    id: str
    agent_id: str
    title: str
    material_id: str | None = Field(description="The uploaded material it was read from, if any.")
    media_type: str
    sha256: str
    size_bytes: int
    chunk_count: int
    revision: int = Field(description="1 when added, +1 each time its content is replaced.")
    embedding_model: str
    created_at: datetime
    updated_at: datetime


class KnowledgeDocumentWrite(Resource):
    """What adding a document did: `created`, `replaced` (its chunks were swapped at once) or
    `unchanged` (same content and indexing as stored: nothing was done)."""

    document: KnowledgeDocument
    outcome: Literal["created", "replaced", "unchanged"]


class KnowledgeSourceIndexed(Resource):
    """What indexing one of a spec's knowledge sources did. `failed` carries the reason (the
    material is missing, of an unsupported type, damaged …); the other sources go on."""

    source_id: str
    outcome: Literal["created", "replaced", "unchanged", "skipped", "failed"]
    document: KnowledgeDocument | None = None
    reason: str | None = None


class KnowledgeIndexReport(Resource):
    agent_id: str
    version: int
    sources: list[KnowledgeSourceIndexed]


class KnowledgeFromMaterial(Body):
    """Index an uploaded material (Markdown, text, HTML, PDF or DOCX)."""

    material_id: str = Field(min_length=1, max_length=40)
    title: KnowledgeTitle | None = Field(default=None, description="Default: its file name.")


class KnowledgeFromText(Body):
    """Index text given inline."""

    text: str = Field(min_length=1, max_length=500_000)
    title: KnowledgeTitle
    media_type: Literal["text/markdown", "text/plain", "text/html"] = "text/markdown"


KnowledgeDocumentCreate = KnowledgeFromMaterial | KnowledgeFromText


class KnowledgeLocator(Resource):
    """Where a passage is in the file: lines (Markdown, text, HTML source), pages (PDF) or
    body paragraphs (DOCX), 1-based and inclusive; `label` reads e.g. `lines 12-18`."""

    kind: Literal["lines", "pages", "paragraphs"]
    start: int
    end: int
    label: str


class KnowledgeCitation(Resource):
    document_id: str
    title: str
    material_id: str | None
    heading_path: list[str]
    char_start: int = Field(description="Offset in the document's extracted text.")
    char_end: int
    locator: KnowledgeLocator


class KnowledgeHit(Resource):
    chunk_id: str
    text: str
    score: float = Field(description="BM25, cosine or fused (RRF) score: compare within a mode.")
    citation: KnowledgeCitation


class KnowledgeSearch(Body):
    query: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    k: int = Field(default=5, ge=1, le=50, description="How many passages to return.")
    mode: KnowledgeMode = Field(
        default="hybrid",
        description="`bm25` (words), `vector` (meaning) or `hybrid` (both, fused).",
    )


class KnowledgeSearchResult(Resource):
    query: str
    mode: KnowledgeMode
    hits: list[KnowledgeHit]


# ---- tools -------------------------------------------------------------------------------

ToolSourceKind = Literal["openapi", "mcp", "http"]
ToolCallStatus = Literal["pending", "succeeded", "failed", "refused", "outcome_unknown"]
ToolSourceName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="snake_case; what a spec's tool binding names as its `source`.",
    ),
]
_DOCUMENT = "openapi: the OpenAPI 3 document, inline."
_MATERIAL = "openapi: an uploaded material holding the document (JSON or YAML), instead."
_BASE_URL = (
    "openapi: where its operations are called. http: the URL prefix the source's credentials "
    "may be sent to (webhook URLs outside it are refused)."
)
_MCP = (
    "mcp: the server, `{type: stdio, command, args, env, secret_env, cwd}` (the command must be "
    "one the operator allows in DEPUTY_MCP_STDIO_COMMANDS) or `{type: http, url, headers}`. "
    "`secret_env` and `headers` are stored encrypted."
)
_AUTH = (
    "Credentials: `{type: none | api_key | bearer | oauth2_client_credentials, ...}`. Stored "
    "encrypted; never returned."
)
_HONOURS = (
    "Whether the source deduplicates requests by Idempotency-Key, so an unacknowledged write may "
    "be re-sent safely. Default: the document's `x-idempotency` (openapi), else false."
)


class ToolSourceCreate(Body):
    name: ToolSourceName
    kind: ToolSourceKind
    description: str = Field(default="", max_length=2000)
    document: dict[str, Any] | None = Field(default=None, description=_DOCUMENT)
    material_id: str | None = Field(default=None, max_length=40, description=_MATERIAL)
    base_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://\S+$", description=_BASE_URL
    )
    mcp: dict[str, Any] | None = Field(default=None, description=_MCP)
    auth: dict[str, Any] | None = Field(default=None, description=_AUTH)
    honours_idempotency_keys: bool | None = Field(default=None, description=_HONOURS)


class ToolSourceUpdate(Body):
    """Fields to change; `auth` replaces (rotates) the stored credentials."""

    description: str | None = Field(default=None, max_length=2000)
    document: dict[str, Any] | None = Field(default=None, description=_DOCUMENT)
    material_id: str | None = Field(default=None, max_length=40, description=_MATERIAL)
    base_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://\S+$", description=_BASE_URL
    )
    mcp: dict[str, Any] | None = Field(default=None, description=_MCP)
    auth: dict[str, Any] | None = Field(default=None, description=_AUTH)
    honours_idempotency_keys: bool | None = Field(default=None, description=_HONOURS)


class ToolSourceAuth(Resource):
    """Which kind of credentials are configured; their values are never returned."""

    type: str
    configured: bool


class ToolSource(Resource):
    id: str
    name: str
    kind: ToolSourceKind
    description: str
    base_url: str | None
    config: dict[str, Any] = Field(
        description="The non-secret settings (OpenAPI: title, version, operation count; MCP: "
        "the transport, with secret values left out)."
    )
    auth: ToolSourceAuth
    honours_idempotency_keys: bool
    created_at: datetime
    updated_at: datetime


class ToolOperation(Resource):
    """An operation a source offers, as a tool definition."""

    operation: str
    description: str
    effect: Literal["read", "write", "irreversible"]
    input_schema: dict[str, Any]


class SkippedToolOperation(Resource):
    method: str
    path: str
    reason: str


class ToolSourceOperations(Resource):
    source_id: str
    operations: list[ToolOperation]
    skipped: list[SkippedToolOperation] = Field(
        default_factory=list, description="OpenAPI operations that cannot be tools, and why."
    )


class SpecToolsRequest(Body):
    operations: list[str] | None = Field(
        default=None, max_length=500, description="Which operations; default: all of them."
    )


class SpecTools(Resource):
    """AgentSpec `tools` entries, ready to paste; a reviewer confirms each `effect`."""

    source_id: str
    tools: list[Tool]


class ToolCallInfo(Resource):
    """A recorded tool call (request and response with credentials redacted)."""

    id: str
    agent_id: str
    agent_version: int | None
    conversation_id: str
    step_key: str
    tool: str
    effect: Literal["read", "write", "irreversible"] | None
    idempotency_key: str | None
    arguments: dict[str, Any]
    arguments_sha256: str
    status: ToolCallStatus
    code: str | None
    request: dict[str, Any]
    response: dict[str, Any]
    output: Any = None
    error: str | None
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None


# ---- conversations -----------------------------------------------------------------------

ConversationStatus = Literal["active", "queued", "human", "closed"]
ConversationOutcome = Literal["resolved", "escalated", "abandoned"]
EntryKind = Literal[
    "customer_message",
    "agent_message",
    "human_message",
    "model_step",
    "tool_call",
    "guardrail",
    "retrieval",
    "procedure",
    "handoff",
    "agent_switch",
    "outcome",
    "turn_failed",
    "feedback",
]
"""What a transcript entry records (`deputy.runtime.journal`; `feedback`: the customer's)."""
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,39}$")]
MAX_CONTEXT_KEYS = 20
MAX_CONTEXT_BYTES = 4096
MAX_METADATA_KEYS = 20
MAX_METADATA_VALUE = 500


class CustomerRef(Body):
    """Who the customer is on a channel; the same (channel, external_id) is the same customer."""

    channel: ChannelName = "api"
    external_id: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=200)


class ConversationCreate(Body):
    agent_id: str
    customer: CustomerRef | None = None
    channel: ChannelName = "api"
    context: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Facts the channel vouches for (e.g. an authenticated user_id); at most 20 "
        "keys, 4 KB as JSON",
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="At most 20 keys, values up to 500 characters."
    )

    @field_validator("context")
    @classmethod
    def _small_context(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if len(value) > MAX_CONTEXT_KEYS:
            raise ValueError(f"at most {MAX_CONTEXT_KEYS} context keys")
        if len(json.dumps(value).encode()) > MAX_CONTEXT_BYTES:
            raise ValueError(f"the context is larger than {MAX_CONTEXT_BYTES} bytes as JSON")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} metadata keys")
        if any(len(v) > MAX_METADATA_VALUE for v in value.values()):
            raise ValueError(f"metadata values are at most {MAX_METADATA_VALUE} characters")
        return value


class Customer(Resource):
    id: str
    workspace_id: str
    channel: str
    external_id: str
    display_name: str | None
    created_at: datetime


class Conversation(Resource):
    id: str
    workspace_id: str
    agent_id: str
    agent_version: int
    current_agent_id: str
    current_agent_version: int = Field(
        description="The version of the agent answering now (another agent after a route)."
    )
    customer_id: str | None
    channel: str
    status: ConversationStatus
    outcome: ConversationOutcome | None
    outcome_evidence: dict[str, Any]
    language: str | None
    queue: str | None
    assignee_member_id: str | None
    handoff: dict[str, Any] | None = Field(
        description="Why it went to a human: trigger, reason, queue, rule_id, summary."
    )
    last_seq: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    deployment_id: str | None = Field(
        default=None, description="The deployment that chose its version (none: undeployed)."
    )
    deployment_arm: str | None = Field(
        default=None, description="`live` or `canary`: which of the deployment's versions."
    )


class MessageCreate(Body):
    text: str = Field(min_length=1, max_length=8000)
    client_message_id: str | None = Field(
        default=None,
        max_length=100,
        description="The caller's id of this message: a repeat returns the first turn's result.",
    )


class TranscriptEntry(Resource):
    id: str
    seq: int
    turn_id: str | None
    kind: EntryKind
    text: str
    data: dict[str, Any]
    agent_id: str | None
    created_at: datetime


class TranscriptPage(Resource):
    entries: list[TranscriptEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class TurnResult(Resource):
    conversation: Conversation
    turn_id: str | None
    reply: TranscriptEntry | None
    entries: list[TranscriptEntry] = Field(
        description="This turn's entries, the customer message included."
    )


class ConversationFeedback(Body):
    """The customer's explicit feedback on a conversation (during or after it): a rating,
    a comment, or both. The improvement loop reads it as a signal."""

    rating: int | None = Field(default=None, ge=1, le=5, description="1 (bad) to 5 (good).")
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> ConversationFeedback:
        if self.rating is None and not self.comment.strip():
            raise ValueError("give a rating, a comment, or both")
        return self


class ConversationClose(Body):
    outcome: ConversationOutcome | None = Field(
        default=None, description="Default: computed from the conversation's evidence."
    )
    reason: str = Field(default="", max_length=1000)


class HumanReply(Body):
    text: str = Field(min_length=1, max_length=8000)


class ConversationEvent(Resource):
    type: Literal["entry", "reply.delta", "turn.completed", "turn.failed", "status"]
    entry: TranscriptEntry | None = None
    text: str | None = None
    conversation: Conversation | None = None
