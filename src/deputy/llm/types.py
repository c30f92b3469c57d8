"""The vocabulary of model calls: messages, tool definitions and calls, requests, responses,
stream chunks, usage. Plain frozen data; providers translate to and from it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
ToolChoice = Literal["auto", "required", "none"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to run a tool. `id` pairs it with the tool's result message."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role == "tool": which call this is the result of

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: tuple[ToolCall, ...] = ()) -> Message:
        return cls("assistant", content, tool_calls)

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id)


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON Schema object


@dataclass(frozen=True, slots=True)
class ModelRequest:
    messages: tuple[Message, ...]
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: ToolChoice = "auto"
    response_schema: Mapping[str, Any] | None = None  # JSON Schema the reply must satisfy
    schema_name: str = "response"
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None  # sampling seed, where the provider supports one
    stop: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)  # workspace/agent/conversation ids


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class ModelResponse:
    model: str  # the resolved "provider:model" that answered
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    parsed: Any = None  # the decoded JSON when the request had a response_schema
    usage: Usage = Usage()
    finish_reason: FinishReason = "stop"
    latency_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """Text as it is generated; the last chunk carries the complete response."""

    text: str = ""
    response: ModelResponse | None = None


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    native_tools: bool
    native_json_schema: bool
    context_tokens: int


@runtime_checkable
class Model(Protocol):
    """One model. Implementations raise `deputy.llm.errors.ModelError` subclasses only."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> ModelCapabilities: ...

    async def request(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]: ...
