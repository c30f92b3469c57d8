"""Probes and metrics. Probes are unauthenticated (they reveal nothing); metrics need a key
with `metrics:read` unless DEPUTY_METRICS_PUBLIC is set for a private scrape network
(`deputy.services.metrics_exposition` says who sees which series)."""

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
from deputy.services.metrics_exposition import metrics_page

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
    """Prometheus metrics: every series for the platform's operator (or a public scrape), a
    workspace's own series for any other key with `metrics:read`."""
    principal = None if platform.settings.metrics_public else get_principal(platform, credentials)
    http_metrics: HttpMetrics = request.app.state.metrics
    return Response(metrics_page(platform, principal, http_metrics), media_type=CONTENT_TYPE_LATEST)
