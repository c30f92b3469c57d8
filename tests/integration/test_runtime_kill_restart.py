"""Acceptance: the Deputy server is killed (SIGKILL, a real process) in the middle of a turn that
has just sent an irreversible call to the retail backend, is restarted on the same database, and
the call turns out to have happened exactly once: the resumed turn re-sends it under the same
idempotency key, the backend answers from its idempotency cache, and the conversation goes on.

The model is a scripted OpenAI-compatible endpoint on 127.0.0.1 (the server process reaches it
like any model server); the retail backend holds its answer to the exchange until the server is
dead, so the kill lands after the request was executed and before its outcome was recorded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from examples.retail.rest import create_app
from examples.retail.server import serve_app
from examples.retail.store import RetailStore
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.integration.retail_agent import (
    DELIVERED,
    EMAIL,
    HOSE,
    OTHER_HOSE,
    PAYPAL,
    RETAIL_SPEC,
)
from tests.integration.retail_backend import CountingBackend
from tests.integration.scripted_openai import scripted_openai
from tests.processes import KEY, START_TIMEOUT, ServerProcess, base_env, deputy_server

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

LEASE_SECONDS = 2.0
EXCHANGE = "exchange_delivered_order_items"


@dataclass
class HeldAnswer:
    """ASGI middleware: the first exchange request is executed by the backend, then its answer
    is held until `release` is set (the caller is dead by then)."""

    app: ASGIApp
    executed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: bool = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hold = scope["type"] == "http" and scope["path"] == f"/tools/{EXCHANGE}" and not self.held
        if not hold:
            await self.app(scope, receive, send)
            return
        self.held = True
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        self.executed.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        for message in answer:
            try:
                await send(message)
            except OSError:
                return


def decide(messages: list[dict[str, Any]], tools: list[str]) -> Any:
    called = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
    if "find_user_id_by_email" not in called:
        return ("find_user_id_by_email", {"email": EMAIL})
    if EXCHANGE not in called:
        arguments = {
            "order_id": DELIVERED,
            "item_ids": [HOSE],
            "new_item_ids": [OTHER_HOSE],
            "payment_method_id": PAYPAL,
        }
        return (EXCHANGE, arguments)
    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    if "thank" in str(last_user).lower():
        return "You're welcome. Anything else?"
    return f"Done: the exchange for order {DELIVERED} is requested."


@contextmanager
def retail_backend() -> Iterator[tuple[str, CountingBackend, HeldAnswer, RetailStore, Any]]:
    store = RetailStore()
    app = create_app(store, None, honour_idempotency_keys=True)
    counting = CountingBackend(app)
    held = HeldAnswer(counting)
    with serve_app(held) as url:
        yield url, counting, held, store, app.openapi()


class Client:
    def __init__(self, server: ServerProcess, key: str) -> None:
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/conversations/{conversation_id}/transcript")
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries


def test_a_kill_during_an_irreversible_call_does_not_repeat_it(
    tmp_path: Path, database_url: str
) -> None:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_DATABASE_URL=database_url,
        DEPUTY_TURN_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    spec = yaml.safe_load(RETAIL_SPEC.read_text())
    spec["mode"] = "reasoning"
    with (
        retail_backend() as (retail_url, backend, held, store, document),
        scripted_openai(decide) as (model_url, model),
    ):
        with deputy_server("serve", env, tmp_path / "first.log") as first:
            key = first.read_until(KEY, START_TIMEOUT).group(0)
            first.wait_healthy()
            api = Client(first, key)
            api.post("/v1/model-endpoints", {"name": "scripted", "base_url": model_url})
            api.post(
                "/v1/tool-sources",
                {"name": "retail", "kind": "openapi", "document": document, "base_url": retail_url},
            )
            agent = api.post("/v1/agents", {"name": "retail"})
            patched = api.http.patch(
                f"/v1/agents/{agent['id']}", json={"model": "openai-compatible:scripted/m"}
            )
            assert patched.status_code == 200, patched.text
            api.post(f"/v1/agents/{agent['id']}/versions", {"spec": spec})
            cid = api.post("/v1/conversations", {"agent_id": agent["id"]})["id"]
            asked = api.post(
                f"/v1/conversations/{cid}/messages",
                {"text": f"Please exchange the hose of {DELIVERED} for the 100ft one. {EMAIL}"},
            )
            assert EXCHANGE in asked["reply"]["text"]

            def confirm() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                    api.http.post(f"/v1/conversations/{cid}/messages", json={"text": "yes"})

            confirming = threading.Thread(target=confirm, daemon=True)
            confirming.start()
            assert held.executed.wait(30), "the exchange never reached the backend"
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
            held.release.set()
            confirming.join(timeout=10)
            api.http.close()

        assert backend.ran(EXCHANGE) == 1
        assert store.snapshot()["orders"][DELIVERED]["status"] == "exchange requested"
        time.sleep(LEASE_SECONDS + 0.5)  # the dead process's lease on the conversation expires

        with deputy_server("serve", env, tmp_path / "second.log") as second:
            second.wait_healthy()
            api = Client(second, key)
            done = f"exchange for order {DELIVERED} is requested"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                replies = [e["text"] for e in api.transcript(cid) if e["kind"] == "agent_message"]
                if done in replies[-1]:
                    break
                time.sleep(0.2)
            assert done in replies[-1], "the interrupted turn was not resumed at startup"

            exchanges = [
                e["data"]
                for e in api.transcript(cid)
                if e["kind"] == "tool_call" and e["data"]["tool"] == EXCHANGE
            ]
            assert [c["status"] for c in exchanges] == ["refused", "succeeded"]
            assert backend.arrived(EXCHANGE) == 2  # the resumed turn re-sent it...
            assert backend.ran(EXCHANGE) == 1  # ...and the backend did not run it again

            after = api.post(f"/v1/conversations/{cid}/messages", {"text": "Thanks!"})
            assert after["reply"]["text"] == "You're welcome. Anything else?"
            assert after["conversation"]["status"] == "active"
            api.http.close()
    assert model.requests, "the model endpoint was used"
