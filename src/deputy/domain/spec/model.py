"""The AgentSpec root: an agent is data, not code (`deputy.agentspec/v1`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from deputy.domain.spec.base import Identifier, Provenance, SpecModel, repeated
from deputy.domain.spec.operations import (
    Autonomy,
    Channels,
    Escalation,
    Guardrails,
    Knowledge,
    Outcomes,
    SLOs,
)
from deputy.domain.spec.procedures import Policy, Procedure
from deputy.domain.spec.tools import Tool

SPEC_FORMAT: Literal["deputy.agentspec/v1"] = "deputy.agentspec/v1"

RuntimeMode = Literal["reasoning", "guided"]
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class Persona(SpecModel):
    name: str = Field(default="Assistant", min_length=1, max_length=80)
    tone: str = Field(default="friendly and concise", max_length=200)
    description: str = Field(
        default="", max_length=2000, description="Who the agent is and speaks for."
    )


class AgentRoute(SpecModel):
    """Another deployed agent of the same workspace this agent may pass the conversation to.
    The other agent answers with its own spec, tools and data; the transcript stays one."""

    id: Identifier
    agent: str = Field(
        min_length=1,
        max_length=120,
        description="The target agent: its id (`agt_...`) or its name in the same workspace.",
    )
    when: str = Field(min_length=1, max_length=2000, description="When to pass the conversation.")
    description: str = Field(
        default="", max_length=500, description="How the customer is told who takes over."
    )
    provenance: Provenance | None = None


class AgentSpec(SpecModel):
    format: Literal["deputy.agentspec/v1"] = SPEC_FORMAT
    name: str = Field(min_length=1, max_length=120)
    goal: str = Field(min_length=1, max_length=4000)
    persona: Persona = Persona()
    languages: tuple[LanguageTag, ...] = Field(
        default=("en",), min_length=1, description="BCP 47 tags; the first is the default."
    )
    mode: RuntimeMode | None = Field(
        default=None,
        description="reasoning or guided; unset: guided under `regulated` guardrails.",
    )
    procedures: tuple[Procedure, ...] = ()
    policies: tuple[Policy, ...] = ()
    tools: tuple[Tool, ...] = ()
    routes: tuple[AgentRoute, ...] = Field(
        default=(), description="Other agents of the workspace this agent may hand over to."
    )
    knowledge: Knowledge = Knowledge()
    guardrails: Guardrails = Guardrails()
    channels: Channels = Channels()
    escalation: Escalation = Escalation()
    outcomes: Outcomes = Outcomes()
    autonomy: Autonomy = Autonomy()
    slos: SLOs = SLOs()

    @model_validator(mode="after")
    def _unique_ids(self) -> AgentSpec:
        for label, ids in (
            ("procedure", [p.id for p in self.procedures]),
            ("policy", [p.id for p in self.policies]),
            ("tool", [t.name for t in self.tools]),
            ("route", [r.id for r in self.routes]),
            ("language", list(self.languages)),
        ):
            dupes = repeated(ids)
            if dupes:
                raise ValueError(f"{label} ids must be unique; repeated: {dupes}")
        return self

    @property
    def runtime_mode(self) -> RuntimeMode:
        if self.mode is not None:
            return self.mode
        return "guided" if self.guardrails.preset == "regulated" else "reasoning"

    def procedure(self, procedure_id: str) -> Procedure | None:
        return next((p for p in self.procedures if p.id == procedure_id), None)

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def route(self, route_id: str) -> AgentRoute | None:
        return next((r for r in self.routes if r.id == route_id), None)
