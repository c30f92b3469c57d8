"""An agent for probe tests whose answers the test controls: its model states the opening hours
it finds in the spec's goal (`HOURS: ...`), so a new version with other hours answers without
the fact a probe expects; `Switch.down` makes the model unavailable (its endpoint failing);
"remember X" makes it call the `note` tool (the platform's `remember_fact` built-in); while
`Switch.stalled` is set, a reply waits until the test clears it. As a judge, it finds that a
statement holds when the agent said the good hours."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from deputy.domain.ids import new_id
from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import Message, ModelRequest, ModelResponse
from deputy.store import tables as t
from deputy.testing import FunctionModel, reply, structured, tool_call
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

MODEL = "openai:probe-hours"
GOOD_HOURS = "9am to 5pm"
BAD_HOURS = "by appointment only"
_HOURS = re.compile(r"HOURS: ([^.\n]+)")


def hours_spec(hours: str, *, note_effect: str = "write") -> dict[str, Any]:
    return {
        "name": "Front desk",
        "goal": f"Tell customers when the shop is open. HOURS: {hours}.",
        "mode": "reasoning",
        "guardrails": {"preset": "minimal"},
        "tools": [
            {
                "name": "note",
                "description": "Remember a fact about the conversation.",
                "effect": note_effect,
                "binding": {"kind": "builtin", "builtin": "remember_fact"},
            }
        ],
    }


def _last(messages: tuple[Message, ...], role: str) -> Message | None:
    return next((m for m in reversed(messages) if m.role == role), None)


@dataclass
class Switch:
    """What the model does: answer, stall, or fail as an unreachable endpoint does."""

    down: bool = False
    stalled: threading.Event = field(default_factory=threading.Event)

    async def answer(self, request: ModelRequest) -> ModelResponse:
        if request.response_schema is not None:
            properties = request.response_schema.get("properties", {"answer": {}})
            if "holds" in properties:  # the judge: the statement holds when the hours were said
                said = f"Agent: We are open {GOOD_HOURS}" in request.messages[-1].content
                return structured({"reasoning": "the agent's reply", "holds": said})
            return structured({next(iter(properties)): "ok"})
        while self.stalled.is_set():
            await asyncio.sleep(0.01)
        if self.down:
            raise ModelUnavailable("the model endpoint answered 503")
        if request.messages[-1].role == "tool":
            return reply("Noted.")
        said = (_last(request.messages, "user") or Message.user("")).content.strip()
        if said.lower().startswith("remember "):
            return tool_call("note", {"fact": said[len("remember ") :]})
        system = (_last(request.messages, "system") or Message.system("")).content
        found = _HOURS.search(system)
        return reply(f"We are open {found.group(1) if found else 'at times I do not know'}.")


def request(api: Api, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    response = api.client.request(method, path, json=body, headers=api.headers(key))
    assert response.status_code in (200, 201, 204), f"{method} {path}: {response.text}"
    return response.json() if response.content else None


def hours_agent(
    api: Api, switch: Switch, *, note_effect: str = "write", channel: str | None = "all"
) -> str:
    """The agent, with version 1 (the good hours) deployed on `channel` (None: nowhere) and
    version 2 (other hours) stored, not deployed."""
    serve_model(api, MODEL, FunctionModel(switch.answer, name=MODEL))
    name = f"front-desk-{new_id('agt')[-6:].lower()}"
    agent_id: str = request(api, "POST", "/v1/agents", {"name": name})["id"]
    request(api, "PATCH", f"/v1/agents/{agent_id}", {"model": MODEL})
    for hours in (GOOD_HOURS, BAD_HOURS):
        spec = hours_spec(hours, note_effect=note_effect)
        request(api, "POST", f"/v1/agents/{agent_id}/versions", {"spec": spec})
    if channel is not None:
        deploy(api, agent_id, 1, channel)
    return agent_id


def deploy(api: Api, agent_id: str, version: int, channel: str = "all") -> None:
    body = {"version": version, "channel": channel}
    request(api, "POST", f"/v1/agents/{agent_id}/deployments", body)


def add_alert_target(api: Api, name: str = "on-call") -> str:
    """A webhook target of the workspace (alerts write a notification row per target)."""
    workspace_id = request(api, "GET", "/v1/workspace")["id"]
    target_id = new_id("altg")
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(
            t.AlertTarget(
                id=target_id,
                workspace_id=workspace_id,
                name=name,
                kind="webhook",
                config={"url": "http://127.0.0.1:9/alerts"},
                min_severity="ticket",
                enabled=True,
            )
        )
    return target_id
