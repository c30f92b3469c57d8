"""The AgentSpec: an agent is data, not code. This is the foundation cut of the model (goal,
persona, languages, procedures, policies, tools); the AgentSpec issue completes it. Unknown
fields are rejected so a typo never silently disappears from what a reviewer approves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_FORMAT: Literal["deputy.agentspec/v1"] = "deputy.agentspec/v1"

ID_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(SpecModel):
    source: str = Field(min_length=1, description="Material id or name the item was derived from.")
    span: str | None = Field(default=None, description="Location in the source: lines, turns.")


class Persona(SpecModel):
    name: str = Field(default="Assistant", min_length=1, max_length=80)
    tone: str = Field(default="friendly and concise", max_length=200)


class Step(SpecModel):
    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["ask", "call_tool", "check", "say", "handoff"]
    text: str = Field(default="", max_length=4000)
    tool: str | None = None
    slot: str | None = Field(default=None, pattern=ID_PATTERN)
    provenance: Provenance | None = None


class Procedure(SpecModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    when: str = Field(min_length=1, max_length=2000, description="When this procedure applies.")
    steps: tuple[Step, ...] = Field(min_length=1)
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _unique_steps(self) -> Procedure:
        ids = [step.id for step in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"procedure {self.id!r} repeats step ids {duplicates}")
        return self


class Policy(SpecModel):
    id: str = Field(pattern=ID_PATTERN)
    text: str = Field(min_length=1, max_length=4000)
    provenance: Provenance | None = None


class Tool(SpecModel):
    name: str = Field(pattern=ID_PATTERN)
    description: str = Field(default="", max_length=2000)
    effect: Literal["read", "write", "irreversible"]


class AgentSpec(SpecModel):
    format: Literal["deputy.agentspec/v1"] = SPEC_FORMAT
    name: str = Field(min_length=1, max_length=120)
    goal: str = Field(min_length=1, max_length=4000)
    persona: Persona = Persona()
    languages: tuple[str, ...] = Field(default=("en",), min_length=1)
    procedures: tuple[Procedure, ...] = ()
    policies: tuple[Policy, ...] = ()
    tools: tuple[Tool, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> AgentSpec:
        for label, ids in (
            ("procedure", [p.id for p in self.procedures]),
            ("policy", [p.id for p in self.policies]),
            ("tool", [t.name for t in self.tools]),
        ):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{label} ids must be unique; repeated: {duplicates}")
        return self
