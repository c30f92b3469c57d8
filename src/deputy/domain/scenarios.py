"""Sandbox scenarios: a simulated customer's brief plus what must (and must not) happen.

The builder writes a suite for every spec it drafts (a happy path and the edge cases of each
procedure); the sandbox runs them against an agent version; the improvement loop turns failing
production conversations into new ones. A scenario drawn from a real transcript keeps a link to
it (`source`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue, model_validator

from deputy.domain.spec.base import Identifier, Provenance, SpecModel, repeated

ScenarioKind = Literal["happy_path", "edge_case", "adversarial", "regression"]
Cooperation = Literal["cooperative", "impatient", "confused", "adversarial", "off_policy"]
ExpectedOutcome = Literal["resolved", "escalated", "refused", "abandoned"]
RewardComponent = Literal[
    "DB", "ACTION", "COMMUNICATE", "NL_ASSERTION", "FORBIDDEN", "OUTCOME", "PROCEDURE", "GUARDRAIL"
]
"""The parts of a scenario's reward (tau2's `reward_basis`, extended): DB (the tool world's end
state equals the one replaying `reference_actions` on a fresh copy gives), ACTION (every
`expected_tool_calls` happened), COMMUNICATE (every `must_communicate` fact was said),
NL_ASSERTION (the model-judged `judge` and `must_not` assertions hold), FORBIDDEN (no
`forbidden_tool_calls` happened), OUTCOME, PROCEDURE, GUARDRAIL."""
GuardrailStage = Literal["input", "output", "tool"]


class CustomerBrief(SpecModel):
    """Who the simulated customer is and what it wants; written for the customer simulator, in
    the second person ("You want to return ...")."""

    persona: str = Field(min_length=1, max_length=1000, description="Who they are, how they talk.")
    goal: str = Field(min_length=1, max_length=2000, description="What they want from the agent.")
    knows: dict[str, str] = Field(
        default_factory=dict,
        description="Facts the customer can give when asked (slot or field name: value).",
    )
    unknowns: tuple[str, ...] = Field(
        default=(), description="What they do not know and must not invent."
    )
    cooperation: Cooperation = "cooperative"
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    opening: str | None = Field(
        default=None, max_length=2000, description="Their first message, when fixed."
    )


class ToolCallExpectation(SpecModel):
    """A tool call that must (or must not) happen; `arguments` lists only the arguments that
    matter (a subset match)."""

    tool: Identifier
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class GuardrailExpectation(SpecModel):
    """A guardrail stage that must (`triggered`) or must not block or escalate in the
    conversation: an injection attempt must be stopped at input; a legitimate request must not
    be (a false positive)."""

    stage: GuardrailStage
    triggered: bool = True


class ScenarioAssertions(SpecModel):
    reference_actions: tuple[ToolCallExpectation, ...] = Field(
        default=(),
        description="Tool calls (all arguments given) that a correct agent's work amounts to: "
        "replayed on a fresh copy of the tool world, they give the expected end state (DB).",
    )
    reward_basis: tuple[RewardComponent, ...] = Field(
        default=(),
        description="The reward components that count (their product is the reward); empty: "
        "every component the scenario has an assertion for.",
    )
    guardrails: tuple[GuardrailExpectation, ...] = ()
    expected_tool_calls: tuple[ToolCallExpectation, ...] = ()
    forbidden_tool_calls: tuple[ToolCallExpectation, ...] = ()
    must_communicate: tuple[str, ...] = Field(
        default=(), description="Facts the agent's messages must state."
    )
    must_not: tuple[str, ...] = Field(
        default=(), description="Things the agent must not do, judged by a model."
    )
    judge: tuple[str, ...] = Field(
        default=(), description="Other natural-language assertions, judged by a model."
    )
    expected_outcome: ExpectedOutcome | None = None
    expected_procedure: Identifier | None = Field(
        default=None, description="The procedure the agent should run."
    )


class Scenario(SpecModel):
    id: Identifier
    title: str = Field(min_length=1, max_length=200)
    kind: ScenarioKind = "happy_path"
    procedure: Identifier | None = Field(
        default=None, description="The procedure it exercises (None: cross-cutting)."
    )
    customer: CustomerBrief
    script: tuple[str, ...] = Field(
        default=(),
        description="Fixed customer turns (a scripted customer for regression checks); "
        "empty: the customer is simulated from the brief.",
    )
    assertions: ScenarioAssertions = ScenarioAssertions()
    max_turns: int = Field(default=12, ge=1, le=100)
    source: Provenance | None = Field(
        default=None, description="The transcript (or document span) the scenario was drawn from."
    )


class ScenarioSuite(SpecModel):
    format: Literal["deputy.scenarios/v1"] = "deputy.scenarios/v1"
    name: str = Field(min_length=1, max_length=200)
    scenarios: tuple[Scenario, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> ScenarioSuite:
        dupes = repeated([s.id for s in self.scenarios])
        if dupes:
            raise ValueError(f"scenario ids must be unique; repeated: {dupes}")
        return self

    def for_procedures(self, procedure_ids: set[str]) -> tuple[Scenario, ...]:
        """The scenarios that exercise any of `procedure_ids`."""
        return tuple(s for s in self.scenarios if s.procedure in procedure_ids)
