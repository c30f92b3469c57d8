"""The conversation WebSocket: `/v1/conversations/{id}/ws`.

Authentication: the `Authorization: Bearer <key>` header, or (for browsers, which cannot set
headers) the key as the `access_token` query parameter or as a `Sec-WebSocket-Protocol` value
`bearer.<key>`, offered together with `deputy.v1` (which the server then selects). The client
sends `{"type": "message", "text": ..., "client_message_id"?: ...}`; the server sends every
`ConversationEvent` as JSON (the stored entries after `?after=` when given, then live ones) and
errors as `{"type": "error", "error": {"code", "message"}}`, staying open after a bad message.
Close codes: 4401 no or bad key, 4403 not allowed, 4404 unknown conversation, 4400 a bad
`after`; 1000 when the conversation closes, 1013 when the client fell too far behind (reconnect
with `?after=<last seq seen>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from deputy.api.conversation_streams import follow_conversation
from deputy.domain import resources as r
from deputy.domain.errors import DeputyError, Unauthenticated
from deputy.domain.tenancy import Principal
from deputy.observability.context import note_workspace
from deputy.services import conversations as svc
from deputy.services.keys import authenticate
from deputy.services.platform import Platform

log = logging.getLogger("deputy.api.ws")
router = APIRouter()

SUBPROTOCOL: Final = "deputy.v1"
BEARER_PROTOCOL_PREFIX: Final = "bearer."
TOKEN_PARAMETER: Final = "access_token"  # noqa: S105 (a parameter name, not a secret)
CLOSE_CODES: Final[dict[str, int]] = {
    "unauthenticated": 4401,
    "permission_denied": 4403,
    "not_found": 4404,
}
MAX_SEQ = 2**31 - 1
BAD_REQUEST_CLOSE = 4400
FELL_BEHIND_CLOSE = 1013  # "try again later": reconnect with ?after=<last seq seen>

# Turns a client started run on after it disconnects; keep a reference so none is dropped.
_running_turns: set[asyncio.Task[None]] = set()


def _take_query_token(websocket: WebSocket) -> str | None:
    pairs = parse_qsl(websocket.scope.get("query_string", b"").decode("latin-1"))
    token = next((value for name, value in pairs if name == TOKEN_PARAMETER), None)
    if token is not None:
        kept = [(name, value) for name, value in pairs if name != TOKEN_PARAMETER]
        websocket.scope["query_string"] = urlencode(kept).encode("latin-1")
    return token


def credential(websocket: WebSocket) -> str | None:
    """The API key of a WebSocket request: the `Authorization` header, a `bearer.<key>`
    subprotocol, or the `access_token` query parameter (which it removes from the request's
    query string, so no log line of the request can show it)."""
    query_token = _take_query_token(websocket)
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(BEARER_PROTOCOL_PREFIX) and len(protocol) > len(
            BEARER_PROTOCOL_PREFIX
        ):
            return str(protocol[len(BEARER_PROTOCOL_PREFIX) :])
    return query_token


def _after(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > MAX_SEQ:
        raise _BadAfter
    return int(raw)


class _BadAfter(Exception):
    """`?after=` is not a seq."""


async def _open(platform: Platform, token: str | None, conversation_id: str) -> Principal:
    """Authenticate and find the conversation; a DeputyError says which close code to use."""
    if token is None:
        raise Unauthenticated("an API key is required")
    principal = await platform.db.run(authenticate, platform, token)
    note_workspace(principal.workspace_id)
    await platform.db.run(svc.get_conversation, platform, principal, conversation_id)
    return principal


class _Session:
    """One connected client. Sends are serialised; each message runs its turn as a task of its
    own, so a turn the client started completes even when the client disconnects."""

    def __init__(
        self,
        websocket: WebSocket,
        send_turn: Callable[[r.MessageCreate], Awaitable[r.TurnResult]],
    ) -> None:
        self.websocket = websocket
        self.send_turn = send_turn
        self.lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_text(json.dumps(payload))

    async def error(self, code: str, message: str) -> None:
        await self.send({"type": "error", "error": {"code": code, "message": message}})

    async def run_turn(self, body: r.MessageCreate) -> None:
        try:
            await self.send_turn(body)
        except DeputyError as failure:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.error(failure.code, failure.message)
        except Exception:
            log.exception("a turn started over the WebSocket failed")
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.error("internal_error", "the turn failed; see the transcript")

    async def receive(self) -> None:
        """Read client messages until it disconnects."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            body = await self._message(message.get("text"))
            if body is not None:
                task = asyncio.create_task(self.run_turn(body))
                _running_turns.add(task)
                task.add_done_callback(_running_turns.discard)

    async def _message(self, text: str | None) -> r.MessageCreate | None:
        """The customer message in a client frame, or None after answering with an error."""
        try:
            data = json.loads(text) if text is not None else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("type") != "message":
            await self.error(
                "invalid_request", 'expected a JSON text frame {"type": "message", "text": ...}'
            )
            return None
        try:
            return r.MessageCreate.model_validate({k: v for k, v in data.items() if k != "type"})
        except ValidationError as invalid:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors()
            )
            await self.error("validation_error", problems)
            return None

    async def forward(
        self, platform: Platform, principal: Principal, conversation_id: str, after: int | None
    ) -> bool:
        """Send the conversation's events; True when it ended because the conversation
        closed, False when this client fell too far behind."""
        closed = False
        async for event in follow_conversation(platform, principal, conversation_id, after=after):
            if event is not None:
                await self.send(event.model_dump(mode="json"))
                closed = event.type == "status" and (
                    event.conversation is not None and event.conversation.status == "closed"
                )
        return closed


@router.websocket("/conversations/{conversation_id}/ws")
async def conversation_socket(websocket: WebSocket, conversation_id: str) -> None:
    platform: Platform = websocket.app.state.platform
    protocols = websocket.scope.get("subprotocols", [])
    token = credential(websocket)  # first: it takes the key out of the logged query string
    try:
        after = _after(websocket)
        principal = await _open(platform, token, conversation_id)
    except DeputyError as refusal:
        await _refuse(websocket, CLOSE_CODES.get(refusal.code, BAD_REQUEST_CLOSE), refusal.message)
        return
    except _BadAfter:
        await _refuse(websocket, BAD_REQUEST_CLOSE, f"`after` must be an integer 0-{MAX_SEQ}")
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in protocols else None)

    async def send_turn(body: r.MessageCreate) -> r.TurnResult:
        return await svc.post_message(platform, principal, conversation_id, body)

    session = _Session(websocket, send_turn)
    ended: list[bool] = []  # whether the event stream ended (and why); empty: the client left

    async def forward() -> None:
        ended.append(await session.forward(platform, principal, conversation_id, after))
        group.cancel_scope.cancel()

    async def receive() -> None:
        await session.receive()
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(forward)
        group.start_soon(receive)
    if ended:
        code, reason = (
            (1000, "the conversation is closed")
            if ended[0]
            else (FELL_BEHIND_CLOSE, "too far behind: reconnect with ?after=<last seq>")
        )
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code, reason=reason)


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with `code`: a close code reaches the client only after the
    handshake (a refused handshake is a bare HTTP 403)."""
    await websocket.accept()
    await websocket.close(code=code, reason=reason[:120])
