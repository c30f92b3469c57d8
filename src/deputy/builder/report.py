"""The build report: what became what, what was left out and why, what the client must answer,
which tools the agent would use and at which effect tier, and (once the sandbox runs) its
scorecard. Stored with the build and returned by the API as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deputy.domain.spec import EffectTier
from deputy.domain.spec.lint import LintFinding

CoverageStatus = Literal["mapped", "ignored"]
QuestionKind = Literal["contradiction", "gap", "unbound_tool", "unmatched_tool", "ambiguous"]


class ReportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaterialSummary(ReportModel):
    id: str
    name: str
    kind: str | None = Field(description="document, guidelines, transcripts, tools, recording")
    status: Literal["used", "partly_used", "failed"]
    detail: str = ""


class FileProblem(ReportModel):
    material: str
    name: str
    code: str
    message: str


class CoverageItem(ReportModel):
    """One piece of the material (a section, a sentence, a transcript's edge case) and the spec
    paths it became (`procedures.cancel_order.steps.confirm`), or why it was ignored."""

    material: str | None
    span: str
    quote: str = Field(max_length=400)
    status: CoverageStatus
    rules: tuple[str, ...] = ()
    reason: str | None = None


class OpenQuestion(ReportModel):
    kind: QuestionKind
    text: str
    refs: tuple[str, ...] = Field(default=(), description="Spec paths or material spans involved.")


class ToolInference(ReportModel):
    """A tool the spec binds, its inferred effect tier and how it was inferred."""

    tool: str
    effect: EffectTier
    reason: str
    bound: bool
    used_by: tuple[str, ...] = ()


class BuildStats(ReportModel):
    procedures: int = 0
    policies: int = 0
    scenarios: int = 0
    tools: int = 0
    model_calls: int = 0
    model_failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0


class BuildReport(ReportModel):
    model: str | None = Field(description="The model that answered the builder's questions.")
    materials: tuple[MaterialSummary, ...] = ()
    problems: tuple[FileProblem, ...] = ()
    coverage: tuple[CoverageItem, ...] = ()
    questions: tuple[OpenQuestion, ...] = ()
    tools: tuple[ToolInference, ...] = ()
    lint: tuple[LintFinding, ...] = ()
    suggestions: tuple[str, ...] = Field(
        default=(), description="Why the suggested guardrail preset and channels were chosen."
    )
    stats: BuildStats = BuildStats()
    scorecard: dict[str, JsonValue] | None = Field(
        default=None, description="The sandbox scorecard, once the suite has been run."
    )

    @property
    def unmapped(self) -> tuple[CoverageItem, ...]:
        return tuple(item for item in self.coverage if item.status == "ignored")
