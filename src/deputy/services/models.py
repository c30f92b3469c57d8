"""Models as a platform capability: resolve the model a call runs on, list models, try one.

Which model serves a call: the agent's `model`, else its workspace's `default_model`, else the
platform default (DEPUTY_DEFAULT_MODEL); DEPUTY_FALLBACK_MODELS are tried after it when it is
unavailable. A workspace's OpenAI-compatible endpoints are overlaid on the platform's.
"""

from __future__ import annotations

import anyio
from sqlalchemy import select

from deputy.domain import resources as r
from deputy.domain.tenancy import Principal
from deputy.llm.types import Message, Model, ModelRequest
from deputy.services.access import require
from deputy.services.model_endpoints import endpoint_credentials
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.db import Database


def _workspace_choice(db: Database, workspace_id: str) -> str | None:
    with db.tenant_session(workspace_id) as session:
        return session.scalar(
            select(t.Workspace.default_model).where(t.Workspace.id == workspace_id)
        )


def resolve_model(platform: Platform, workspace_id: str, agent_model: str | None = None) -> Model:
    """The model (with its fallbacks) a call in `workspace_id` runs on. Blocking: DB reads."""
    chosen = agent_model or _workspace_choice(platform.db, workspace_id)
    registry = platform.models.registry(endpoint_credentials(platform, workspace_id))
    return registry.resolve(platform.models.chain(chosen))


def list_models(platform: Platform, principal: Principal) -> r.ModelCatalog:
    require(principal, "workspace:read")
    hub = platform.models
    chosen = _workspace_choice(platform.db, principal.workspace_id)
    endpoints = endpoint_credentials(platform, principal.workspace_id)
    base = hub.base_settings
    return r.ModelCatalog(
        default_model=hub.chain(chosen)[0],
        platform_default=hub.settings.default_model,
        fallback_models=list(hub.settings.fallback_models),
        local=[
            r.LocalModelInfo(
                name=status.name,
                title=status.title,
                role=status.role,
                state=status.state,
                size_bytes=status.size_bytes,
                installed_bytes=status.installed_bytes,
                install_command=status.install_command,
                is_default=status.name == hub.chain(chosen)[0],
                problems=list(status.problems),
            )
            for status in hub.local.catalog()
        ],
        endpoints=sorted({*base.openai_compatible, *endpoints}),
        hosted={
            "openai": base.openai_api_key is not None,
            "anthropic": base.anthropic_api_key is not None,
        },
    )


async def try_model(platform: Platform, principal: Principal, body: r.ModelTry) -> r.ModelTryResult:
    """One request to a model, metered to the caller's workspace: the playground call."""
    require(principal, "agents:write")
    model = await anyio.to_thread.run_sync(
        resolve_model, platform, principal.workspace_id, body.model
    )
    messages = ([Message.system(body.system)] if body.system else []) + [Message.user(body.prompt)]
    response = await model.request(
        ModelRequest(
            messages=tuple(messages),
            response_schema=body.response_schema,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            metadata={"workspace_id": principal.workspace_id},
        )
    )
    return r.ModelTryResult(
        model=response.model,
        text=response.text,
        parsed=response.parsed,
        finish_reason=response.finish_reason,
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        latency_seconds=round(response.latency_seconds, 3),
    )
