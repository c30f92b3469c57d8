"""Errors the SDK raises, in Deputy's one hierarchy (`deputy.domain.errors.DeputyError`).

An error the API reported becomes a `DeputyAPIError` subclass chosen by its stable code; each
subclass also derives from the matching domain error, so `except NotFound` catches a 404 from the
server as well as one raised in process. Failures to reach the server at all are
`DeputyConnectionError` (code `unavailable`), raised after the retries are spent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from deputy.domain.errors import (
    BudgetExhausted,
    Conflict,
    DeputyError,
    ErrorCode,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)


class DeputyAPIError(DeputyError):
    """The API answered with an error: its stable `code`, `message`, HTTP `status`,
    `request_id` (quote it when reporting a problem) and structured `details`."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        reported_code: str | None = None,
    ) -> None:
        # Bypass the domain subclasses' own constructors (e.g. NotFound(kind, id)).
        DeputyError.__init__(self, message, details=details)
        self.status = status
        self.request_id = request_id
        self.reported_code: str = reported_code or self.code

    def __str__(self) -> str:
        where = f", request {self.request_id}" if self.request_id else ""
        return f"{self.reported_code}: {self.message} (HTTP {self.status}{where})"


class InvalidRequestError(DeputyAPIError, InvalidRequest):
    pass


class ValidationFailedError(DeputyAPIError, ValidationFailed):
    pass


class InvalidCursorError(DeputyAPIError, InvalidCursor):
    pass


class AuthenticationError(DeputyAPIError, Unauthenticated):
    pass


class PermissionDeniedError(DeputyAPIError, PermissionDenied):
    pass


class NotFoundError(DeputyAPIError, NotFound):
    pass


class ConflictError(DeputyAPIError, Conflict):
    pass


class IdempotencyInProgressError(DeputyAPIError, IdempotencyInProgress):
    pass


class IdempotencyKeyReusedError(DeputyAPIError, IdempotencyKeyReused):
    pass


class PayloadTooLargeError(DeputyAPIError, PayloadTooLarge):
    pass


class UnsupportedMediaTypeError(DeputyAPIError, UnsupportedMediaType):
    pass


class MethodNotAllowedError(DeputyAPIError):
    code = "method_not_allowed"


class BudgetExhaustedError(DeputyAPIError, BudgetExhausted):
    pass


class RateLimitedError(DeputyAPIError):
    code = "rate_limited"


class UnavailableError(DeputyAPIError, Unavailable):
    pass


class InternalServerError(DeputyAPIError):
    code = "internal_error"


class ModelFailedError(DeputyAPIError):
    """The language model behind the call failed (the server's `deputy.llm` errors)."""

    code: ClassVar[ErrorCode] = "model_error"


class ModelOutputInvalidError(ModelFailedError):
    code = "model_output_invalid"


class DeputyConnectionError(Unavailable):
    """The server could not be reached (or stopped answering) and the retries are spent."""


class DeputyTimeoutError(DeputyConnectionError):
    """The server did not answer within the client's timeout."""


class MissingCredentials(Unauthenticated):
    """No API key was given, found in DEPUTY_API_KEY, or saved by `deputy login`."""


class UnexpectedResponse(DeputyError):
    """A success answer that is not what the Deputy API returns (is the URL a Deputy server?)."""

    code = "internal_error"


class IntegrityMismatch(DeputyError):
    """Downloaded bytes do not match the checksum the server announced."""

    code = "internal_error"


ERROR_CLASSES: dict[str, type[DeputyAPIError]] = {
    "invalid_request": InvalidRequestError,
    "validation_error": ValidationFailedError,
    "invalid_cursor": InvalidCursorError,
    "unauthenticated": AuthenticationError,
    "permission_denied": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "idempotency_in_progress": IdempotencyInProgressError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "payload_too_large": PayloadTooLargeError,
    "unsupported_media_type": UnsupportedMediaTypeError,
    "method_not_allowed": MethodNotAllowedError,
    "rate_limited": RateLimitedError,
    "budget_exhausted": BudgetExhaustedError,
    "unavailable": UnavailableError,
    "internal_error": InternalServerError,
    "model_error": ModelFailedError,
    "model_output_invalid": ModelOutputInvalidError,
}

# For answers without a Deputy error body (a proxy's 502 page, say): the class by HTTP status.
_CLASS_BY_STATUS: dict[int, type[DeputyAPIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: ValidationFailedError,
    402: BudgetExhaustedError,
    429: RateLimitedError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def _class_for(code: str | None, status: int) -> type[DeputyAPIError]:
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status in _CLASS_BY_STATUS:
        return _CLASS_BY_STATUS[status]
    return InvalidRequestError if status < 500 else InternalServerError


def error_from_response(response: httpx.Response) -> DeputyAPIError:
    """Turn an error response (already read) into the matching exception."""
    request_id = response.headers.get("x-request-id")
    code: str | None = response.headers.get("x-error-code")
    message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    details: dict[str, Any] = {}
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("code"), str):
            code = error["code"]
        if isinstance(error.get("message"), str):
            message = error["message"]
        if isinstance(error.get("request_id"), str):
            request_id = error["request_id"]
        if isinstance(error.get("details"), dict):
            details = error["details"]
    cls = _class_for(code, response.status_code)
    return cls(
        message,
        status=response.status_code,
        request_id=request_id,
        details=details,
        reported_code=code,
    )
