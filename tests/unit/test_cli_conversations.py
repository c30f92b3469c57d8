"""`deputy chat` and `deputy conversations`, run with typer's CliRunner against the real app in
process (through the SDK's HTTP client), and how transcript entries read in a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deputy.api.app import create_app
from deputy.cli.transcript import describe
from deputy.config import load_settings
from deputy.domain.resources import TranscriptEntry
from deputy.sdk import DeputyClient
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare
from deputy.testing import ScriptedModel
from tests.unit.test_cli import BASE, Cli, serve_fake

SPEC = {
    "name": "Support",
    "goal": "Answer order questions.",
    "channels": {"chat": {"greeting": "Hi! What can I do for you?"}},
}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        with SyncASGITransport(create_app(platform)) as in_process:
            yield Cli(
                httpx.MockTransport(in_process.handle_request),
                bootstrap.created.owner_key.secret,
                tmp_path,
                platform,
            )
    finally:
        platform.close()


def agent_on(cli: Cli, *answers: Any) -> tuple[str, ScriptedModel]:
    model = serve_fake(cli, *answers)
    with DeputyClient(BASE, cli.owner_key, transport=cli.transport) as sdk:
        agent = sdk.agents.create("support")
        sdk.agents.versions.create(agent.id, SPEC)
        sdk.agents.update(agent.id, model=model.name)
    return agent.id, model


def test_chat_with_messages_prints_the_replies(cli: Cli) -> None:
    agent_id, model = agent_on(cli, "Your order ships tomorrow. Anything else?", "Bye now!")
    result = cli.run("chat", agent_id, "-m", "Where is my order?", "-m", "No, thanks")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Hi! What can I do for you?",
        "Your order ships tomorrow. Anything else?",
        "Bye now!",
    ]
    assert "Conversation cnv_" in result.stderr
    model.assert_all_used()


def test_chat_interactive_until_quit(cli: Cli) -> None:
    agent_id, model = agent_on(cli, "It ships tomorrow.")
    result = cli.run("chat", agent_id, input="Where is my order?\n\n/quit\nnever sent\n")
    assert result.exit_code == 0, result.output
    assert "agent> It ships tomorrow." in result.stdout.splitlines()
    assert "never sent" not in result.stdout
    model.assert_all_used()  # one turn: the blank line and what follows /quit were not sent


def test_chat_reports_a_handoff_and_an_unknown_agent(cli: Cli) -> None:
    agent_id, _ = agent_on(cli)
    result = cli.run("chat", agent_id, "-m", "I want to talk to a human")
    assert result.exit_code == 0, result.output
    assert "waiting for a human (queue support)" in result.stderr
    missing = cli.run("chat", "agt_missing", "-m", "hello")
    assert missing.exit_code == 4 and "not_found" in missing.stderr


def test_conversations_list_and_show(cli: Cli) -> None:
    agent_id, _ = agent_on(cli, "It ships tomorrow.")
    assert cli.run("chat", agent_id, "-m", "Where is my order?").exit_code == 0
    listed = cli.json("conversations", "list", "--agent", agent_id)
    (conversation,) = listed["data"]
    assert conversation["status"] == "active"
    assert cli.json("conversations", "list", "--status", "closed")["data"] == []

    shown = cli.run("conversations", "show", conversation["id"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert any("customer" in line and "Where is my order?" in line for line in lines)
    assert any("agent" in line and "It ships tomorrow." in line for line in lines)
    assert any("guardrail" in line and "input check: allow" in line for line in lines)
    assert not any("model (" in line for line in lines)  # model steps only with --steps
    steps = cli.run("conversations", "show", conversation["id"], "--steps")
    assert "model (reasoning)" in steps.stdout
    as_json = cli.json("conversations", "show", conversation["id"])
    assert [e["kind"] for e in as_json["entries"]][:2] == ["agent_message", "customer_message"]


def entry(kind: Any, data: dict[str, Any], text: str = "") -> TranscriptEntry:
    return TranscriptEntry(
        id="ent_1",
        seq=1,
        turn_id="turn_1",
        kind=kind,
        text=text,
        data=data,
        agent_id="agt_1",
        created_at=datetime.now(UTC),
    )


def test_tool_calls_and_guardrail_decisions_read_plainly() -> None:
    ok = entry(
        "tool_call",
        {"tool": "get_order", "arguments": {"order_id": "#W1"}, "status": "succeeded",
         "output": {"status": "shipped"}},
    )  # fmt: skip
    assert describe(ok) == 'get_order(order_id="#W1") → succeeded {"status": "shipped"}'
    refused = entry(
        "tool_call",
        {"tool": "cancel_order", "arguments": {"order_id": "#W1"}, "status": "refused",
         "code": "confirmation_required", "message": "ask the customer first", "replayed": True},
    )  # fmt: skip
    assert describe(refused) == (
        'cancel_order(order_id="#W1") → refused (replayed) '
        "[confirmation_required: ask the customer first]"
    )
    guard = entry(
        "guardrail",
        {"stage": "output", "action": "mask", "decisions": [
            {"check": "pii.other_people", "verdict": "mask", "reason": "an email address"},
            {"check": "promises", "verdict": "allow", "reason": "no promise"},
        ]},
    )  # fmt: skip
    assert describe(guard) == "output check: mask\n  pii.other_people: mask: an email address"
    assert describe(entry("handoff", {"queue": "billing"})) == '{"queue": "billing"}'
    assert describe(entry("agent_message", {}, "Hello")) == "Hello"


def test_chat_reports_a_failed_turn_and_exits_1(cli: Cli) -> None:
    agent_id, _ = agent_on(cli, RuntimeError("the fake model broke"))
    result = cli.run("chat", agent_id, "-m", "Where is my order?")
    assert result.exit_code == 1, result.output
    assert "error: the turn failed" in result.stderr
