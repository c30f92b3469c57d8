"""The conversation WebSocket through the real app: a round trip with the key in the header,
the query string and a subprotocol; bad frames answered without closing; close codes for
refusals."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnect

from deputy.api.routes.conversation_ws import credential
from deputy.testing import ScriptedModel
from tests.integration.conftest import Api
from tests.integration.test_api_conversations import GREETING, MODEL, REPLY, create_agent, start

pytestmark = pytest.mark.integration


def receive_until(ws: Any, wanted: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while not received or received[-1]["type"] != wanted:
        received.append(ws.receive_json())
    return received


def test_websocket_round_trip_with_header_token_and_subprotocol(api: Api) -> None:
    model = ScriptedModel([REPLY, "Second answer."], name=MODEL)
    conversation = start(api, create_agent(api, model))
    path = f"/v1/conversations/{conversation['id']}/ws"
    with api.client.websocket_connect(path, headers=api.headers()) as ws:
        ws.send_text("not json")
        assert ws.receive_json()["error"]["code"] == "invalid_request"
        ws.send_json({"type": "message", "text": ""})
        assert ws.receive_json()["error"]["code"] == "validation_error"
        ws.send_json({"type": "message", "text": "Where is my order?"})
        events = receive_until(ws, "turn.completed")
    entries = [e["entry"] for e in events if e["type"] == "entry"]
    assert entries[0]["kind"] == "customer_message"  # live events only: no greeting
    assert entries[0]["text"] == "Where is my order?"
    assert [e["seq"] for e in entries] == sorted({e["seq"] for e in entries})
    assert entries[-1]["kind"] == "agent_message" and entries[-1]["text"] == REPLY
    assert "".join(e["text"] for e in events if e["type"] == "reply.delta") == REPLY

    # The key as a query parameter, with the stored entries after ?after= first.
    with api.client.websocket_connect(f"{path}?after=0&access_token={api.owner_key}") as ws:
        backlog = [ws.receive_json() for _ in range(len(entries) + 1)]
        assert [e["entry"]["seq"] for e in backlog] == list(range(1, len(entries) + 2))
        assert backlog[0]["entry"]["text"] == GREETING
    # The key as a subprotocol (browsers): the server selects `deputy.v1`.
    with api.client.websocket_connect(
        path, subprotocols=["deputy.v1", f"bearer.{api.owner_key}"]
    ) as ws:
        assert ws.accepted_subprotocol == "deputy.v1"
        ws.send_json({"type": "message", "text": "And the invoice?"})
        assert receive_until(ws, "turn.completed")[-1]["conversation"]["id"] == conversation["id"]
        api.client.post(
            f"/v1/conversations/{conversation['id']}/close", json={}, headers=api.headers()
        )
        assert receive_until(ws, "status")[-1]["conversation"]["status"] == "closed"
        with pytest.raises(WebSocketDisconnect) as ended:
            ws.receive_json()
        assert ended.value.code == 1000
    model.assert_all_used()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("access_token=dpy_key_00000000000000000000000000_nope", 4401),
        ("", 4401),
        ("after=-1", 4400),
    ],
)
def test_websocket_refusals_have_close_codes(api: Api, query: str, code: int) -> None:
    conversation = start(api, create_agent(api, ScriptedModel([], name=MODEL)))
    path = f"/v1/conversations/{conversation['id']}/ws?{query}"
    with pytest.raises(WebSocketDisconnect) as refused, api.client.websocket_connect(path) as ws:
        ws.receive_json()
    assert refused.value.code == code


def test_websocket_unknown_conversation_and_missing_scope(api: Api) -> None:
    unknown = "/v1/conversations/cnv_missing/ws"
    with (
        pytest.raises(WebSocketDisconnect) as missing,
        api.client.websocket_connect(unknown, headers=api.headers()) as ws,
    ):
        ws.receive_json()
    assert missing.value.code == 4404
    conversation = start(api, create_agent(api, ScriptedModel([], name=MODEL)))
    reader = api.client.post(
        "/v1/keys",
        json={"name": "agents-only", "kind": "service", "scopes": ["agents:read"]},
        headers=api.headers(),
    ).json()["secret"]
    path = f"/v1/conversations/{conversation['id']}/ws"
    with (
        pytest.raises(WebSocketDisconnect) as denied,
        api.client.websocket_connect(path, headers=api.headers(reader)) as ws,
    ):
        ws.receive_json()
    assert denied.value.code == 4403
    _, stranger = api.new_workspace("Elsewhere")
    with (
        pytest.raises(WebSocketDisconnect) as hidden,
        api.client.websocket_connect(path, headers=api.headers(stranger)) as ws,
    ):
        ws.receive_json()
    assert hidden.value.code == 4404


def test_the_key_is_read_from_header_subprotocol_or_query_and_leaves_no_trace() -> None:
    async def never() -> Any:
        raise AssertionError("not called")

    def socket(query: bytes, headers: list[tuple[bytes, bytes]], protocols: list[str]) -> Any:
        scope = {"type": "websocket", "path": "/v1/conversations/c/ws", "query_string": query,
                 "headers": headers, "subprotocols": protocols}  # fmt: skip
        return WebSocket(scope, never, never)

    by_query = socket(b"after=3&access_token=dpy_key_X_secret", [], [])
    assert credential(by_query) == "dpy_key_X_secret"
    assert by_query.scope["query_string"] == b"after=3"  # what the server would log
    by_header = socket(b"access_token=other", [(b"authorization", b"Bearer dpy_key_H_s")], [])
    assert credential(by_header) == "dpy_key_H_s"
    assert by_header.scope["query_string"] == b""
    by_protocol = socket(b"", [], ["deputy.v1", "bearer.dpy_key_P_s"])
    assert credential(by_protocol) == "dpy_key_P_s"
    assert credential(socket(b"", [], ["deputy.v1", "bearer."])) is None
