"""The call ledger: every tool call, persisted before it is acted on, for idempotency and audit.

A write or irreversible call is inserted as `pending` (and committed) *before* its request leaves,
under a unique idempotency key; whatever happens next (an answer, an error, a crash) the next
attempt at the same step finds that row. Refused calls are recorded too, without a key, so a call
refused for want of a confirmation can be made again at the same step once the customer says yes.

Implementations: `deputy.testing.tools.InMemoryCallLedger` (unit tests) and
`deputy.services.tool_ledger.SqlCallLedger` (the platform)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from deputy.domain.spec import EffectTier

CallStatus = Literal["pending", "succeeded", "failed", "refused", "outcome_unknown"]
FinalStatus = Literal["succeeded", "failed", "refused", "outcome_unknown"]
CALL_STATUSES: tuple[CallStatus, ...] = (
    "pending",
    "succeeded",
    "failed",
    "refused",
    "outcome_unknown",
)

ResultCode = Literal[
    "unknown_tool",
    "forbidden_by_policy",
    "invalid_arguments",
    "limit_exceeded",
    "call_limit_reached",
    "confirmation_required",
    "idempotency_conflict",
    "outcome_unknown",
    "transport_error",
    "tool_error",
    "unavailable",
]
"""Stable codes of results that are not a success. Refusals (nothing left): unknown_tool,
forbidden_by_policy, invalid_arguments, limit_exceeded, call_limit_reached,
confirmation_required, idempotency_conflict, unavailable (the tool's source or built-in handler is
not configured in this runtime). After sending: tool_error (the source answered with a failure),
transport_error (no answer; for a read after its retries), outcome_unknown (a write may or may not
have happened and cannot safely be sent again)."""


@dataclass(frozen=True)
class CallStart:
    """A call about to be recorded."""

    workspace_id: str
    agent_id: str
    agent_version: int | None
    conversation_id: str
    step_key: str
    tool: str
    effect: EffectTier | None
    """None for a tool the spec does not have."""
    idempotency_key: str | None
    arguments: dict[str, Any]
    arguments_sha256: str
    started_at: datetime


@dataclass(frozen=True)
class CallFinish:
    """How a call ended; `request`/`response`/`output` are already redacted."""

    status: FinalStatus
    code: ResultCode | None = None
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    attempts: int = 0
    finished_at: datetime | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class CallRecord:
    id: str
    workspace_id: str
    agent_id: str
    agent_version: int | None
    conversation_id: str
    step_key: str
    tool: str
    effect: EffectTier | None
    idempotency_key: str | None
    arguments: dict[str, Any]
    arguments_sha256: str
    status: CallStatus
    code: ResultCode | None
    request: dict[str, Any]
    response: dict[str, Any]
    output: Any
    error: str | None
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None


class CallLedger(Protocol):
    async def start(self, call: CallStart) -> tuple[CallRecord, bool]:
        """Insert `call` as `pending` and commit. When a row with the same idempotency key exists
        (a retry, or a concurrent attempt that won the race), nothing is inserted and that row is
        returned with `False`."""
        ...

    async def find(self, workspace_id: str, idempotency_key: str) -> CallRecord | None: ...

    async def begin_attempt(self, call_id: str) -> CallRecord:
        """Count one more attempt at sending a recorded call (committed before it leaves)."""
        ...

    async def finish(self, call_id: str, finish: CallFinish) -> CallRecord: ...

    async def refuse(
        self, call: CallStart, code: ResultCode, error: str, details: dict[str, Any]
    ) -> CallRecord:
        """Record a call refused before anything left (without its idempotency key)."""
        ...

    async def count(self, workspace_id: str, conversation_id: str, tool: str) -> int:
        """Calls of `tool` in the conversation that were made (not refused)."""
        ...
