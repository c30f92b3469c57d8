"""Conversations through the real app: REST, the streamed turn (SSE), following a
conversation's events (SSE, on a real server so the stream is live), the human queue and
validation. The agent's model is a scripted fake behind the real registry. The WebSocket is in
test_api_conversation_ws.py, the SDK and `deputy chat` in test_conversation_clients.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from examples.retail.server import serve_app

from deputy.api import conversation_streams
from deputy.testing import ScriptedModel
from tests.integration.conftest import Api
from tests.integration.test_api_model_calls import serve_fake

pytestmark = pytest.mark.integration

MODEL = "openai:gpt-conversations"
GREETING = "Hi! How can I help?"
SPEC = {
    "name": "Support",
    "goal": "Answer order questions.",
    "channels": {"chat": {"greeting": GREETING}},
}
REPLY = "Your order ships tomorrow. Anything else?"


def create_agent(api: Api, model: ScriptedModel) -> str:
    serve_fake(api, MODEL, model)
    agent = api.client.post("/v1/agents", json={"name": "support"}, headers=api.headers())
    agent_id: str = agent.json()["id"]
    version = api.client.post(
        f"/v1/agents/{agent_id}/versions", json={"spec": SPEC}, headers=api.headers()
    )
    assert version.status_code == 201, version.text
    patched = api.client.patch(
        f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers()
    )
    assert patched.status_code == 200, patched.text
    return agent_id


def start(api: Api, agent_id: str) -> dict[str, Any]:
    response = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id}, headers=api.headers()
    )
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def parse_sse(text: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each event of an SSE body; comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return events


def test_rest_round_trip(api: Api) -> None:
    model = ScriptedModel([REPLY, "Happy to help."], name=MODEL)
    agent_id = create_agent(api, model)
    conversation = start(api, agent_id)
    assert (conversation["status"], conversation["agent_version"]) == ("active", 1)
    assert conversation["last_seq"] == 1  # the greeting
    base = f"/v1/conversations/{conversation['id']}"

    turn = api.client.post(
        f"{base}/messages", json={"text": "Where is my order?"}, headers=api.headers()
    )
    assert turn.status_code == 200, turn.text
    result = turn.json()
    assert result["reply"]["text"] == REPLY
    assert result["reply"]["kind"] == "agent_message"
    kinds = [entry["kind"] for entry in result["entries"]]
    assert kinds[0] == "customer_message" and "agent_message" in kinds
    assert result["entries"][0]["text"] == "Where is my order?"
    assert model.last_request.messages[-1].content == "Where is my order?"

    again = api.client.post(
        f"{base}/messages", json={"text": "Thanks!"}, headers=api.headers()
    ).json()
    assert again["reply"]["text"] == "Happy to help."
    model.assert_all_used()

    fetched = api.client.get(base, headers=api.headers()).json()
    assert fetched["last_seq"] == again["entries"][-1]["seq"]
    listed = api.client.get(
        "/v1/conversations",
        params={"agent_id": agent_id, "status": "active"},
        headers=api.headers(),
    ).json()
    assert [c["id"] for c in listed["data"]] == [conversation["id"]]
    none = api.client.get(
        "/v1/conversations", params={"status": "closed"}, headers=api.headers()
    ).json()
    assert none["data"] == []

    first = api.client.get(f"{base}/transcript?limit=2", headers=api.headers()).json()
    assert [e["seq"] for e in first["entries"]] == [1, 2]
    assert first["entries"][0]["text"] == GREETING
    rest = api.client.get(
        f"{base}/transcript?after={first['next_after']}", headers=api.headers()
    ).json()
    assert rest["next_after"] is None
    assert [e["seq"] for e in rest["entries"]] == list(range(3, fetched["last_seq"] + 1))

    closed = api.client.post(
        f"{base}/close", json={"outcome": "resolved", "reason": "answered"}, headers=api.headers()
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["outcome"]) == ("closed", "resolved")
    late = api.client.post(f"{base}/messages", json={"text": "hello?"}, headers=api.headers())
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "conflict"


def test_post_message_streams_the_turn_as_sse(api: Api) -> None:
    model = ScriptedModel([REPLY], name=MODEL)
    conversation = start(api, create_agent(api, model))
    response = api.client.post(
        f"/v1/conversations/{conversation['id']}/messages",
        json={"text": "Where is my order?"},
        headers={**api.headers(), "Accept": "text/event-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    types = [event for _, event, _ in events]
    assert types[-1] == "turn.completed" and types.count("turn.completed") == 1
    assert events[-1][2]["conversation"]["id"] == conversation["id"]

    deltas = [data["text"] for _, event, data in events if event == "reply.delta"]
    assert len(deltas) == 2 and "".join(deltas) == REPLY
    entries = [data["entry"] for _, event, data in events if event == "entry"]
    assert all(
        event_id == str(data["entry"]["seq"])
        for event_id, event, data in events
        if event == "entry"
    )
    reply_at = types.index("entry", max(i for i, t in enumerate(types) if t == "reply.delta"))
    assert events[reply_at][2]["entry"]["kind"] == "agent_message"
    assert types.index("reply.delta") < reply_at  # the pieces stream before the reply is final

    transcript = api.client.get(
        f"/v1/conversations/{conversation['id']}/transcript?after=1", headers=api.headers()
    ).json()
    assert sorted(e["seq"] for e in entries) == [e["seq"] for e in transcript["entries"]]
    assert {e["kind"] for e in entries} >= {"customer_message", "guardrail", "agent_message"}


def test_a_repeated_streamed_message_is_answered_once(api: Api) -> None:
    """A stream is not held back for Idempotency-Key replay (it would stop streaming): a
    streamed message is deduplicated by its `client_message_id` instead."""
    model = ScriptedModel([REPLY], name=MODEL)
    conversation = start(api, create_agent(api, model))
    send = {
        "url": f"/v1/conversations/{conversation['id']}/messages",
        "json": {"text": "Where is my order?", "client_message_id": "m-1"},
        "headers": {**api.headers(), "Accept": "text/event-stream", "Idempotency-Key": "k-1"},
    }
    first = api.client.post(**send)
    again = api.client.post(**send)
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in again.headers
    assert again.headers["content-type"].startswith("text/event-stream")
    replies = [
        [
            data["entry"]["id"]
            for _, event, data in parse_sse(body.text)
            if event == "entry" and data["entry"]["kind"] == "agent_message"
        ]
        for body in (first, again)
    ]
    assert replies[0] and replies[0][-1:] == replies[1][-1:]
    assert parse_sse(again.text)[-1][1] == "turn.completed"
    model.assert_all_used()  # one turn


def sse_lines(lines: Iterator[str]) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """Events of a live SSE stream as they arrive; a comment is ("comment", text, {})."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip(), {}
        elif line:
            name, _, value = line.partition(": ")
            fields[name] = value
        elif "event" in fields:
            yield fields.get("id"), fields["event"], json.loads(fields["data"])
            fields = {}


def test_following_events_sends_the_backlog_then_live_events_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_streams, "HEARTBEAT_SECONDS", 0.2)
    model = ScriptedModel([REPLY, "Second answer."], name=MODEL)
    conversation = start(api, create_agent(api, model))
    cid = conversation["id"]
    api.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "one"}, headers=api.headers()
    )
    backlog_end = api.client.get(f"/v1/conversations/{cid}", headers=api.headers()).json()[
        "last_seq"
    ]
    with (
        serve_app(api.client.app) as url,
        httpx.Client(base_url=url, headers=api.headers(), timeout=30) as http,
        http.stream("GET", f"/v1/conversations/{cid}/events", params={"after": 1}) as stream,
    ):
        assert stream.status_code == 200
        events = sse_lines(stream.iter_lines())
        seqs: list[int] = []
        while not seqs or seqs[-1] < backlog_end:
            event_id, event, data = next(events)
            assert event == "entry", (event, data)
            seqs.append(data["entry"]["seq"])
            assert event_id == str(seqs[-1])
        assert next(events)[0] == "comment"  # idle: a heartbeat keeps the stream open

        turn = http.post(f"/v1/conversations/{cid}/messages", json={"text": "two"})
        assert turn.status_code == 200, turn.text
        live: list[tuple[str, dict[str, Any]]] = []
        for event_id, event, data in events:
            if event_id != "comment":
                live.append((event, data))
            if event == "turn.completed":
                break
        closed = http.post(f"/v1/conversations/{cid}/close", json={})
        assert closed.status_code == 200, closed.text
        for event_id, event, data in events:
            if event_id != "comment":
                live.append((event, data))
    live_seqs = [data["entry"]["seq"] for event, data in live if event == "entry"]
    seqs += live_seqs
    assert seqs == list(range(2, closed.json()["last_seq"] + 1))  # nothing lost or repeated
    assert [e["seq"] for e in turn.json()["entries"]] == live_seqs[: len(turn.json()["entries"])]
    assert "".join(d["text"] for event, d in live if event == "reply.delta") == "Second answer."
    assert live[-1][0] == "status" and live[-1][1]["conversation"]["status"] == "closed"

    # A reconnecting EventSource sends Last-Event-ID: the stream resumes after it, and a
    # closed conversation's stream ends after its backlog.
    resumed = api.client.get(
        f"/v1/conversations/{cid}/events?after=1",
        headers={**api.headers(), "Last-Event-ID": str(backlog_end)},
    )
    resumed_events = parse_sse(resumed.text)
    assert [d["entry"]["seq"] for _, e, d in resumed_events if e == "entry"] == live_seqs
    assert resumed_events[-1][1] == "status"


def test_queue_flow_through_the_api(api: Api) -> None:
    model = ScriptedModel(["Back with the agent."], name=MODEL)
    agent_id = create_agent(api, model)
    conversation = start(api, agent_id)
    base = f"/v1/conversations/{conversation['id']}"
    handoff = api.client.post(
        f"{base}/messages", json={"text": "I want to talk to a human"}, headers=api.headers()
    ).json()
    assert handoff["conversation"]["status"] == "queued"
    assert handoff["conversation"]["handoff"]["trigger"] == "customer_request"
    queue = api.client.get("/v1/queue", headers=api.headers()).json()
    assert [c["id"] for c in queue["data"]] == [conversation["id"]]

    _, stranger = api.new_workspace("Elsewhere")
    assert api.client.get("/v1/queue", headers=api.headers(stranger)).json()["data"] == []
    taken = api.client.post(f"{base}/claim", headers=api.headers(stranger))
    assert taken.status_code == 404
    channel = api.client.post(
        "/v1/keys",
        json={"name": "widget", "kind": "channel", "agent_id": agent_id},
        headers=api.headers(),
    ).json()["secret"]
    assert api.client.post(f"{base}/claim", headers=api.headers(channel)).status_code == 403

    claimed = api.client.post(f"{base}/claim", headers=api.headers())
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "human" and claimed.json()["assignee_member_id"]
    assert api.client.post(f"{base}/claim", headers=api.headers()).status_code == 409
    human = api.client.post(
        f"{base}/human-replies", json={"text": "Hi, Sam here."}, headers=api.headers()
    )
    assert human.status_code == 201, human.text
    assert (human.json()["kind"], human.json()["text"]) == ("human_message", "Hi, Sam here.")
    while_human = api.client.post(
        f"{base}/messages", json={"text": "Thanks Sam"}, headers=api.headers()
    ).json()
    assert while_human["reply"] is None  # the agent stays quiet while a person has it

    back = api.client.post(f"{base}/hand-back", headers=api.headers())
    assert back.status_code == 200 and back.json()["status"] == "active"
    answered = api.client.post(
        f"{base}/messages", json={"text": "One more thing"}, headers=api.headers()
    ).json()
    assert answered["reply"]["text"] == "Back with the agent."
    model.assert_all_used()


def test_validation_and_unknown_conversations(api: Api) -> None:
    conversation = start(api, create_agent(api, ScriptedModel([], name=MODEL)))
    base = f"/v1/conversations/{conversation['id']}"
    empty = api.client.post(f"{base}/messages", json={"text": ""}, headers=api.headers())
    assert empty.status_code == 422
    error = empty.json()["error"]
    assert error["code"] == "validation_error" and error["request_id"].startswith("req_")
    assert [p["loc"] for p in error["details"]["errors"]] == ["body.text"]
    for method, path in [
        ("GET", "/v1/conversations/cnv_missing"),
        ("POST", "/v1/conversations/cnv_missing/messages"),
        ("GET", "/v1/conversations/cnv_missing/events"),
        ("GET", "/v1/conversations/cnv_missing/transcript"),
    ]:
        missing = api.client.request(method, path, json={"text": "hi"}, headers=api.headers())
        assert missing.status_code == 404, (path, missing.text)
        assert missing.json()["error"]["code"] == "not_found"
    for bad in (
        f"{base}/transcript?after=-1",
        f"{base}/transcript?limit=0",
        f"{base}/events?after={2**31}",
        "/v1/conversations?status=open",
    ):
        assert api.client.get(bad, headers=api.headers()).status_code == 422, bad
    unknown_agent = api.client.post(
        "/v1/conversations", json={"agent_id": "agt_missing"}, headers=api.headers()
    )
    assert unknown_agent.status_code == 404
    streamed_missing = api.client.post(
        "/v1/conversations/cnv_missing/messages",
        json={"text": "hi"},
        headers={**api.headers(), "Accept": "text/event-stream"},
    )
    assert streamed_missing.status_code == 404  # refused before any stream starts
    assert streamed_missing.headers["content-type"] == "application/json"
