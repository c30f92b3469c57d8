"""Tool calling on the embedded model, end to end through the registry: the local model has no
native tool calls, so the registry puts the action adapter in front of it; the caller gets
the same ToolCall objects a hosted provider returns, decoded under a grammar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deputy.llm.local.provider import LocalModels
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Message, ModelRequest, ToolDefinition
from deputy.testing import CollectingUsageSink

pytestmark = pytest.mark.integration
pytest.importorskip("xllamacpp", reason="the local model extra (xllamacpp) is not installed")

MODEL = "local:qwen2.5-coder-0.5b"
ORDER_STATUS = ToolDefinition(
    "get_order_status",
    "Look up the delivery status of one order by its id (like #W1234567).",
    {
        "type": "object",
        "properties": {"order_id": {"type": "string", "maxLength": 12}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
)


def test_local_model_calls_a_tool_then_answers(tmp_path: Path) -> None:
    local = LocalModels(tmp_path / "models")
    if local.status(MODEL).state == "not_installed":
        pytest.skip(f"{MODEL} is not installed: {local.status(MODEL).install_command}")
    sink = CollectingUsageSink()
    registry = ModelRegistry(local=local, usage_sink=sink)
    model = registry.get(MODEL)
    ask = ModelRequest(
        messages=(
            Message.system("You are a retail support agent. Use tools to look things up."),
            Message.user("Where is my order #W2378156? It has not arrived."),
        ),
        tools=(ORDER_STATUS,),
        tool_choice="required",
        max_tokens=60,
    )

    async def scenario() -> tuple[object, object]:
        first = await model.request(ask)
        (call,) = first.tool_calls
        follow_up = ModelRequest(
            messages=(
                *ask.messages,
                Message.assistant(tool_calls=first.tool_calls),
                Message.tool_result(call.id, '{"status": "shipped", "eta": "tomorrow"}'),
            ),
            tools=(ORDER_STATUS,),
            tool_choice="none",
            max_tokens=80,
        )
        second = await model.request(follow_up)
        await registry.aclose()
        return first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        local.close()
    (call,) = first.tool_calls  # type: ignore[attr-defined]
    assert call.name == "get_order_status"
    assert call.arguments["order_id"].lstrip("#") == "W2378156"
    assert first.finish_reason == "tool_calls"  # type: ignore[attr-defined]
    answer = second.text.lower()  # type: ignore[attr-defined]
    assert "shipped" in answer or "tomorrow" in answer  # it used the tool's result
    assert not second.tool_calls  # type: ignore[attr-defined]
    assert [event.model for event in sink.events] == [MODEL, MODEL]
    assert all(event.output_tokens > 0 for event in sink.events)
