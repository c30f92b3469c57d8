"""Structured output: caps, parse-and-validate, bounded repair retries, clear failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deputy.llm.errors import ModelError, ModelOutputInvalid
from deputy.llm.structured import (
    StructuredModel,
    StructuredPolicy,
    cap_schema,
    parse_json,
    schema_errors,
)
from deputy.llm.types import Message, ModelRequest, Usage
from deputy.testing import ScriptedModel, reply, tool_call

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^#W[0-9]+$"},
        "email": {"type": ["string", "null"]},
        "reason": {"enum": ["refund", "exchange"]},
    },
    "required": ["order_id", "reason"],
    "additionalProperties": False,
}


def _request(**kwargs: Any) -> ModelRequest:
    return ModelRequest(
        messages=(Message.user("extract the order"),), response_schema=SCHEMA, **kwargs
    )


def test_cap_schema_bounds_every_unbounded_string() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "maxLength": 5},
            "c": {"type": "array", "items": {"type": ["string", "null"]}},
            "d": {"type": "string", "enum": ["x"]},
        },
        "$defs": {"E": {"type": "string"}},
    }
    capped = cap_schema(schema, 100)
    assert capped["properties"]["a"]["maxLength"] == 100
    assert capped["properties"]["b"]["maxLength"] == 5
    assert capped["properties"]["c"]["items"]["maxLength"] == 100
    assert "maxLength" not in capped["properties"]["d"]
    assert capped["$defs"]["E"]["maxLength"] == 100
    assert "maxLength" not in schema["properties"]["a"]  # the caller's schema is untouched
    assert cap_schema(schema, None) == schema


def test_parse_json_tolerates_a_code_fence() -> None:
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('  {"a": [1, 2]}  ') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="Expecting value"):
        parse_json("not json")


def test_schema_errors_name_the_path() -> None:
    errors = schema_errors(SCHEMA, {"order_id": "W1", "reason": "other", "x": 1})
    assert any(e.startswith("$.order_id:") for e in errors)
    assert any(e.startswith("$.reason:") for e in errors)
    assert any("x" in e for e in errors)
    assert schema_errors(SCHEMA, {"order_id": "#W12", "reason": "refund"}) == []


def test_valid_reply_is_parsed_and_request_is_capped() -> None:
    inner = ScriptedModel(['{"order_id": "#W123", "reason": "refund", "email": null}'])
    model = StructuredModel(inner, StructuredPolicy(max_string_length=50, max_tokens=300))
    response = asyncio.run(model.request(_request()))
    assert response.parsed == {"order_id": "#W123", "reason": "refund", "email": None}
    sent = inner.last_request
    assert sent.max_tokens == 300
    assert sent.response_schema is not None
    assert sent.response_schema["properties"]["order_id"]["maxLength"] == 50


def test_invalid_reply_is_retried_showing_the_model_its_error() -> None:
    inner = ScriptedModel(
        [
            reply('{"order_id": "W123", "reason": "refund"}', usage=Usage(10, 5)),
            reply('{"order_id": "#W123", "reason": "refund"}', usage=Usage(20, 5)),
        ]
    )
    response = asyncio.run(StructuredModel(inner).request(_request(max_tokens=64)))
    assert response.parsed == {"order_id": "#W123", "reason": "refund"}
    assert response.usage == Usage(30, 10)  # both attempts count
    retry = inner.requests[1]
    assert retry.max_tokens == 64
    assert retry.messages[-2] == Message.assistant('{"order_id": "W123", "reason": "refund"}')
    assert retry.messages[-1].role == "user"
    assert "$.order_id" in retry.messages[-1].content
    inner.assert_all_used()


def test_model_that_cannot_comply_gets_model_output_invalid() -> None:
    inner = ScriptedModel(["sorry, no JSON", "{}", "still no"])
    with pytest.raises(ModelOutputInvalid) as caught:
        asyncio.run(StructuredModel(inner, StructuredPolicy(max_attempts=3)).request(_request()))
    assert caught.value.details["attempts"] == 3
    assert caught.value.details["last_output"] == "still no"
    assert "not valid JSON" in caught.value.message
    inner.assert_all_used()


def test_truncated_reply_is_told_to_be_shorter() -> None:
    from deputy.llm.types import ModelResponse

    inner = ScriptedModel(
        [
            ModelResponse(model="", text='{"order_id": "#W1', finish_reason="length"),
            '{"order_id": "#W1", "reason": "exchange"}',
        ]
    )
    asyncio.run(StructuredModel(inner).request(_request()))
    assert "cut off" in inner.requests[1].messages[-1].content


def test_tool_calls_pass_through_unvalidated() -> None:
    inner = ScriptedModel([tool_call("lookup_order", {"id": "#W1"})])
    response = asyncio.run(StructuredModel(inner).request(_request()))
    assert response.tool_calls[0].name == "lookup_order"


def test_requests_without_schema_pass_through() -> None:
    inner = ScriptedModel(["free text"])
    request = ModelRequest(messages=(Message.user("hi"),))
    assert asyncio.run(StructuredModel(inner).request(request)).text == "free text"
    assert inner.last_request is request


def test_invalid_schema_fails_before_any_call() -> None:
    inner = ScriptedModel()
    request = ModelRequest(messages=(Message.user("x"),), response_schema={"type": "nope"})
    with pytest.raises(ModelError, match="not a valid JSON Schema"):
        asyncio.run(StructuredModel(inner).request(request))
    assert inner.requests == []


def test_stream_with_schema_sends_the_validated_reply() -> None:
    inner = ScriptedModel(["bad", '{"order_id": "#W9", "reason": "refund"}'])

    async def collect() -> list[Any]:
        return [c async for c in StructuredModel(inner).stream(_request())]

    chunks = asyncio.run(collect())
    assert chunks[0].text == '{"order_id": "#W9", "reason": "refund"}'
    assert chunks[-1].response is not None
    assert chunks[-1].response.parsed == {"order_id": "#W9", "reason": "refund"}
