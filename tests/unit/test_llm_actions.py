"""The action adapter: tools as a oneOf schema, results mapped to native-looking tool calls."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import jsonschema_rs
import pytest

from deputy.llm.actions import ActionModel, action_format, rewrite_history, with_tools
from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.structured import StructuredModel
from deputy.llm.types import (
    Message,
    ModelCapabilities,
    ModelRequest,
    ToolCall,
    ToolDefinition,
)
from deputy.testing import ScriptedModel, structured

NO_TOOLS = ModelCapabilities(native_tools=False, native_json_schema=True, context_tokens=4096)
LOOKUP = ToolDefinition(
    "find_order",
    "Find an order by id",
    {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
)
REFUND = ToolDefinition(
    "refund",
    "Refund items",
    {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "required": ["items"],
        "$defs": {"Item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
    },
)


def _local(*answers: Any) -> ScriptedModel:
    return ScriptedModel(list(answers), name="local:tiny", capabilities=NO_TOOLS)


def _request(**kwargs: Any) -> ModelRequest:
    return ModelRequest(
        messages=(Message.system("You are a shop assistant."), Message.user("Where is #W1?")),
        tools=(LOOKUP, REFUND),
        **kwargs,
    )


def test_action_schema_accepts_each_tool_and_the_reply() -> None:
    fmt = action_format([LOOKUP, REFUND])
    validator = jsonschema_rs.validator_for(fmt.schema)
    assert validator.is_valid({"action": "find_order", "args": {"order_id": "#W1"}})
    assert validator.is_valid({"action": "refund", "args": {"items": [{"sku": "a"}]}})
    assert validator.is_valid({"action": "reply", "text": "Hello"})
    assert not validator.is_valid({"action": "find_order", "args": {}})
    assert not validator.is_valid({"action": "refund", "args": {"items": [{"sku": 1}]}})
    assert not validator.is_valid({"action": "delete_everything", "args": {}})
    assert fmt.schema["$defs"]["t1_Item"]["properties"]["sku"]["type"] == "string"


def test_required_tool_choice_leaves_out_the_reply() -> None:
    fmt = action_format([LOOKUP], require_tool=True)
    validator = jsonschema_rs.validator_for(fmt.schema)
    assert not validator.is_valid({"action": "reply", "text": "no"})
    assert "must use one of the tools" in fmt.instructions


def test_reply_action_name_avoids_a_tool_called_reply() -> None:
    tool = ToolDefinition("reply", "send an email reply", {"type": "object"})
    fmt = action_format([tool])
    assert fmt.reply_action == "reply_to_user"


def test_tool_call_comes_back_like_a_native_one() -> None:
    inner = _local(structured({"action": "find_order", "args": {"order_id": "#W1"}}))
    model = ActionModel(inner, id_factory=lambda: "call_1")
    response = asyncio.run(model.request(_request()))
    assert response.tool_calls == (ToolCall("call_1", "find_order", {"order_id": "#W1"}),)
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
    sent = inner.last_request
    assert sent.tools == ()
    assert sent.response_schema is not None
    assert sent.schema_name == "action"
    assert sent.messages[0].role == "system"
    assert "find_order" in sent.messages[0].content
    assert sent.messages[0].content.startswith("You are a shop assistant.")


def test_reply_comes_back_as_text() -> None:
    inner = _local(structured({"action": "reply", "text": "It ships today."}))
    response = asyncio.run(ActionModel(inner).request(_request()))
    assert response.text == "It ships today."
    assert response.tool_calls == ()


def test_reply_follows_the_requests_own_schema() -> None:
    schema = {"type": "object", "properties": {"eta": {"type": "string"}}, "required": ["eta"]}
    inner = _local(structured({"action": "reply", "response": {"eta": "today"}}))
    response = asyncio.run(ActionModel(inner).request(_request(response_schema=schema)))
    assert response.parsed == {"eta": "today"}
    assert json.loads(response.text) == {"eta": "today"}


def test_history_with_tool_calls_is_rewritten_for_the_model() -> None:
    call = ToolCall("call_9", "find_order", {"order_id": "#W1"})
    messages = (
        Message.user("Where is #W1?"),
        Message.assistant(tool_calls=(call,)),
        Message.tool_result("call_9", '{"status": "shipped"}'),
        Message.user("And when does it arrive?"),
    )
    rewritten = rewrite_history(messages, "TOOLS")
    assert [m.role for m in rewritten] == ["system", "user", "assistant", "user"]
    assert json.loads(rewritten[2].content) == {"action": "find_order", "args": {"order_id": "#W1"}}
    assert "Result of find_order" in rewritten[3].content
    assert "And when does it arrive?" in rewritten[3].content
    assert all(m.tool_calls == () and m.tool_call_id is None for m in rewritten)


def test_malformed_action_is_retried_by_the_structured_layer() -> None:
    inner = _local(
        structured({"action": "find_order", "args": {}}),
        structured({"action": "find_order", "args": {"order_id": "#W2"}}),
    )
    model = with_tools(inner)
    response = asyncio.run(model.request(_request()))
    assert response.tool_calls[0].arguments == {"order_id": "#W2"}
    repair = inner.requests[1].messages[-1].content
    assert "$.args" in repair
    assert "order_id" in repair  # the closest alternative's error, not "invalid under oneOf"
    inner.assert_all_used()


def test_unrecoverable_action_is_model_output_invalid() -> None:
    inner = _local(structured({"action": "explode"}))
    with pytest.raises(ModelOutputInvalid):
        asyncio.run(ActionModel(inner).request(_request()))


def test_tool_choice_none_sends_no_tools() -> None:
    inner = _local("plain answer")
    response = asyncio.run(ActionModel(inner).request(_request(tool_choice="none")))
    assert response.text == "plain answer"
    assert inner.last_request.tools == ()
    assert inner.last_request.response_schema is None


def test_with_tools_keeps_native_models_and_wraps_the_others() -> None:
    native = ScriptedModel()
    assert with_tools(native) is native
    wrapped = with_tools(_local())
    assert isinstance(wrapped, ActionModel)
    assert isinstance(wrapped.inner, StructuredModel)
    assert with_tools(wrapped) is wrapped


def test_stream_with_tools_yields_the_mapped_response() -> None:
    inner = _local(structured({"action": "reply", "text": "hi there"}))

    async def collect() -> list[Any]:
        return [c async for c in with_tools(inner).stream(_request())]

    chunks = asyncio.run(collect())
    assert chunks[0].text == "hi there"
    assert chunks[-1].response.text == "hi there"


def test_read_only_schemas_are_accepted() -> None:
    from types import MappingProxyType

    params = MappingProxyType(
        {"type": "object", "properties": MappingProxyType({"q": {"type": "string"}})}
    )
    fmt = action_format([ToolDefinition("search", "Search", params)])
    assert jsonschema_rs.validator_for(fmt.schema).is_valid(
        {"action": "search", "args": {"q": "x"}}
    )
    assert '"q"' in fmt.instructions


def test_after_tool_use_a_reply_is_still_decoded_as_the_reply_action() -> None:
    """A model shown action JSON in its history answers in that format; with tool_choice
    "none" the reply must still be constrained to (and decoded from) the reply action."""
    inner = _local(structured({"action": "reply", "text": "It ships tomorrow."}))
    call = ToolCall(id="call_1", name="find_order", arguments={"order_id": "#W1"})
    history = (
        Message.user("Weather in Paris?"),
        Message.assistant(tool_calls=(call,)),
        Message.tool_result("call_1", "sunny"),
    )
    request = _request(tool_choice="none")
    response = asyncio.run(ActionModel(inner).request(replace(request, messages=history)))
    assert response.text == "It ships tomorrow."
    assert not response.tool_calls
    schema = inner.last_request.response_schema
    assert schema is not None and schema["properties"]["action"] == {"const": "reply"}
