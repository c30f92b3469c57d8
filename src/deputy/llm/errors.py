"""Typed model failures. None of them loses the conversation: a caller turns them into a
handoff or a retry later. Each maps to a stable error code."""

from __future__ import annotations

from typing import ClassVar

from deputy.domain.errors import DeputyError, ErrorCode, InvalidRequest, Unavailable


class ModelError(DeputyError):
    """Base of every model failure."""

    code: ClassVar[ErrorCode] = "model_error"


class UnknownModel(InvalidRequest):
    """A `provider:model` name that no provider or catalog entry resolves."""


class ModelUnavailable(Unavailable):
    """The provider could not be reached, timed out, refused us (429/5xx after retries), or its
    circuit is open; `retry_after` seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, details={"retry_after": retry_after} if retry_after else None)
        self.retry_after = retry_after


class ModelOutputInvalid(ModelError):
    """The model could not produce output satisfying the requested schema or tool contract."""

    code = "model_output_invalid"


class ModelNotInstalled(ModelUnavailable):
    """A local model whose weights are not installed, not assembled, or fail their checksum;
    the message says how to install it."""
