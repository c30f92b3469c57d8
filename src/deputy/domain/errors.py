"""The one error hierarchy. Every error has a stable code; `deputy.api` maps codes to HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

ErrorCode = Literal[
    "invalid_request",
    "validation_error",
    "invalid_cursor",
    "unauthenticated",
    "permission_denied",
    "not_found",
    "conflict",
    "idempotency_in_progress",
    "idempotency_key_reused",
    "payload_too_large",
    "unsupported_media_type",
    "method_not_allowed",
    "rate_limited",
    "budget_exhausted",
    "unavailable",
    "model_error",
    "model_output_invalid",
    "internal_error",
]


class DeputyError(Exception):
    """Base of every error Deputy reports to a caller."""

    code: ClassVar[ErrorCode] = "internal_error"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class InvalidRequest(DeputyError):
    code = "invalid_request"


class ValidationFailed(DeputyError):
    code = "validation_error"


class InvalidCursor(DeputyError):
    code = "invalid_cursor"


class Unauthenticated(DeputyError):
    code = "unauthenticated"


class PermissionDenied(DeputyError):
    code = "permission_denied"


class NotFound(DeputyError):
    code = "not_found"

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(
            f"{kind} {identifier!r} not found", details={"kind": kind, "id": identifier}
        )


class Conflict(DeputyError):
    code = "conflict"


class IdempotencyInProgress(DeputyError):
    code = "idempotency_in_progress"


class IdempotencyKeyReused(DeputyError):
    code = "idempotency_key_reused"


class PayloadTooLarge(DeputyError):
    code = "payload_too_large"


class UnsupportedMediaType(DeputyError):
    code = "unsupported_media_type"


class BudgetExhausted(DeputyError):
    """A budget with a hard stop is spent for its period: no new conversations until it renews
    or is raised. `details` names the budget, its limit, the spend and the period's end."""

    code = "budget_exhausted"


class Unavailable(DeputyError):
    code = "unavailable"
