"""A2A (agent-to-agent) for each deployed agent, with `a2a-sdk`: the agent card at
`/a2a/{agent_id}/.well-known/agent-card.json` (where the SDK's card resolver looks, given the
agent's base URL `/a2a/{agent_id}`) and the JSON-RPC endpoint at `/a2a/{agent_id}`, protocol
1.0 (`SendMessage`, `SendStreamingMessage`, `GetTask`, `ListTasks`, `CancelTask`) and 0.3
(`message/send`, `message/stream`, `tasks/get`, `tasks/cancel`).

Both need a Deputy API key as the bearer token (the card declares it), one that may talk to the
agent: an agent's card describes its procedures, which are its workspace's business. An agent
another workspace owns, or one not deployed on `a2a` or `all`, is not found."""

from __future__ import annotations

from typing import Any

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from deputy.api.deps import PlatformDep, PrincipalDep
from deputy.api.errors import ERROR_RESPONSES
from deputy.services import a2a_agents as svc
from deputy.services.platform import Platform

router = APIRouter(tags=["a2a"], responses=ERROR_RESPONSES)

_dispatcher = JsonRpcDispatcher(
    svc.DeputyRequestHandler(),
    context_builder=svc.DeputyCallContextBuilder(),
    enable_v0_3_compat=True,
)

_RPC_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A JSON-RPC 2.0 response (errors included), or Server-Sent Events of "
        "JSON-RPC responses for streaming methods.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}
_RPC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A JSON-RPC 2.0 request (A2A methods).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["jsonrpc", "method"],
                    "properties": {
                        "jsonrpc": {"type": "string", "enum": ["2.0"]},
                        "id": {"type": ["string", "integer", "null"]},
                        "method": {"type": "string"},
                        "params": {"type": "object"},
                    },
                }
            }
        },
    }
}


def _endpoint(platform: Platform, request: Request, agent_id: str) -> str:
    base = platform.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/a2a/{agent_id}"


@router.get("/a2a/{agent_id}/.well-known/agent-card.json")
def agent_card(
    agent_id: str, request: Request, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The agent's A2A card: its goal, one skill per procedure, where and how to call it."""
    agent = svc.find_agent(platform, principal, agent_id)
    card: dict[str, Any] = agent_card_to_dict(
        svc.card_for(agent, _endpoint(platform, request, agent.id))
    )
    return card


@router.get("/a2a/{agent_id}/.well-known/agent.json", include_in_schema=False)
def legacy_agent_card(
    agent_id: str, request: Request, platform: PlatformDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Where A2A clients before 0.3 look for the card."""
    return agent_card(agent_id, request, platform, principal)


@router.post(
    "/a2a/{agent_id}",
    response_class=JSONResponse,
    responses=_RPC_RESPONSES,
    openapi_extra=_RPC_BODY,
)
async def rpc(
    agent_id: str, request: Request, platform: PlatformDep, principal: PrincipalDep
) -> Response:
    """The agent's JSON-RPC endpoint (A2A 1.0 with the `A2A-Version: 1.0` header, else 0.3)."""
    agent = await platform.db.run(svc.find_agent, platform, principal, agent_id)
    request.state.deputy = svc.A2ACall(platform, principal, agent)
    response: Response = await _dispatcher.handle_requests(request)
    return response
