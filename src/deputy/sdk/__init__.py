"""The Python SDK of Deputy: a typed client of the REST API, over HTTP only.

    from deputy.sdk import DeputyClient

    client = DeputyClient("http://127.0.0.1:8750", "dpy_…")   # or DeputyClient() from the env
    agent = client.agents.create("refunds")
    client.agents.versions.create(agent.id, {"name": "refunds", "goal": "Handle refunds"})

Errors the API reports are `DeputyAPIError` subclasses (one per stable code) carrying `code`,
`message`, `status`, `request_id` and `details`. Every POST carries an `Idempotency-Key`, so
requests are retried safely on connection failures and 503s; a model's failure reported by
`client.models.run` is not retried (it would spend the tokens again).
"""

from deputy.builder.report import BuildReport
from deputy.domain.builds import Build, BuildChange, BuildProgress
from deputy.domain.resources import (
    Agent,
    AgentVersion,
    ApiKeyInfo,
    Conversation,
    ConversationEvent,
    CreatedApiKey,
    CreatedWorkspace,
    KnowledgeDocument,
    KnowledgeDocumentWrite,
    KnowledgeHit,
    KnowledgeSearchResult,
    LocalModelInfo,
    Material,
    Member,
    ModelCatalog,
    ModelEndpoint,
    ModelTryResult,
    Page,
    TranscriptEntry,
    TranscriptPage,
    TurnResult,
    Workspace,
)
from deputy.domain.sandbox import SandboxRun, SandboxTrial
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.sdk._calls import UNSET, Unset
from deputy.sdk.aio import AsyncDeputyClient
from deputy.sdk.client import DeputyClient
from deputy.sdk.credentials import Credentials, load_credentials, resolve_credentials
from deputy.sdk.errors import (
    AuthenticationError,
    ConflictError,
    DeputyAPIError,
    DeputyConnectionError,
    DeputyTimeoutError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    IntegrityMismatch,
    InternalServerError,
    InvalidCursorError,
    InvalidRequestError,
    MethodNotAllowedError,
    MissingCredentials,
    ModelFailedError,
    ModelOutputInvalidError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
    UnexpectedResponse,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from deputy.sdk.models import Health, Readiness
from deputy.sdk.retry import NO_RETRIES, RetryPolicy
from deputy.sdk.transfer import Progress

__all__ = [
    "NO_RETRIES",
    "UNSET",
    "Agent",
    "AgentVersion",
    "ApiKeyInfo",
    "AsyncDeputyClient",
    "AuthenticationError",
    "Build",
    "BuildChange",
    "BuildProgress",
    "BuildReport",
    "Comparison",
    "ConflictError",
    "Conversation",
    "ConversationEvent",
    "CreatedApiKey",
    "CreatedWorkspace",
    "Credentials",
    "DeputyAPIError",
    "DeputyClient",
    "DeputyConnectionError",
    "DeputyTimeoutError",
    "Health",
    "IdempotencyInProgressError",
    "IdempotencyKeyReusedError",
    "IntegrityMismatch",
    "InternalServerError",
    "InvalidCursorError",
    "InvalidRequestError",
    "KnowledgeDocument",
    "KnowledgeDocumentWrite",
    "KnowledgeHit",
    "KnowledgeSearchResult",
    "LocalModelInfo",
    "Material",
    "Member",
    "MethodNotAllowedError",
    "MissingCredentials",
    "ModelCatalog",
    "ModelEndpoint",
    "ModelFailedError",
    "ModelOutputInvalidError",
    "ModelTryResult",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitedError",
    "Readiness",
    "RetryPolicy",
    "SandboxRun",
    "SandboxTrial",
    "Scorecard",
    "TranscriptEntry",
    "TranscriptPage",
    "TurnResult",
    "UnavailableError",
    "UnexpectedResponse",
    "Unset",
    "UnsupportedMediaTypeError",
    "ValidationFailedError",
    "Workspace",
    "load_credentials",
    "resolve_credentials",
]
