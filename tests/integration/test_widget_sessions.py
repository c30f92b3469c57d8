"""Widget sessions through the real app: the widget key in a web page may only start sessions;
a session's token reads and writes its own conversation (REST, SSE, WebSocket) and no other; an
expired, tampered or orphaned token is refused; a server-side channel key keeps working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from deputy.api.widget_cors import WidgetCorsMiddleware
from deputy.services.widget_sessions import SessionClaims, issue_token, read_token
from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

GREETING = "Hello! What can I do for you?"


def widget_key(api: Api, agent_id: str) -> str:
    created = api.client.post(
        "/v1/keys",
        json={
            "name": "site widget",
            "kind": "channel",
            "agent_id": agent_id,
            "scopes": ["widget:sessions"],
        },
        headers=api.headers(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["key"]["scopes"] == ["widget:sessions"]
    secret: str = created.json()["secret"]
    return secret


def start_session(api: Api, key: str) -> dict[str, Any]:
    started = api.client.post(
        "/v1/widget/sessions", headers={**api.headers(key), "Origin": "https://shop.example"}
    )
    assert started.status_code == 201, started.text
    assert started.headers["cache-control"] == "no-store"
    session: dict[str, Any] = started.json()
    return session


@pytest.fixture
def agent(api: Api) -> str:
    return echo_agent(api, channels={"chat": {"greeting": GREETING}}, persona={"name": "Ada"})


def test_a_session_is_a_new_chat_conversation_its_token_can_use(api: Api, agent: str) -> None:
    key = widget_key(api, agent)
    session = start_session(api, key)
    assert session["token"].startswith("dpw_")
    assert session["title"] == "Ada" and session["status"] == "active"
    assert session["allow_uploads"] is False
    token = api.headers(session["token"])
    cid = session["conversation_id"]

    conversation = api.client.get(f"/v1/conversations/{cid}", headers=token).json()
    assert conversation["channel"] == "chat" and conversation["agent_id"] == agent
    transcript = api.client.get(f"/v1/conversations/{cid}/transcript", headers=token).json()
    assert [e["text"] for e in transcript["entries"]] == [GREETING]
    said = api.client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=token)
    assert said.status_code == 200, said.text
    assert said.json()["reply"]["text"] == ECHO_PREFIX + "hi"
    listed = api.client.get("/v1/conversations", headers=token).json()["data"]
    assert [c["id"] for c in listed] == [cid]

    # The owner sees where it came from; the token is nowhere in it.
    seen = api.client.get(f"/v1/conversations/{cid}", headers=api.headers()).json()
    assert seen["status"] == "active"
    owner_view = api.client.get(f"/v1/conversations/{cid}/transcript", headers=api.headers())
    assert session["token"] not in owner_view.text

    # Refreshing gives a new token for the same conversation; the old one still works until it
    # expires.
    refreshed = api.client.post("/v1/widget/sessions/refresh", headers=token)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["conversation_id"] == cid
    again = api.client.get(
        f"/v1/conversations/{cid}", headers=api.headers(refreshed.json()["token"])
    )
    assert again.status_code == 200


def test_a_token_cannot_reach_another_conversation(api: Api, agent: str) -> None:
    key = widget_key(api, agent)
    mine, theirs = start_session(api, key), start_session(api, key)
    token = api.headers(mine["token"])
    other = theirs["conversation_id"]
    api.client.post(
        f"/v1/conversations/{other}/messages",
        json={"text": "my card ends in 4242"},
        headers=api.headers(theirs["token"]),
    )
    for method, path, body in (
        ("get", f"/v1/conversations/{other}", None),
        ("get", f"/v1/conversations/{other}/transcript", None),
        ("get", f"/v1/conversations/{other}/events", None),
        ("post", f"/v1/conversations/{other}/messages", {"text": "hello?"}),
        ("post", f"/v1/conversations/{other}/feedback", {"rating": 1}),
        ("post", f"/v1/conversations/{other}/close", {}),
    ):
        response = api.client.request(method, path, json=body, headers=token)
        assert response.status_code == 404, (path, response.text)
    listed = api.client.get("/v1/conversations", headers=token).json()["data"]
    assert [c["id"] for c in listed] == [mine["conversation_id"]]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        api.client.websocket_connect(
            f"/v1/conversations/{other}/ws?after=0",
            subprotocols=["deputy.v1", f"bearer.{mine['token']}"],
        ) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 4404
    # ...while its own conversation streams over the WebSocket.
    with api.client.websocket_connect(
        f"/v1/conversations/{mine['conversation_id']}/ws?after=0",
        subprotocols=["deputy.v1", f"bearer.{mine['token']}"],
    ) as ws:
        assert ws.receive_json()["entry"]["text"] == GREETING
        ws.send_json({"type": "message", "text": "ping", "client_message_id": "m1"})
        events = []
        while not events or events[-1]["type"] != "turn.completed":
            events.append(ws.receive_json())
    said = [e["entry"] for e in events if e["type"] == "entry"]
    texts = [e["text"] for e in said if e["kind"] in ("customer_message", "agent_message")]
    assert texts == ["ping", ECHO_PREFIX + "ping"]
    assert any(e["type"] == "reply.delta" for e in events)
    # Nor can it start sessions or make keys.
    assert api.client.post("/v1/widget/sessions", headers=token).status_code == 403
    assert api.client.get("/v1/keys", headers=token).status_code == 403


def test_expired_tampered_and_orphaned_tokens_are_refused(api: Api, agent: str) -> None:
    key = widget_key(api, agent)
    session = start_session(api, key)
    cid, token = session["conversation_id"], session["token"]
    path = f"/v1/conversations/{cid}"
    settings = api.platform.settings
    claims = read_token(settings, token)
    expired = issue_token(
        settings,
        SessionClaims(
            workspace_id=claims.workspace_id,
            agent_id=claims.agent_id,
            conversation_id=cid,
            key_id=claims.key_id,
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        ),
    )
    body, _, signature = token.partition(".")
    forged_body = issue_token(
        settings,
        SessionClaims(
            workspace_id=claims.workspace_id,
            agent_id=claims.agent_id,
            conversation_id="cnv_01J00000000000000000000000",
            key_id=claims.key_id,
            expires_at=claims.expires_at,
        ),
    ).partition(".")[0]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (expired, f"{forged_body}.{signature}", f"{body}.{flipped}", "dpw_garbage"):
        response = api.client.get(path, headers=api.headers(bad))
        assert response.status_code == 401, (bad, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
    stale = api.client.get(path, headers=api.headers(expired)).json()
    assert "expired" in stale["error"]["message"]

    # Revoking the widget key ends its sessions.
    key_id = claims.key_id
    assert api.client.get(path, headers=api.headers(token)).status_code == 200
    revoked = api.client.post(f"/v1/keys/{key_id}/revoke", headers=api.headers())
    assert revoked.status_code == 200, revoked.text
    assert api.client.get(path, headers=api.headers(token)).status_code == 401
    assert api.client.post("/v1/widget/sessions", headers=api.headers(key)).status_code == 401


def test_only_a_widget_key_starts_sessions_and_it_can_do_nothing_else(api: Api, agent: str) -> None:
    key = widget_key(api, agent)
    session = start_session(api, key)
    for method, path in (
        ("get", "/v1/conversations"),
        ("get", f"/v1/conversations/{session['conversation_id']}"),
        ("post", "/v1/conversations"),
        ("get", "/v1/queue"),
    ):
        response = api.client.request(
            method,
            path,
            json={"agent_id": agent} if method == "post" else None,
            headers=api.headers(key),
        )
        assert response.status_code == 403, (path, response.text)

    # A server-side channel key (conversation scopes) is refused by the widget...
    server = api.client.post(
        "/v1/keys",
        json={"name": "backend", "kind": "channel", "agent_id": agent},
        headers=api.headers(),
    ).json()
    assert set(server["key"]["scopes"]) == {"conversations:read", "conversations:write"}
    refused = api.client.post("/v1/widget/sessions", headers=api.headers(server["secret"]))
    assert refused.status_code == 403
    assert "widget:sessions" in refused.json()["error"]["message"]
    # ...and keeps working for server-side use: it sees its agent's conversations.
    listed = api.client.get("/v1/conversations", headers=api.headers(server["secret"]))
    assert session["conversation_id"] in [c["id"] for c in listed.json()["data"]]
    # The owner's own key is no widget key either.
    assert api.client.post("/v1/widget/sessions", headers=api.headers()).status_code == 403

    # A widget key holds nothing but its scope, and only a channel key is one.
    for body in (
        {"kind": "channel", "agent_id": agent, "scopes": ["widget:sessions", "conversations:read"]},
        {"kind": "member", "scopes": ["widget:sessions"]},
    ):
        made = api.client.post("/v1/keys", json={"name": "x", **body}, headers=api.headers())
        assert made.status_code == 400, made.text


def test_a_session_needs_the_agents_web_chat_on(api: Api) -> None:
    agent = echo_agent(api, name="no-chat", channels={"chat": {"enabled": False}})
    key = widget_key(api, agent)
    refused = api.client.post("/v1/widget/sessions", headers=api.headers(key))
    assert refused.status_code == 403
    assert "channels.chat.enabled" in refused.json()["error"]["message"]
    assert api.client.get("/v1/conversations", headers=api.headers()).json()["data"] == []


def test_cors_lets_pages_call_the_widget_paths_only(api: Api, agent: str) -> None:
    app = api.client.app
    installed = any(m.cls is WidgetCorsMiddleware for m in app.user_middleware)  # type: ignore[attr-defined]
    client = api.client if installed else TestClient(WidgetCorsMiddleware(app))
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    for path in ("/v1/widget/sessions", f"/v1/conversations/{agent}/attachments"):
        allowed = client.options(path, headers=preflight)
        assert allowed.status_code == 200, path
        assert allowed.headers["access-control-allow-origin"] == "*"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    started = client.post(
        "/v1/widget/sessions",
        headers={**api.headers(widget_key(api, agent)), "Origin": "https://shop.example"},
    )
    assert started.status_code == 201
    assert started.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in started.headers
    for path in ("/v1/keys", "/v1/agents"):
        assert "access-control-allow-origin" not in client.options(path, headers=preflight).headers
        plain = client.get(path, headers={**api.headers(), "Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in plain.headers


def test_a_token_sees_what_was_said_and_nothing_of_the_agents_workings(
    api: Api, agent: str
) -> None:
    """Model steps hold the model's raw draft (which a guardrail may have blocked): the
    customer's browser gets only what was said; the owner sees everything."""
    session = start_session(api, widget_key(api, agent))
    token, cid = api.headers(session["token"]), session["conversation_id"]
    said = api.client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=token)
    assert said.status_code == 200, said.text
    customer_facing = {"customer_message", "agent_message", "human_message", "feedback"}
    assert {e["kind"] for e in said.json()["entries"]} <= customer_facing
    streamed = api.client.post(
        f"/v1/conversations/{cid}/messages",
        json={"text": "again"},
        headers={**token, "Accept": "text/event-stream"},
    )
    assert streamed.status_code == 200 and '"agent_message"' in streamed.text
    assert '"model_step"' not in streamed.text
    mine = api.client.get(f"/v1/conversations/{cid}/transcript", headers=token).json()["entries"]
    everything = api.client.get(f"/v1/conversations/{cid}/transcript", headers=api.headers())
    assert {e["kind"] for e in mine} <= customer_facing
    assert "model_step" in {e["kind"] for e in everything.json()["entries"]}
    assert [e["text"] for e in mine if e["kind"] == "agent_message"][-1] == ECHO_PREFIX + "again"
    refused = api.client.post("/v1/conversations", json={"agent_id": agent}, headers=token)
    assert refused.status_code == 403
