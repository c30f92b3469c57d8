"""The SDK (sync and async, streaming included) and `deputy chat` in a process of its own,
against a real server (uvicorn on 127.0.0.1) whose agent runs on a scripted model."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from examples.retail.server import serve_app

from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.testing import ScriptedModel
from tests.integration.conftest import Api
from tests.integration.test_api_conversations import GREETING, MODEL, REPLY, create_agent
from tests.processes import COMMAND_TIMEOUT, REPO

pytestmark = pytest.mark.integration


def test_sdk_against_a_real_server(api: Api) -> None:
    model = ScriptedModel([REPLY, "Second answer.", "Async answer."], name=MODEL)
    agent_id = create_agent(api, model)
    with serve_app(api.client.app) as url:
        with DeputyClient(url, api.owner_key) as client:
            conversation = client.conversations.create(agent_id, metadata={"source": "sdk"})
            events = list(client.conversations.stream(conversation.id, "Where is my order?"))
            assert events[-1].type == "turn.completed"
            assert "".join(e.text or "" for e in events if e.type == "reply.delta") == REPLY
            turn = client.conversations.post_message(conversation.id, "And then?")
            assert turn.reply is not None and turn.reply.text == "Second answer."
            entries = list(client.conversations.iter_transcript(conversation.id, page_size=2))
            assert [e.seq for e in entries] == list(range(1, turn.conversation.last_seq + 1))
            assert client.conversations.get(conversation.id).last_seq == entries[-1].seq
            listed = client.conversations.list(agent_id=agent_id)
            assert [c.id for c in listed.data] == [conversation.id]
            assert client.queue.list().data == []

        async def talk() -> list[str]:
            async with AsyncDeputyClient(url, api.owner_key) as aclient:
                texts = [
                    event.text or ""
                    async for event in aclient.conversations.stream(conversation.id, "Async?")
                    if event.type == "reply.delta"
                ]
                closed = await aclient.conversations.close(conversation.id, outcome="resolved")
                assert closed.status == "closed"
                return texts

        assert "".join(asyncio.run(talk())) == "Async answer."
    model.assert_all_used()


def test_deputy_chat_against_a_real_server(api: Api, tmp_path: Any) -> None:
    model = ScriptedModel(["Hello there! How can I help?", "Goodbye!"], name=MODEL)
    agent_id = create_agent(api, model)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPUTY_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    with serve_app(api.client.app) as url:
        done = subprocess.run(
            [sys.executable, "-m", "deputy.cli.main", "--url", url, "--api-key",
             api.owner_key, "chat", agent_id, "-m", "hello", "-m", "bye"],
            env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [GREETING, "Hello there! How can I help?", "Goodbye!"]
    assert "deputy conversations show cnv_" in done.stderr
    model.assert_all_used()
