"""Procedures (the SOPs as structured steps) and standing policies.

A procedure starts at its first step and moves to `next` (or the following step when `next` is
unset). `check` steps branch to `then` / `otherwise`; `confirm` steps ask the customer to confirm
and go to `on_decline` on a no; `end` steps finish with one of the procedure's exits, `handoff`
steps hand the conversation to a human (an escalated exit). Texts are templates: `{slot}` inserts a
slot's value. Structural rules (ids, which fields a step kind takes) are checked here; rules that
need the whole spec (unknown tools, unreachable steps, slots used before they are asked) are the
linter's (`deputy.domain.spec.lint`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from deputy.domain.spec.base import (
    ArgumentLimit,
    Identifier,
    Provenance,
    SpecModel,
    repeated,
)

StepKind = Literal["ask", "call_tool", "check", "confirm", "say", "handoff", "end"]
SlotType = Literal["string", "integer", "number", "boolean", "date", "email", "phone", "enum"]
OutcomeKind = Literal["resolved", "escalated", "abandoned"]


class Slot(SpecModel):
    """A piece of information a procedure needs, asked from the customer or known from context."""

    id: Identifier
    description: str = Field(default="", max_length=1000)
    type: SlotType = "string"
    values: tuple[str, ...] = Field(default=(), description="The allowed values of an enum slot.")
    pattern: str | None = Field(default=None, max_length=500, description="A regex it must match.")
    source: Literal["customer", "context"] = Field(
        default="customer",
        description="`context` slots are known before the procedure starts (channel, customer id).",
    )

    @model_validator(mode="after")
    def _enum_values(self) -> Slot:
        if (self.type == "enum") != bool(self.values):
            raise ValueError(f"slot {self.id!r}: `values` is required for enum slots and only them")
        return self


# Which optional step fields each kind takes; anything else set on a step is an error.
_STEP_FIELDS: dict[str, frozenset[str]] = {
    "ask": frozenset({"slot"}),
    "call_tool": frozenset({"tool", "arguments", "save_as", "limits"}),
    "check": frozenset({"condition", "then", "otherwise"}),
    "confirm": frozenset({"on_decline"}),
    "say": frozenset(),
    "handoff": frozenset({"queue"}),
    "end": frozenset({"exit"}),
}
_REQUIRED_STEP_FIELDS: dict[str, frozenset[str]] = {
    "ask": frozenset({"slot"}),
    "call_tool": frozenset({"tool"}),
    "check": frozenset({"condition", "then"}),
    "confirm": frozenset({"on_decline"}),
    "end": frozenset({"exit"}),
}
_KIND_FIELDS = frozenset().union(*_STEP_FIELDS.values())
_TERMINAL_KINDS = frozenset({"handoff", "end"})


class Step(SpecModel):
    id: Identifier
    kind: StepKind
    text: str = Field(
        default="",
        max_length=4000,
        description="ask/confirm: the question; say/end/handoff: the reply; a template.",
    )
    slot: Identifier | None = Field(default=None, description="ask: the slot the answer fills.")
    tool: Identifier | None = Field(default=None, description="call_tool: the tool's name.")
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="call_tool: argument values; strings are templates (`{order_id}`).",
    )
    save_as: Identifier | None = Field(default=None, description="call_tool: slot for the result.")
    limits: tuple[ArgumentLimit, ...] = Field(
        default=(), description="call_tool: limits for this step, on top of the tool's own."
    )
    condition: str | None = Field(
        default=None, max_length=2000, description="check: a yes/no question about the state."
    )
    then: Identifier | None = Field(default=None, description="check: the step when true.")
    otherwise: Identifier | None = Field(
        default=None,
        description="check: the step when false (default: `next`, else the following step).",
    )
    on_decline: Identifier | None = Field(
        default=None, description="confirm: the step when the customer says no."
    )
    queue: str | None = Field(default=None, max_length=100, description="handoff: human queue.")
    exit: Identifier | None = Field(default=None, description="end: the procedure exit reached.")
    next: Identifier | None = Field(
        default=None, description="The step after this one (default: the following step)."
    )
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Step:
        allowed = _STEP_FIELDS[self.kind]
        present = {
            name
            for name in _KIND_FIELDS
            if name in self.model_fields_set and getattr(self, name) not in (None, (), {})
        }
        stray = sorted(present - allowed)
        if stray:
            raise ValueError(f"step {self.id!r}: a {self.kind} step does not take {stray}")
        missing = sorted(
            name for name in _REQUIRED_STEP_FIELDS.get(self.kind, ()) if getattr(self, name) is None
        )
        if missing:
            raise ValueError(f"step {self.id!r}: a {self.kind} step needs {missing}")
        if self.kind in _TERMINAL_KINDS and self.next is not None:
            raise ValueError(f"step {self.id!r}: a {self.kind} step ends the procedure")
        if self.kind in {"ask", "confirm"} and not self.text:
            raise ValueError(f"step {self.id!r}: a {self.kind} step needs the question as `text`")
        return self

    @property
    def terminal(self) -> bool:
        return self.kind in _TERMINAL_KINDS


class Exit(SpecModel):
    """A way a procedure ends, and the conversation outcome it stands for."""

    id: Identifier
    outcome: OutcomeKind
    description: str = Field(default="", max_length=1000)


class Procedure(SpecModel):
    id: Identifier
    title: str = Field(min_length=1, max_length=200)
    when: str = Field(min_length=1, max_length=2000, description="When this procedure applies.")
    slots: tuple[Slot, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1)
    exits: tuple[Exit, ...] = ()
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> Procedure:
        for label, ids in (
            ("step", [step.id for step in self.steps]),
            ("slot", [slot.id for slot in self.slots]),
            ("exit", [exit_.id for exit_ in self.exits]),
        ):
            dupes = repeated(ids)
            if dupes:
                raise ValueError(f"procedure {self.id!r} repeats {label} ids {dupes}")
        return self

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


class PolicyLimit(ArgumentLimit):
    """A policy's bound on a tool argument ("never refund more than $200")."""

    tool: Identifier


class Policy(SpecModel):
    """A standing rule across procedures. `text` is what the model reads; `limits` and
    `forbids_tools` are the parts the runtime enforces in code."""

    id: Identifier
    text: str = Field(min_length=1, max_length=4000)
    applies_to: tuple[Identifier, ...] = Field(
        default=(), description="Procedure ids it is limited to; empty means every procedure."
    )
    limits: tuple[PolicyLimit, ...] = ()
    forbids_tools: tuple[Identifier, ...] = ()
    provenance: Provenance | None = None
