"""The retail backend over REST: one `POST /tools/<name>` per tool, plus admin and OAuth2 routes.

`create_app(store, auth)` builds the FastAPI app. Each operation has `operationId` = the tool
name, a JSON Schema request body, a tag (`read` or `write`) and an `x-effect` extension
(`read`, `write`, `irreversible`). Refusals are HTTP 4xx with `{"error": "<message>"}`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from examples.retail.auth import TOKEN_PATH, AuthConfig, Authenticator, AuthError
from examples.retail.catalog import TOOLS, ToolSpec
from examples.retail.errors import RetailError
from examples.retail.models import ErrorBody
from examples.retail.store import RetailStore

TITLE = "Retail sample platform (tau2-bench retail domain)"
VERSION = "1.0.0"
DESCRIPTION = (
    "A headless online-retail backend: users, orders and products from tau2-bench's retail "
    "domain, with tau2's toolkit semantics. Every tool is `POST /tools/<name>` with a JSON "
    "body; `x-effect` tells read, write and irreversible operations apart."
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request was refused (wrong status, bad id...)."},
    401: {"model": ErrorBody, "description": "Missing or invalid credentials."},
    404: {"model": ErrorBody, "description": "An id names no record."},
    422: {"model": ErrorBody, "description": "The body does not match the schema."},
}
_PUBLIC_PATHS = ("/healthz", TOKEN_PATH)


def state_document(store: RetailStore, include_state: bool) -> str:
    """`{"sha256": ..., "state": {...}}` as JSON text, without copying the database."""
    with store.locked():
        sha256 = json.dumps(store.sha256())
        if not include_state:
            return f'{{"sha256":{sha256}}}'
        return f'{{"sha256":{sha256},"state":{store.state_json()}}}'


def _error(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


@dataclass
class IdempotencyCache:
    """`Idempotency-Key` on write operations, as a deduplicating API does it: the first request
    with a key runs; a repeat with the same tool and arguments gets the first answer (success or
    refusal) without running again; a repeat with different ones is refused (422). Answers are
    kept in memory for the life of the process."""

    answers: dict[str, tuple[str, int, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, key: str, tool: str, arguments: dict[str, Any], call: Callable[[], Any]) -> Any:
        fingerprint = hashlib.sha256(
            json.dumps([tool, arguments], sort_keys=True, default=str).encode()
        ).hexdigest()
        with self.lock:  # one request per key at a time: a concurrent repeat waits, then replays
            stored = self.answers.get(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    return _error(422, f"Idempotency-Key {key!r} was used for a different request")
                return _answer(stored[1], stored[2], replayed=True)
            try:
                status, body = 200, call()
            except RetailError as error:
                status, body = error.status_code, {"error": error.message}
            self.answers[key] = (fingerprint, status, body)
            return _answer(status, body, replayed=False)


def _answer(status: int, body: Any, *, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status, headers=headers)


def _tool_endpoint(
    store: RetailStore, spec: ToolSpec, idempotency: IdempotencyCache | None
) -> Callable[..., JSONResponse]:
    def endpoint(body: Any = None, idempotency_key: str | None = None) -> JSONResponse:
        arguments = body.model_dump() if body is not None else {}
        if idempotency is not None and idempotency_key and spec.effect != "read":
            return idempotency.run(  # type: ignore[no-any-return]
                idempotency_key,
                spec.name,
                arguments,
                lambda: spec.function(store, **arguments),
            )
        return JSONResponse(spec.function(store, **arguments))

    # A tool without arguments accepts an empty body as well as `{}`.
    optional = not spec.arguments.model_fields
    parameter = inspect.Parameter(
        "body",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=spec.arguments,
        default=Body(None) if optional else inspect.Parameter.empty,
    )
    key = inspect.Parameter(
        "idempotency_key",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=str | None,
        default=Header(None, alias="Idempotency-Key", max_length=255),
    )
    endpoint.__signature__ = inspect.Signature([parameter, key])  # type: ignore[attr-defined]
    endpoint.__name__ = spec.name
    return endpoint


def _add_tools(router: APIRouter, store: RetailStore, idempotency: IdempotencyCache | None) -> None:
    for spec in TOOLS.values():
        extra: dict[str, Any] = {"x-effect": spec.effect, "x-tool-origin": spec.origin}
        if spec.maps_to:
            extra["x-maps-to"] = list(spec.maps_to)
        router.add_api_route(
            f"/tools/{spec.name}",
            _tool_endpoint(store, spec, idempotency),
            methods=["POST"],
            operation_id=spec.name,
            summary=spec.summary,
            description=spec.description,
            tags=["read" if spec.effect == "read" else "write"],
            response_model=None,
            responses={
                200: {"model": spec.returns, "description": "The tool's result."},
                **_ERRORS,
            },
            openapi_extra=extra,
        )


def _add_admin(router: APIRouter, store: RetailStore) -> None:
    def reset() -> dict[str, Any]:
        store.reset()
        return {"sha256": store.sha256()}

    def state(include_state: bool = True) -> Response:
        return Response(state_document(store, include_state), media_type="application/json")

    router.add_api_route(
        "/admin/reset",
        reset,
        methods=["POST"],
        operation_id="admin_reset",
        summary="Restore the database to its initial content.",
        tags=["admin"],
        openapi_extra={"x-effect": "irreversible"},
    )
    router.add_api_route(
        "/admin/state",
        state,
        methods=["GET"],
        operation_id="admin_state",
        summary="The whole database and the sha256 of its canonical JSON.",
        tags=["admin"],
        response_model=None,
        openapi_extra={"x-effect": "read"},
    )


def _install_error_handlers(app: FastAPI, mode: str) -> None:
    challenge = {"api_key": "ApiKey", "bearer": "Bearer", "oauth2": "Bearer"}.get(mode, "")

    async def on_retail_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RetailError)
        return _error(error.status_code, error.message)

    async def on_auth_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, AuthError)
        if request.url.path == TOKEN_PATH:  # RFC 6749 error body
            body = {"error": error.code, "error_description": error.message}
            return JSONResponse(body, status_code=error.status_code)
        headers = {"WWW-Authenticate": challenge} if error.status_code == 401 else None
        return _error(error.status_code, error.message, headers)

    async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = [
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        ]
        return _error(422, "invalid request: " + "; ".join(problems))

    app.add_exception_handler(RetailError, on_retail_error)
    app.add_exception_handler(AuthError, on_auth_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def _install_openapi(app: FastAPI, auth: AuthConfig, idempotency: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=TITLE, version=VERSION, description=DESCRIPTION, routes=app.routes
            )
            schemes = auth.security_schemes()
            if schemes:
                schema.setdefault("components", {})["securitySchemes"] = schemes
                schema["security"] = [{name: []} for name in schemes]
                for path in _PUBLIC_PATHS:
                    for operation in schema.get("paths", {}).get(path, {}).values():
                        operation["security"] = []
            if idempotency:
                schema["x-idempotency"] = {"supported": True, "header": "Idempotency-Key"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    store: RetailStore | None = None,
    auth: AuthConfig | None = None,
    *,
    honour_idempotency_keys: bool = False,
) -> FastAPI:
    """The REST app over `store` (default: a fresh store on `$RETAIL_DB_PATH`), with `auth`
    (default: no authentication). With `honour_idempotency_keys`, write operations deduplicate
    by `Idempotency-Key` and the OpenAPI document says so (`x-idempotency`)."""
    store = store if store is not None else RetailStore()
    auth = auth if auth is not None else AuthConfig()
    authenticator = Authenticator(auth)
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION)
    app.state.store = store
    app.state.authenticator = authenticator

    def require_credentials(request: Request) -> None:
        authenticator.check(request.headers)

    protected = APIRouter(dependencies=[Depends(require_credentials)])
    _add_tools(protected, store, IdempotencyCache() if honour_idempotency_keys else None)
    _add_admin(protected, store)
    app.include_router(protected)

    @app.get("/healthz", tags=["admin"], operation_id="healthz", openapi_extra={"x-effect": "read"})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if auth.mode == "oauth2":

        @app.post(
            TOKEN_PATH,
            tags=["auth"],
            operation_id="oauth_token",
            summary="OAuth2 client-credentials token endpoint.",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["grant_type"],
                                "properties": {
                                    "grant_type": {
                                        "type": "string",
                                        "enum": ["client_credentials"],
                                    },
                                    "client_id": {"type": "string"},
                                    "client_secret": {"type": "string"},
                                },
                            }
                        }
                    },
                }
            },
        )
        async def token(request: Request) -> JSONResponse:
            issued = authenticator.issue_token(request.headers, await request.body())
            return JSONResponse(issued, headers={"Cache-Control": "no-store"})

    _install_error_handlers(app, auth.mode)
    _install_openapi(app, auth, honour_idempotency_keys)
    return app
