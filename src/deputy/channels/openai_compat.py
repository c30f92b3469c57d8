"""The OpenAI Chat Completions protocol, as Deputy speaks it: the request it accepts, how the
resent history of an OpenAI client maps to one Deputy conversation, and the bodies it answers
with (completions, stream chunks, errors). Pure data and functions; the service
(`deputy.services.openai_compat`) does the work.

Each deployed agent is a *model*, named `deputy/<agent name>` (its bare name and its id are
accepted too). The agent keeps its own persona, procedures and tools: the caller's `system`
and `developer` messages are not instructions to it (they are dropped, and untrusted text never
becomes a system prompt), `tools` / `functions` are refused, and sampling settings
(`temperature`, `max_tokens`...) are ignored because the agent's spec and model decide them.

Continuity: an OpenAI client sends the whole history every time. The conversation is the one
named by `metadata.conversation_id` (or the `X-Deputy-Conversation-Id` header) when given;
otherwise the history before the last user message is reduced to a *thread key* (a hash of the
key, the agent, `user` and the earlier user messages, each assistant message counting only as
"the agent answered"), and the open conversation that stored that key after its last turn
continues. Assistant text is left out on purpose: a streamed reply, a masked one and one the
client trimmed must all continue the same conversation."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deputy.domain.errors import ErrorCode, InvalidRequest

MODEL_PREFIX = "deputy/"
OWNER = "deputy"
MAX_MESSAGES = 1000
_SPACE = re.compile(r"\s+")

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "rate_limit_error",
    "server_error",
]

ERROR_TYPES: dict[ErrorCode, ErrorType] = {
    "invalid_request": "invalid_request_error",
    "validation_error": "invalid_request_error",
    "invalid_cursor": "invalid_request_error",
    "unauthenticated": "authentication_error",
    "permission_denied": "permission_error",
    "not_found": "not_found_error",
    "method_not_allowed": "invalid_request_error",
    "conflict": "conflict_error",
    "idempotency_in_progress": "conflict_error",
    "idempotency_key_reused": "invalid_request_error",
    "payload_too_large": "invalid_request_error",
    "unsupported_media_type": "invalid_request_error",
    "rate_limited": "rate_limit_error",
    "unavailable": "server_error",
    "model_error": "server_error",
    "model_output_invalid": "server_error",
    "internal_error": "server_error",
}
"""OpenAI's error `type` for each Deputy error code (the `code` stays Deputy's)."""


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts are understood."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=40)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=200)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A Chat Completions request. Fields Deputy does not use are accepted and ignored (the
    agent's spec decides how it answers), except those that would change what the caller
    gets and cannot be honoured: tools, functions, several choices, structured output."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200, description="`deputy/<agent name>`.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        default=None, max_length=200, description="The end user: the conversation's customer."
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description="`conversation_id` continues that conversation; other keys are stored on "
        "a new conversation's metadata.",
    )
    n: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None


class ChatExchange(BaseModel):
    """A request reduced to what the agent needs: the new customer message, and the history
    before it as the thread key reads it (empty: a new conversation)."""

    model_config = ConfigDict(frozen=True)

    text: str
    prior: tuple[tuple[str, str], ...]


def refuse_unsupported(request: ChatCompletionRequest) -> None:
    """`InvalidRequest` for what the endpoint cannot honour, saying why."""
    if request.tools or request.functions or request.tool_choice or request.function_call:
        raise InvalidRequest(
            "tools and functions are not accepted: the agent uses the tools its spec binds",
            details={"param": "tools"},
        )
    if request.n is not None and request.n != 1:
        raise InvalidRequest("only one choice (n=1) is produced", details={"param": "n"})
    if request.response_format and request.response_format.get("type") not in (None, "text"):
        raise InvalidRequest(
            "only text replies are produced (response_format type 'text')",
            details={"param": "response_format"},
        )


def message_text(message: ChatMessage, index: int) -> str:
    """A message's text: its string content, or its text parts joined; other parts (images,
    audio, files) are refused."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"messages[{index}] has a {part.type!r} part: only text parts are accepted",
                details={"param": f"messages[{index}].content"},
            )
        texts.append(part.text)
    return "\n".join(texts)


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def exchange(request: ChatCompletionRequest) -> ChatExchange:
    """The new customer message (the last message, which must be the user's) and the
    conversation's earlier turns as the thread key reads them."""
    refuse_unsupported(request)
    last = request.messages[-1]
    if last.role != "user":
        raise InvalidRequest(
            f"the last message must be the user's, not {last.role!r}",
            details={"param": "messages"},
        )
    text = message_text(last, len(request.messages) - 1).strip()
    if not text:
        raise InvalidRequest("the last user message is empty", details={"param": "messages"})
    prior: list[tuple[str, str]] = []
    for index, message in enumerate(request.messages[:-1]):
        said = message_text(message, index)
        if message.role == "user":
            prior.append(("user", _normal(said)))
        elif message.role == "assistant" and said.strip():
            prior.append(("assistant", ""))
        elif message.role in ("tool", "function"):
            raise InvalidRequest(
                f"messages[{index}] is a {message.role} message: tools are not accepted",
                details={"param": f"messages[{index}]"},
            )
    return ChatExchange(text=text, prior=tuple(prior))


def thread_key(
    key_id: str, agent_id: str, user: str | None, turns: Sequence[tuple[str, str]]
) -> str:
    """The key of a history: the same key, agent, user and customer messages (with the agent
    answering in between) give the same key."""
    canonical = json.dumps([key_id, agent_id, user or "", [list(t) for t in turns]])
    return hashlib.sha256(canonical.encode()).hexdigest()


def next_turns(
    prior: Sequence[tuple[str, str]], text: str, answered: bool
) -> tuple[tuple[str, str], ...]:
    """The history the client will send next time: this one, the message, the answer."""
    turns = [*prior, ("user", _normal(text))]
    if answered:
        turns.append(("assistant", ""))
    return tuple(turns)


def model_name(agent_name: str) -> str:
    return f"{MODEL_PREFIX}{agent_name}"


def agent_ref(model: str) -> str:
    """The agent name or id a model name points to."""
    return model.removeprefix(MODEL_PREFIX)


def model_object(agent_name: str, created: float) -> dict[str, Any]:
    return {"id": model_name(agent_name), "object": "model", "created": int(created),
            "owned_by": OWNER}  # fmt: skip


def usage_object(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    completion_id: str, created: int, model: str, text: str, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; with `usage` and no delta, the final usage chunk (its
    `choices` empty, as OpenAI sends it)."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if usage is not None
        else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def error_object(
    code: ErrorCode,
    message: str,
    *,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """OpenAI's error body (`message`, `type`, `param`, `code`) with Deputy's fields beside
    (`request_id`, `details`), so either kind of client reads it."""
    extra = details or {}
    param = extra.get("param")
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(code, "server_error"),
            "param": param if isinstance(param, str) else None,
            "code": code,
            "request_id": request_id,
            "details": extra,
        }
    }
