"""Shared building blocks of the AgentSpec: the strict base model, identifiers, provenance and
argument limits. Unknown fields are rejected everywhere so a typo never silently disappears from
what a reviewer approves."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""Ids of procedures, steps, slots, exits, policies, tools and sources: snake_case, <= 64 chars."""

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]

EffectTier = Literal["read", "write", "irreversible"]
"""What a tool call does to the client's systems. `irreversible` calls need the customer's explicit
confirmation earlier in the conversation and carry an idempotency key."""

ScalarValue = StrictBool | StrictInt | StrictFloat | str
"""A JSON scalar an argument may be compared with (`one_of`)."""


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(SpecModel):
    """Where a rule came from, so a reviewer can check it against its origin."""

    source: str = Field(
        min_length=1, max_length=200, description="Material id (or name) the item was derived from."
    )
    kind: Literal["document", "transcript", "goal", "constraint", "tool_description", "manual"] = (
        "document"
    )
    span: str | None = Field(
        default=None,
        max_length=200,
        description="Human-readable location in the source: 'lines 12-18', 'page 3', 'turns 4-7'.",
    )
    start: int | None = Field(default=None, ge=0, description="Character offset where it starts.")
    end: int | None = Field(default=None, ge=0, description="Character offset where it ends.")
    quote: str | None = Field(default=None, max_length=2000, description="The source excerpt.")

    @model_validator(mode="after")
    def _ordered(self) -> Provenance:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("provenance end must not come before start")
        return self


class ArgumentLimit(SpecModel):
    """A bound on one argument of a tool call, enforced by the runtime before the call leaves.

    `argument` is a dotted path into the call's arguments (`amount`, `refund.amount`); a `*`
    segment applies the limit to every element of a list (`items.*.quantity`)."""

    argument: str = Field(
        min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-*]+(\.[A-Za-z0-9_\-*]+)*$"
    )
    max: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)
    one_of: tuple[ScalarValue, ...] | None = Field(default=None, min_length=1)
    message: str | None = Field(
        default=None, max_length=500, description="What to tell the model when the limit refuses."
    )

    @model_validator(mode="after")
    def _meaningful(self) -> ArgumentLimit:
        if self.max is None and self.min is None and self.one_of is None:
            raise ValueError(f"limit on {self.argument!r} sets none of max, min, one_of")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"limit on {self.argument!r} has min {self.min} above max {self.max}")
        return self


def repeated(ids: list[str]) -> list[str]:
    """The ids that occur more than once, sorted."""
    seen: set[str] = set()
    dupes: set[str] = set()
    for item in ids:
        (dupes if item in seen else seen).add(item)
    return sorted(dupes)
