"""Probes and metrics. Probes are unauthenticated (they reveal nothing); metrics need a key
with `metrics:read` unless DEPUTY_METRICS_PUBLIC is set for a private scrape network."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from deputy.api.deps import PlatformDep, bearer, get_principal
from deputy.api.errors import ERROR_RESPONSES, error_response
from deputy.domain.resources import ErrorBody
from deputy.observability.metrics import HttpMetrics
from deputy.services.access import require

router = APIRouter(tags=["health"])
log = logging.getLogger("deputy.health")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"model": ErrorBody, "description": "A dependency is not ready."}}
)
def readyz(request: Request, platform: PlatformDep) -> Any:
    """Readiness: the database answers and durable jobs are running."""
    checks: dict[str, str] = {}
    try:
        platform.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("database not ready", exc_info=exc)
        checks["database"] = "failing"
    jobs = request.app.state.jobs
    if jobs is None:
        checks["jobs"] = "disabled"
    else:
        try:
            jobs.ping()
            checks["jobs"] = "ok"
        except Exception as exc:
            log.warning("jobs not ready", exc_info=exc)
            checks["jobs"] = "failing"
    if "failing" in checks.values():
        return error_response("unavailable", "not ready", {"checks": checks})
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: ERROR_RESPONSES[401],
        403: ERROR_RESPONSES[403],
    },
)
def metrics(
    request: Request,
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    """Prometheus metrics."""
    if not platform.settings.metrics_public:
        require(get_principal(platform, credentials), "metrics:read")
    http_metrics: HttpMetrics = request.app.state.metrics
    return Response(http_metrics.render(), media_type=CONTENT_TYPE_LATEST)
