"""The OpenAI protocol mapping: which requests are refused, and how a resent history reduces to
the thread key that finds its conversation again."""

from __future__ import annotations

from typing import Any

import pytest

from deputy.channels import openai_compat as oa
from deputy.domain.errors import InvalidRequest


def request(*messages: dict[str, Any], **fields: Any) -> oa.ChatCompletionRequest:
    return oa.ChatCompletionRequest.model_validate(
        {"model": "deputy/echo", "messages": list(messages), **fields}
    )


def user(text: Any) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def key_of(*messages: dict[str, Any], user_id: str | None = None) -> str:
    return oa.thread_key("key_1", "agt_1", user_id, oa.exchange(request(*messages)).prior)


def test_the_next_request_carries_the_key_the_answer_stored() -> None:
    first = oa.exchange(request({"role": "system", "content": "Be brief."}, user("Hello  there")))
    assert first.prior == () and first.text == "Hello  there"
    stored = oa.thread_key("key_1", "agt_1", None, oa.next_turns(first.prior, first.text, True))
    # The client resends the history: assistant text (streamed, masked or trimmed), system
    # prompts and whitespace do not matter; the customer's words and the answers' places do.
    assert key_of(user("Hello there"), assistant("Echo: Hello there"), user("Next")) == stored
    assert key_of(user(" Hello\nthere "), assistant("anything"), user("Next")) == stored
    assert (
        key_of(
            {"role": "developer", "content": "x"},
            user([{"type": "text", "text": "Hello there"}]),
            assistant([{"type": "text", "text": "Echo"}]),
            user("Next"),
        )
        == stored
    )
    assert key_of(user("Hello there"), user("Next")) != stored  # no answer in between
    assert key_of(user("Hello there!"), assistant("a"), user("Next")) != stored
    assert key_of(user("Hello there"), assistant("a"), user("Next"), user_id="ada") != stored
    assert oa.thread_key("key_2", "agt_1", None, first.prior) != oa.thread_key(
        "key_1", "agt_1", None, first.prior
    )


def test_a_turn_without_an_answer_expects_no_assistant_message() -> None:
    first = oa.exchange(request(user("Hi")))
    stored = oa.thread_key("k", "a", None, oa.next_turns(first.prior, first.text, False))
    assert oa.thread_key(
        "k", "a", None, oa.exchange(request(user("Hi"), user("Hello?"))).prior
    ) == (stored)
    # An empty assistant message (a client keeping the empty answer) changes nothing.
    with_empty = oa.exchange(request(user("Hi"), assistant(""), user("Hello?"))).prior
    assert oa.thread_key("k", "a", None, with_empty) == stored


@pytest.mark.parametrize(
    ("messages", "fields", "needle"),
    [
        ([assistant("hi")], {}, "last message must be the user's"),
        ([user("  ")], {}, "empty"),
        ([user(None)], {}, "empty"),
        ([user([{"type": "input_audio", "input_audio": {}}])], {}, "only text parts"),
        ([user("a"), {"role": "tool", "content": "42"}, user("b")], {}, "tools"),
        ([user("a")], {"tools": [{"type": "function"}]}, "tools"),
        ([user("a")], {"functions": [{"name": "f"}]}, "tools"),
        ([user("a")], {"tool_choice": "auto"}, "tools"),
        ([user("a")], {"n": 3}, "n=1"),
        ([user("a")], {"response_format": {"type": "json_schema"}}, "text"),
    ],
)
def test_requests_it_cannot_honour_are_refused(
    messages: list[dict[str, Any]], fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        oa.exchange(request(*messages, **fields))
    assert needle in refused.value.message


def test_settings_it_ignores_are_accepted() -> None:
    accepted = oa.exchange(
        request(
            user("a"),
            temperature=0.2,
            max_tokens=10,
            n=1,
            response_format={"type": "text"},
            seed=3,
        )
    )
    assert accepted.text == "a"


def test_bodies_have_openai_shapes() -> None:
    usage = oa.usage_object(7, 2)
    assert usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    done = oa.completion("chatcmpl-1", 5, "deputy/echo", "Hi", usage)
    assert done["object"] == "chat.completion"
    assert done["choices"][0]["message"] == {"role": "assistant", "content": "Hi", "refusal": None}
    piece = oa.chunk("chatcmpl-1", 5, "deputy/echo", {"content": "H"})
    assert piece["choices"][0]["delta"] == {"content": "H"} and "usage" not in piece
    last = oa.chunk("chatcmpl-1", 5, "deputy/echo", {}, usage=usage)
    assert last["choices"] == [] and last["usage"] == usage
    error = oa.error_object("not_found", "no such agent", details={"param": "model"})
    assert error["error"]["type"] == "not_found_error"
    assert (error["error"]["param"], error["error"]["code"]) == ("model", "not_found")
    assert oa.error_object("unauthenticated", "x")["error"]["type"] == "authentication_error"
    assert oa.agent_ref("deputy/echo") == "echo" and oa.agent_ref("agt_1") == "agt_1"
    assert oa.model_object("echo", 12.7)["id"] == "deputy/echo"
