"""The platform's resources as callers see them: what the API returns and the SDK parses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field

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
