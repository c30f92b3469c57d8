"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI
from starlette.types import Scope

from deputy import __version__
from deputy.api.errors import ERROR_RESPONSES, install_error_handlers
from deputy.api.middleware import (
    BodyLimitMiddleware,
    IdempotencyMiddleware,
    RequestContextMiddleware,
)
from deputy.api.routes import (
    a2a,
    agents,
    alerts,
    audit,
    billing,
    builds,
    channel_messaging,
    channel_voice,
    channels,
    conversation_attachments,
    conversation_ws,
    conversations,
    deployments,
    health,
    improvement,
    keys,
    knowledge,
    materials,
    models,
    openai_compat,
    probes,
    proposals,
    sandbox,
    tools,
    usage,
    widget,
    workspaces,
)
from deputy.api.widget_cors import WidgetCorsMiddleware
from deputy.observability.metrics import HttpMetrics
from deputy.observability.tracing import configure_tracing
from deputy.services.alert_delivery import keep_delivering_alerts
from deputy.services.autopilot import keep_watching_canaries
from deputy.services.budgets import keep_checking_budgets
from deputy.services.build_runs import keep_resuming_builds, stop_builds
from deputy.services.channel_email import keep_serving_email
from deputy.services.channel_gateway import keep_delivering
from deputy.services.conversation_turns import keep_resuming
from deputy.services.improvement_runs import (
    keep_resuming_improvement_runs,
    keep_scheduling_improvements,
    stop_improvement_runs,
)
from deputy.services.metering import keep_metering_seats
from deputy.services.platform import Platform
from deputy.services.probe_scheduler import keep_running_probes
from deputy.services.sandbox_runs import keep_resuming_sandbox_runs, stop_sandbox_runs
from deputy.services.slo_evaluator import keep_evaluating_slos

MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_PATHS = frozenset({"/v1/materials"})


class BackgroundJobs(Protocol):
    """What the API needs of durable jobs: start with the app, stop with it, report readiness."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def ping(self) -> None: ...


def create_app(platform: Platform, *, jobs: BackgroundJobs | None = None) -> FastAPI:
    settings = platform.settings
    configure_tracing(settings.otlp_endpoint, trace_content=settings.trace_content)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if jobs is not None:
            jobs.start()
        # Turns, builds and sandbox runs a dead process left unfinished are run again (runs
        # from where they stopped), without delaying startup.
        resuming = asyncio.create_task(keep_resuming(platform))
        resuming_builds = asyncio.create_task(keep_resuming_builds(platform))
        resuming_runs = asyncio.create_task(keep_resuming_sandbox_runs(platform))
        # Autonomy and the improvement loop: canaries watched, scheduled and resumed runs.
        watching = asyncio.create_task(keep_watching_canaries(platform))
        improving = asyncio.create_task(keep_resuming_improvement_runs(platform))
        scheduling = asyncio.create_task(keep_scheduling_improvements(platform))
        # Channels: the outbox (and deliveries a crash left), the SMTP listener, IMAP pollers.
        delivering = asyncio.create_task(keep_delivering(platform))
        emailing = asyncio.create_task(keep_serving_email(platform))
        # Budgets: threshold alerts opened (and resolved) by a sweep.
        checking_budgets = asyncio.create_task(keep_checking_budgets(platform))
        # Synthetic probes: due probes run against the production deployments.
        probing = asyncio.create_task(keep_running_probes(platform))
        # Billing: every member's seat for the month, at start and hourly.
        metering_seats = asyncio.create_task(keep_metering_seats(platform))
        # SLOs: burn-rate alerts from the database, and alert notifications sent.
        evaluating_slos = asyncio.create_task(keep_evaluating_slos(platform))
        alerting = asyncio.create_task(keep_delivering_alerts(platform))
        try:
            yield
        finally:
            tasks = (
                evaluating_slos,
                alerting,
                resuming,
                resuming_builds,
                resuming_runs,
                watching,
                improving,
                scheduling,
                delivering,
                emailing,
                checking_budgets,
                probing,
                metering_seats,
            )
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stop_builds()
            await stop_sandbox_runs()
            await stop_improvement_runs()
            if jobs is not None:
                jobs.stop()
            await platform.models.aclose()

    app = FastAPI(
        title="Deputy",
        version=__version__,
        summary="Agents-as-a-Service: build, prove, review, deploy and improve AI agents.",
        lifespan=lifespan,
        # Deputy traces requests itself (RequestContextMiddleware: one span per request, the
        # workspace on it, content redacted) and serves Prometheus metrics and JSON logs:
        # FastAPI's own OpenTelemetry spans, metrics and logs would duplicate them.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    app.state.jobs = jobs
    app.state.metrics = HttpMetrics.create()
    install_error_handlers(app)
    for router in (
        workspaces.router,
        keys.router,
        materials.router,
        agents.router,
        knowledge.router,
        models.router,
        tools.router,
        conversations.router,
        builds.router,
        sandbox.router,
        proposals.router,
        deployments.router,
        audit.router,
        improvement.router,
        channels.router,
        conversation_attachments.router,
        channel_messaging.router,
        channel_voice.router,
        openai_compat.router,
        alerts.router,
        billing.router,
        probes.router,
        usage.router,
    ):
        app.include_router(router, prefix="/v1", responses=ERROR_RESPONSES)
    app.include_router(conversation_ws.router, prefix="/v1")
    app.include_router(a2a.router)
    app.include_router(widget.router)
    app.include_router(health.router)

    def body_limit(scope: Scope) -> int:
        path = scope.get("path", "")
        uploading = path in UPLOAD_PATHS or conversation_attachments.is_upload_path(path)
        if scope.get("method") == "POST" and uploading:
            return settings.max_upload_bytes + MULTIPART_OVERHEAD
        return settings.max_json_body_bytes

    # Added innermost first: the request context wraps everything.
    app.add_middleware(IdempotencyMiddleware, db=platform.db)
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    # The widget calls the API from the shop's origin (bearer tokens only, no cookies).
    app.add_middleware(WidgetCorsMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
