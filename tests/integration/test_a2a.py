"""A2A with the `a2a-sdk` client against a real uvicorn server on 127.0.0.1: the agent card,
a message answered as a completed task (and streamed), the same context continuing the
conversation, tasks read back, protocol 0.3 JSON-RPC, and who may reach an agent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

from tests.integration.channel_agent import echo_agent
from tests.integration.channel_server import serve_api
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

PROCEDURE = {
    "id": "shipping",
    "title": "Say when orders ship",
    "when": "The customer asks when an order ships.",
    "steps": [
        {"id": "tell", "kind": "say", "text": "Orders ship within two days."},
        {"id": "done", "kind": "end", "exit": "told"},
    ],
    "exits": [{"id": "told", "outcome": "resolved"}],
}
COMPLETED = TaskState.TASK_STATE_COMPLETED


def message(text: str, message_id: str, context_id: str = "") -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(
            message_id=message_id,
            context_id=context_id,
            role=Role.ROLE_USER,
            parts=[Part(text=text)],
        )
    )


async def send(client: Client, request: SendMessageRequest) -> list[StreamResponse]:
    return [event async for event in client.send_message(request)]


def reply_of(task: Task) -> str:
    return "".join(part.text for artifact in task.artifacts for part in artifact.parts)


def said(api: Api, conversation_id: str) -> list[str]:
    entries = api.client.get(
        f"/v1/conversations/{conversation_id}/transcript", headers=api.headers()
    ).json()["entries"]
    return [e["text"] for e in entries if e["kind"] in ("customer_message", "agent_message")]


def test_the_a2a_client_talks_to_a_deployed_agent(api: Api) -> None:
    agent_id = echo_agent(api, procedures=[PROCEDURE])
    with serve_api(api) as url:

        async def scenario() -> dict[str, Any]:
            async with httpx.AsyncClient(headers=api.headers(), timeout=60) as http:
                card = await A2ACardResolver(http, f"{url}/a2a/{agent_id}").get_agent_card()
                client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(
                    card
                )
                assert card.name == "echo"
                assert card.description == "Repeat what the customer says, to test channels."
                assert [(s.id, s.name) for s in card.skills] == [
                    ("shipping", "Say when orders ship")
                ]
                assert card.capabilities.streaming
                assert card.supported_interfaces[0].url == f"{url}/a2a/{agent_id}"
                scheme = card.security_schemes["deputyApiKey"].http_auth_security_scheme
                assert scheme.scheme == "bearer"

                (first,) = await send(client, message("Hello", "m-1"))
                task = first.task
                assert task.status.state == COMPLETED
                assert task.status.message.role == Role.ROLE_AGENT
                assert task.status.message.parts[0].text == "Echo: Hello"
                assert reply_of(task) == "Echo: Hello"
                assert task.history[0].message_id == "m-1"

                # The same context continues the conversation; a repeat is answered once.
                (second,) = await send(client, message("And again", "m-2", task.context_id))
                assert second.task.context_id == task.context_id
                assert reply_of(second.task) == "Echo: And again"
                (repeat,) = await send(client, message("And again", "m-2", task.context_id))
                assert repeat.task.id == second.task.id

                fetched = await client.get_task(GetTaskRequest(id=task.id, history_length=1))
                assert fetched.status.state == COMPLETED
                assert [m.parts[0].text for m in fetched.history] == ["Echo: Hello"]
                listed = await client.list_tasks(ListTasksRequest(context_id=task.context_id))
                assert [t.id for t in listed.tasks] == [second.task.id, task.id]
                with pytest.raises(TaskNotCancelableError, match="runs to its end"):
                    await client.cancel_task(CancelTaskRequest(id=task.id))
                with pytest.raises(TaskNotFoundError):
                    await client.get_task(GetTaskRequest(id="turn_01ARZ3NDEKTSV4RRFFQ69G5FAV"))

                streaming = ClientConfig(httpx_client=http, streaming=True)
                streamer = await ClientFactory(streaming).create_from_url(f"{url}/a2a/{agent_id}")
                events = await send(streamer, message("Streamed", "m-3", task.context_id))
                kinds = [e.WhichOneof("payload") for e in events]
                assert kinds[0] == "task" and kinds[-1] == "status_update"
                assert events[0].task.status.state == TaskState.TASK_STATE_WORKING
                assert events[-1].status_update.status.state == COMPLETED
                pieces = [
                    p.text for e in events if e.HasField("artifact_update")
                    for p in e.artifact_update.artifact.parts
                ]  # fmt: skip
                assert "".join(pieces) == "Echo: Streamed"

                # A context id the caller chose keeps naming its conversation.
                (own,) = await send(client, message("Mine", "m-4", "caller-context-7"))
                (own_next,) = await send(client, message("Still mine", "m-5", "caller-context-7"))
                assert own.task.context_id == own_next.task.context_id == "caller-context-7"
                early = SendMessageRequest(
                    message=message("Later", "m-6", task.context_id).message,
                    configuration=SendMessageConfiguration(return_immediately=True),
                )
                (polled,) = await send(client, early)
                assert polled.task.status.state in (
                    TaskState.TASK_STATE_SUBMITTED,
                    TaskState.TASK_STATE_WORKING,
                    COMPLETED,
                )
                for _ in range(200):
                    done = await client.get_task(GetTaskRequest(id=polled.task.id))
                    if done.status.state == COMPLETED:
                        break
                    await asyncio.sleep(0.05)
                assert reply_of(done) == "Echo: Later"
                await client.close()
                await streamer.close()
                return {"conversation": task.context_id, "own": own.task.id}

        found = asyncio.run(scenario())

    conversation_id = found["conversation"]
    conversation = api.client.get(
        f"/v1/conversations/{conversation_id}", headers=api.headers()
    ).json()
    assert conversation["channel"] == "a2a"
    assert said(api, conversation_id) == [
        "Hello",
        "Echo: Hello",
        "And again",
        "Echo: And again",
        "Streamed",
        "Echo: Streamed",
        "Later",
        "Echo: Later",
    ]


def test_protocol_0_3_json_rpc_methods(api: Api) -> None:
    agent_id = echo_agent(api)
    endpoint = f"/a2a/{agent_id}"
    sent = api.client.post(
        endpoint,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "message/send",
            "params": {
                "message": {
                    "kind": "message",
                    "messageId": "legacy-1",
                    "role": "user",
                    "parts": [{"kind": "text", "text": "Old client"}],
                }
            },
        },
        headers=api.headers(),
    )
    assert sent.status_code == 200, sent.text
    task = sent.json()["result"]
    assert (task["kind"], task["status"]["state"]) == ("task", "completed")
    assert task["artifacts"][0]["parts"][0]["text"] == "Echo: Old client"
    fetched = api.client.post(
        endpoint,
        json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task["id"]}},
        headers=api.headers(),
    ).json()["result"]
    assert fetched["contextId"] == task["contextId"]
    refused = api.client.post(
        endpoint,
        json={
            "jsonrpc": "2.0",
            "id": 3,
            "method": "message/send",
            "params": {
                "message": {
                    "kind": "message",
                    "messageId": "legacy-2",
                    "role": "user",
                    "parts": [{"kind": "file", "file": {"uri": "http://x/y.pdf"}}],
                }
            },
        },
        headers=api.headers(),
    ).json()
    assert refused["error"]["code"] == -32602 and "only text parts" in refused["error"]["message"]
    card = api.client.get(f"{endpoint}/.well-known/agent-card.json", headers=api.headers()).json()
    assert card["url"].endswith(endpoint) and card["protocolVersion"].startswith("0.3")


def test_only_a_key_that_may_talk_to_the_agent_reaches_it(api: Api) -> None:
    agent_id = echo_agent(api)
    created = api.client.post("/v1/agents", json={"name": "draft"}, headers=api.headers())
    draft_id = created.json()["id"]
    api.client.post(
        f"/v1/agents/{draft_id}/versions",
        json={"spec": {"name": "Draft", "goal": "Never deployed."}},
        headers=api.headers(),
    )
    _, other_key = api.new_workspace("Other")
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": {"kind": "message", "messageId": "x", "role": "user",
                               "parts": [{"kind": "text", "text": "hi"}]}},
    }  # fmt: skip
    card_path = f"/a2a/{agent_id}/.well-known/agent-card.json"
    assert api.client.get(card_path).status_code == 401
    assert api.client.post(f"/a2a/{agent_id}", json=body).status_code == 401
    stranger = api.headers(other_key)
    assert api.client.get(card_path, headers=stranger).status_code == 404
    assert api.client.post(f"/a2a/{agent_id}", json=body, headers=stranger).status_code == 404
    undeployed = api.client.post(f"/a2a/{draft_id}", json=body, headers=api.headers())
    assert undeployed.status_code == 404 and "no version deployed" in undeployed.text
    listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
    assert listed == []
