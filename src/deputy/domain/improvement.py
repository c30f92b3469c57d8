"""The improvement loop's data: what it found in production conversations and what it did.

A run evaluates an agent's recent conversations (each with customer signals and, when a model
is given, a judgement against the spec), clusters the failures by cause, compares failure rates
with the previous period, and for the top clusters tries candidates: a change request, the
candidate spec it gives, regression scenarios made from the failing conversations, and the
sandbox A/B against the live version. A candidate becomes a proposal only when it does not
regress; every rejected candidate says why."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deputy.domain.resources import Body, ModelName, Resource
from deputy.domain.sandbox import RunStatus, WorldConfig
from deputy.domain.sandbox_results import Comparison

FailureCause = Literal[
    "missing_procedure",
    "wrong_step",
    "knowledge_gap",
    "tool_error",
    "guardrail_false_positive",
    "policy_violation",
    "tone",
]
FAILURE_CAUSES: tuple[FailureCause, ...] = (
    "missing_procedure",
    "wrong_step",
    "knowledge_gap",
    "tool_error",
    "guardrail_false_positive",
    "policy_violation",
    "tone",
)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class Signals(_Data):
    """What the transcript itself says, without a model."""

    turns: int = 0
    repeated_questions: int = Field(default=0, description="Customer messages asked again.")
    escalated: bool = False
    negative_feedback: bool = False
    positive_feedback: bool = False
    tool_errors: int = 0
    guardrail_blocks: int = 0
    failed_turns: int = 0


class ConversationEvaluation(_Data):
    conversation_id: str
    agent_version: int
    outcome: str | None
    resolved: bool = Field(description="The customer's need was met.")
    policy_adherence: bool
    tone_ok: bool
    failed: bool
    cause: FailureCause | None = None
    intent: str = Field(default="", description="What the customer wanted, in a few words.")
    reasoning: str = Field(default="", description="The judge's reasoning, or the signals'.")
    signals: Signals = Signals()
    judged_by: str | None = Field(default=None, description="The judge model; null: signals.")


class FailureCluster(_Data):
    id: str
    cause: FailureCause
    label: str = Field(description="The shared intent or symptom.")
    conversation_ids: tuple[str, ...]
    share: float = Field(description="Of the evaluated conversations.")


class PeriodRegression(_Data):
    cause: FailureCause
    previous_rate: float
    current_rate: float
    previous_failures: int
    current_failures: int


CandidateStatus = Literal["proposed", "rejected", "failed"]


class Candidate(_Data):
    cluster_id: str
    change_request: str
    status: CandidateStatus
    reason: str
    version: int | None = None
    diff_text: str = ""
    regression_scenario_ids: tuple[str, ...] = ()
    baseline_run_id: str | None = None
    candidate_run_id: str | None = None
    comparison: Comparison | None = None
    proposal_id: str | None = None


class ImprovementReport(_Data):
    window_start: datetime
    window_end: datetime
    conversations: int
    previous_conversations: int = 0
    evaluations: tuple[ConversationEvaluation, ...] = ()
    clusters: tuple[FailureCluster, ...] = ()
    regressions: tuple[PeriodRegression, ...] = ()
    candidates: tuple[Candidate, ...] = ()


class ImprovementProgress(_Data):
    stage: str | None = None
    done: int = 0
    total: int = 0


ImprovementTrigger = Literal["manual", "schedule"]


class ImprovementRunCreate(Body):
    agent_id: str = Field(min_length=1, max_length=40)
    since: datetime | None = Field(
        default=None, description="Window start (default: the last run's end, else 7 days ago)."
    )
    until: datetime | None = Field(default=None, description="Window end (default: now).")
    max_conversations: int = Field(default=200, ge=1, le=1000)
    max_candidates: int = Field(default=1, ge=1, le=5)
    model: ModelName | None = Field(
        default=None,
        description="Judges conversations, proposes changes, plays sandbox customers "
        "(default: the agent's model).",
    )
    trials: int = Field(default=1, ge=1, le=5, description="Sandbox trials per scenario.")
    suite_scenarios: int = Field(
        default=20,
        ge=0,
        le=500,
        description="Existing scenarios run beside the regression scenarios in the A/B: those "
        "the change affects first, then happy paths, then the rest, up to this many.",
    )
    world: WorldConfig = Field(default_factory=WorldConfig)


class ImprovementRun(Resource):
    id: str
    workspace_id: str
    agent_id: str
    trigger: ImprovementTrigger
    status: RunStatus
    model: str
    progress: ImprovementProgress
    report: ImprovementReport | None
    proposal_ids: list[str]
    error: dict[str, str] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
