"""The runtime's state of one conversation between turns: JSON, stored on the conversation and
handed back to the runtime at the next turn. Everything a turn decides that later turns need is
here; the transcript (`deputy.runtime.journal`) is the record of what happened."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deputy.domain.spec import OutcomeKind
from deputy.tools.confirmation import Confirmation


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProcedureExit(_State):
    """A procedure that finished in this conversation: the evidence of its outcome."""

    procedure_id: str
    exit_id: str | None
    outcome: OutcomeKind
    turn: int
    tool_call_ids: list[str] = Field(
        default_factory=list,
        description="The ledger ids of the successful tool calls made in the procedure.",
    )


class GuidedState(_State):
    """Where guided mode is: the running procedure, its step, the slots it has filled, and what
    it is waiting for from the customer."""

    procedure_id: str | None = None
    step_id: str | None = None
    awaiting: Literal["answer", "confirmation"] | None = None
    slots: dict[str, JsonValue] = Field(default_factory=dict)
    visits: dict[str, int] = Field(default_factory=dict)
    """How many times each step of the running procedure was entered (bounds loops and makes
    each call site's step key unique)."""
    tool_call_ids: list[str] = Field(default_factory=list)
    then: dict[str, JsonValue] | None = Field(
        default=None,
        description="The procedure to run once this one (its prerequisite) ends: "
        "`procedure` and the slots already given for it.",
    )


class PendingConfirmation(_State):
    """Reasoning mode: an irreversible call the model asked for, put to the customer."""

    tool: str
    arguments: dict[str, JsonValue]
    summary: str
    procedure_id: str | None = None


class ConfirmationRecord(_State):
    tool: str
    arguments_sha256: str
    message_id: str

    def to_confirmation(self) -> Confirmation:
        return Confirmation(self.tool, self.arguments_sha256, self.message_id)

    @classmethod
    def of(cls, confirmation: Confirmation) -> ConfirmationRecord:
        return cls(
            tool=confirmation.tool,
            arguments_sha256=confirmation.arguments_sha256,
            message_id=confirmation.message_id,
        )


class AgentState(_State):
    turn: int = 0
    """The number of agent turns run so far (the current one included, while it runs)."""
    language: str | None = None
    """The customer's language, once detected (a BCP 47 tag the spec allows)."""
    context: dict[str, JsonValue] = Field(default_factory=dict)
    """Values known beyond one procedure (the authenticated customer, channel data): the
    `context` slots of every procedure read them."""
    guided: GuidedState = Field(default_factory=GuidedState)
    pending_confirmation: PendingConfirmation | None = None
    confirmations: list[ConfirmationRecord] = Field(default_factory=list)
    completed: list[ProcedureExit] = Field(default_factory=list)
    failed_turns: int = 0
    """Consecutive turns that failed (a refused or failed tool call, a blocked reply, a model
    that could not answer); reset by a turn that went well."""
    summary: str = ""
    """A summary of the transcript up to `summary_through` (older turns, for the context)."""
    summary_through: int = 0

    def confirmation_list(self) -> tuple[Confirmation, ...]:
        return tuple(record.to_confirmation() for record in self.confirmations)
