"""The retail backend over REST: one `POST /tools/<name>` per tool, plus admin and OAuth2 routes.

`create_app(store, auth)` builds the FastAPI app. Each operation has `operationId` = the tool
name, a JSON Schema request body, a tag (`read` or `write`) and an `x-effect` extension
(`read`, `write`, `irreversible`). Refusals are HTTP 4xx with `{"error": "<message>"}`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
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


def _tool_endpoint(store: RetailStore, spec: ToolSpec) -> Callable[..., JSONResponse]:
    def endpoint(body: Any = None) -> JSONResponse:
        arguments = body.model_dump() if body is not None else {}
        return JSONResponse(spec.function(store, **arguments))

    # A tool without arguments accepts an empty body as well as `{}`.
    optional = not spec.arguments.model_fields
    parameter = inspect.Parameter(
        "body",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=spec.arguments,
        default=Body(None) if optional else inspect.Parameter.empty,
    )
    endpoint.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    endpoint.__name__ = spec.name
    return endpoint


def _add_tools(router: APIRouter, store: RetailStore) -> None:
    for spec in TOOLS.values():
        extra: dict[str, Any] = {"x-effect": spec.effect, "x-tool-origin": spec.origin}
        if spec.maps_to:
            extra["x-maps-to"] = list(spec.maps_to)
        router.add_api_route(
            f"/tools/{spec.name}",
            _tool_endpoint(store, spec),
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


def _install_openapi(app: FastAPI, auth: AuthConfig) -> None:
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
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(store: RetailStore | None = None, auth: AuthConfig | None = None) -> FastAPI:
    """The REST app over `store` (default: a fresh store on `$RETAIL_DB_PATH`), with `auth`
    (default: no authentication)."""
    store = store if store is not None else RetailStore()
    auth = auth if auth is not None else AuthConfig()
    authenticator = Authenticator(auth)
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION)
    app.state.store = store
    app.state.authenticator = authenticator

    def require_credentials(request: Request) -> None:
        authenticator.check(request.headers)

    protected = APIRouter(dependencies=[Depends(require_credentials)])
    _add_tools(protected, store)
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
    _install_openapi(app, auth)
    return app
