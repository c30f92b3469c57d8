"""The contract between the tool executor and the tool sources it calls.

A *source* is one place tools live: an imported OpenAPI document bound to a base URL, an MCP server,
a plain HTTP webhook. A `ToolSourceClient` lists the operations a source offers and performs one
invocation; it knows nothing of effect tiers, confirmation, limits or the call ledger, which are the
executor's (`deputy.tools.executor`). Clients never log or return credentials: the request and
response records they return are already redacted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from deputy.domain.spec import EffectTier

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class ToolDefinition:
    """One operation a source offers."""

    operation: str
    """How the source names it: the OpenAPI operationId, the MCP tool name."""
    description: str
    input_schema: JsonObject
    """JSON Schema (an object schema) of the arguments."""
    effect: EffectTier
    """Inferred: GET/HEAD or MCP readOnlyHint → read; `x-effect` or destructiveHint when given;
    otherwise write. A reviewer confirms it in the spec."""


@dataclass(frozen=True)
class Invocation:
    operation: str
    arguments: Mapping[str, Any]
    timeout_seconds: float
    idempotency_key: str | None = None
    """Sent to the source (the `Idempotency-Key` header over HTTP; `_meta` over MCP) for write and
    irreversible calls."""


@dataclass(frozen=True)
class InvocationResult:
    """What came back. `ok=False` is a tool-level failure the model may see and react to (an HTTP
    4xx with its body, an MCP result with isError); transport failures raise ToolTransportError."""

    ok: bool
    output: Any
    """Parsed JSON (or text) the source returned: untrusted data."""
    status: int | None = None
    request: JsonObject = field(default_factory=dict)
    """Redacted record of what was sent (method, URL, headers without secrets, body)."""
    response: JsonObject = field(default_factory=dict)
    """Redacted record of what came back (status, headers, body)."""


class ToolTransportError(Exception):
    """The call did not complete: connection refused, timeout, 5xx, a broken MCP session.
    `maybe_delivered` is true when the source may have acted on it (the request left)."""

    def __init__(self, message: str, *, retryable: bool, maybe_delivered: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.maybe_delivered = maybe_delivered


class ToolSourceClient(Protocol):
    honours_idempotency_keys: bool
    """True when re-sending an invocation with the same idempotency key is safe (the source
    deduplicates it). When false, an irreversible call whose outcome is unknown is never re-sent."""

    async def list_tools(self) -> list[ToolDefinition]: ...

    async def invoke(self, invocation: Invocation) -> InvocationResult: ...

    async def aclose(self) -> None: ...
