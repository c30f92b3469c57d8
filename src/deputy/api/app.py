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
    audit,
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
    proposals,
    sandbox,
    tools,
    widget,
    workspaces,
)
from deputy.api.widget_cors import WidgetCorsMiddleware
from deputy.observability.metrics import HttpMetrics
from deputy.observability.tracing import configure_tracing
from deputy.services.autopilot import keep_watching_canaries
from deputy.services.build_runs import keep_resuming_builds, stop_builds
from deputy.services.channel_email import keep_serving_email
from deputy.services.channel_gateway import keep_delivering
from deputy.services.conversation_turns import keep_resuming
from deputy.services.improvement_runs import (
    keep_resuming_improvement_runs,
    keep_scheduling_improvements,
    stop_improvement_runs,
)
from deputy.services.platform import Platform
from deputy.services.sandbox_runs import keep_resuming_sandbox_runs, stop_sandbox_runs

MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_PATHS = frozenset({"/v1/materials"})


class BackgroundJobs(Protocol):
    """What the API needs of durable jobs: start with the app, stop with it, report readiness."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def ping(self) -> None: ...


def create_app(platform: Platform, *, jobs: BackgroundJobs | None = None) -> FastAPI:
    settings = platform.settings
    configure_tracing(settings.otlp_endpoint)

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
        try:
            yield
        finally:
            tasks = (
                resuming,
                resuming_builds,
                resuming_runs,
                watching,
                improving,
                scheduling,
                delivering,
                emailing,
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
