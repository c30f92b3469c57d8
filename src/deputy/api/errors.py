"""Error codes to HTTP statuses, in one place, and the one error body every endpoint returns:
`{"error": {"code", "message", "request_id", "details"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deputy.domain.errors import DeputyError, ErrorCode
from deputy.domain.resources import ErrorBody
from deputy.observability.context import current_request_id

log = logging.getLogger("deputy.api")

STATUS_BY_CODE: dict[ErrorCode, int] = {
    "invalid_request": 400,
    "invalid_cursor": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "idempotency_in_progress": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "idempotency_key_reused": 422,
    "rate_limited": 429,
    "budget_exhausted": 402,
    "internal_error": 500,
    "model_error": 502,
    "model_output_invalid": 502,
    "unavailable": 503,
}
CODE_BY_HTTP_STATUS: dict[int, ErrorCode] = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


_DESCRIPTIONS = {
    400: "Bad request: malformed JSON, bad cursor or parameter",
    401: "Missing, unknown, revoked or expired API key",
    402: "A budget with a hard stop is spent: no new conversations this period",
    403: "The key lacks the scope this call needs",
    404: "Unknown resource (or one in another workspace)",
    409: "Conflict with the current state, or an idempotent request still running",
    413: "The request body or file is too large",
    415: "The file type is not accepted",
    422: "The request does not validate, or an Idempotency-Key was reused",
}
# Documented on every /v1 operation so clients (and schemathesis) know the error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in _DESCRIPTIONS.items()
}


def error_body(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "request_id": current_request_id(),
            "details": jsonable_encoder(details or {}),
        }
    }


def error_response(
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    response = JSONResponse(
        error_body(code, message, details), status_code=STATUS_BY_CODE[code], headers=headers
    )
    response.headers["X-Error-Code"] = code
    return response


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    problems = []
    for err in exc.errors():
        problems.append(
            {
                "loc": ".".join(str(part) for part in err.get("loc", ())),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return {"errors": problems}


async def _deputy_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DeputyError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == "unauthenticated" else None
    return error_response(exc.code, exc.message, exc.details, headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(problem["type"] == "json_invalid" for problem in details["errors"]):
        return error_response("invalid_request", "the request body is not valid JSON", details)
    return error_response("validation_error", "the request is not valid", details)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_HTTP_STATUS.get(
        exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error"
    )
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(code, message, headers=dict(exc.headers or {}))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return error_response("internal_error", "an internal error occurred; quote the request id")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DeputyError, _deputy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
