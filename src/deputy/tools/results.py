"""What the runtime passes to a tool call and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from deputy.domain.spec import ArgumentLimit
from deputy.tools.builtins import Signal
from deputy.tools.confirmation import Confirmation
from deputy.tools.ledger import CallRecord, ResultCode
from deputy.tools.untrusted import DEFAULT_BUDGET, envelope

ResultStatus = Literal["succeeded", "failed", "refused", "outcome_unknown"]


@dataclass(frozen=True)
class CallContext:
    """Where a call is made. `step_key` is unique per call site in the conversation (the runtime
    supplies it, e.g. `turn-3/step-2`): a retry of the same call site must reuse it."""

    workspace_id: str
    agent_id: str
    conversation_id: str
    step_key: str
    procedure_id: str | None = None
    step_limits: tuple[ArgumentLimit, ...] = ()
    """The calling `call_tool` step's own limits."""
    confirmations: tuple[Confirmation, ...] = ()
    """What the customer confirmed earlier in the conversation."""
    customer_id: str | None = None


@dataclass(frozen=True)
class ToolCallResult:
    tool: str
    status: ResultStatus
    code: ResultCode | None = None
    message: str = ""
    """The executor's explanation of a refusal or failure (never the tool's own words)."""
    output: Any = None
    """What the tool returned: untrusted data. Give it to the model only through `for_model`."""
    details: dict[str, Any] = field(default_factory=dict)
    """Machine-readable specifics: validation errors, limit violations, what to confirm."""
    call_id: str | None = None
    idempotency_key: str | None = None
    replayed: bool = False
    """True when the answer is the recorded result of an earlier call at the same step."""
    attempts: int = 0
    signal: Signal | None = None
    """A built-in's request to the runtime: hand off, end the conversation."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def for_model(self, budget: int = DEFAULT_BUDGET) -> str:
        """The result as the model should see it: tool output labelled as untrusted data, the
        executor's own messages (refusals, unknown outcomes) labelled as such."""
        if self.status in ("refused", "outcome_unknown") or (
            self.status == "failed" and self.output is None
        ):
            return envelope(
                tool=self.tool,
                status=self.status,
                content=None,
                trusted_text=self.message,
                code=self.code,
                budget=budget,
            )
        return envelope(
            tool=self.tool, status=self.status, content=self.output, code=self.code, budget=budget
        )

    @classmethod
    def from_record(cls, record: CallRecord, *, replayed: bool) -> ToolCallResult:
        # A row still pending has not been acknowledged: its outcome is not known.
        status: ResultStatus = "outcome_unknown" if record.status == "pending" else record.status
        details = record.output if record.status == "refused" else {}
        return cls(
            tool=record.tool,
            status=status,
            code=record.code,
            message=record.error or "",
            output=None if record.status == "refused" else record.output,
            details=details if isinstance(details, dict) else {},
            call_id=record.id,
            idempotency_key=record.idempotency_key,
            replayed=replayed,
            attempts=record.attempts,
        )
