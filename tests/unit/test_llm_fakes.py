"""The public fakes in deputy.testing behave like models: queue, function, streaming, errors."""

from __future__ import annotations

import asyncio

import pytest

from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import Message, Model, ModelRequest, ModelResponse, StreamChunk
from deputy.testing import FunctionModel, ScriptedModel, reply, structured, tool_call


def _request(text: str = "hi") -> ModelRequest:
    return ModelRequest(messages=(Message.user(text),))


async def _collect(model: Model, request: ModelRequest) -> list[StreamChunk]:
    return [chunk async for chunk in model.stream(request)]


def test_scripted_model_answers_in_order_and_records_requests() -> None:
    model = ScriptedModel(["first", tool_call("lookup", {"q": "x"}), structured({"a": 1})])

    async def scenario() -> list[ModelResponse]:
        return [await model.request(_request(str(i))) for i in range(3)]

    first, second, third = asyncio.run(scenario())
    assert first.text == "first"
    assert first.model == "test:scripted"
    assert second.tool_calls[0].name == "lookup"
    assert second.tool_calls[0].arguments == {"q": "x"}
    assert second.finish_reason == "tool_calls"
    assert third.parsed == {"a": 1}
    assert [r.messages[0].content for r in model.requests] == ["0", "1", "2"]
    model.assert_all_used()


def test_scripted_model_raises_scripted_errors() -> None:
    model = ScriptedModel([ModelUnavailable("down", retry_after=3)])
    with pytest.raises(ModelUnavailable) as caught:
        asyncio.run(model.request(_request()))
    assert caught.value.retry_after == 3


def test_scripted_model_reports_unused_and_exhausted_answers() -> None:
    model = ScriptedModel(["one", "two"])
    asyncio.run(model.request(_request()))
    with pytest.raises(AssertionError, match="1 unused scripted answer"):
        model.assert_all_used()
    asyncio.run(model.request(_request()))
    with pytest.raises(AssertionError, match="no scripted answer left"):
        asyncio.run(model.request(_request()))


def test_scripted_model_streams_text_then_the_response() -> None:
    model = ScriptedModel([reply("hello there world")])
    chunks = asyncio.run(_collect(model, _request()))
    assert "".join(c.text for c in chunks) == "hello there world"
    assert len(chunks) == 4
    assert chunks[-1].response is not None
    assert chunks[-1].response.text == "hello there world"
    assert all(c.response is None for c in chunks[:-1])


def test_function_model_decides_from_the_request_sync_or_async() -> None:
    def echo(request: ModelRequest) -> str:
        return request.messages[-1].content.upper()

    async def slow_echo(request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(0)
        return reply(request.messages[-1].content[::-1])

    assert asyncio.run(FunctionModel(echo).request(_request("abc"))).text == "ABC"
    model = FunctionModel(slow_echo, name="test:rev")
    response = asyncio.run(model.request(_request("abc")))
    assert response.text == "cba"
    assert response.model == "test:rev"
    chunks = asyncio.run(_collect(model, _request("xyz")))
    assert chunks[-1].response is not None
    assert chunks[-1].response.text == "zyx"
    assert len(model.requests) == 2


def test_fakes_satisfy_the_model_protocol() -> None:
    assert isinstance(ScriptedModel(), Model)
    assert isinstance(FunctionModel(lambda r: "x"), Model)
