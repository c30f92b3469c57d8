"""Review, deployment and the audit log as callers see them.

A **proposal** is a candidate agent version (already stored, immutable) offered as a change to
the live one, with its evidence (sandbox scorecard and A/B, the conversations that motivated it,
cost impact, rationale). Reviewers comment, request changes, approve or reject it. A
**deployment** puts versions live on a channel (or on `all` channels): the live version and, at
most one at a time, a canary that takes `canary_percent` of new conversations (sticky: a
conversation keeps the version it started on). Every decision, deployment, rollback and
permission change is an **audit entry**; each entry's hash covers the previous one's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deputy.domain.resources import Body, ChannelName, Resource
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.domain.spec import SpecChange
from deputy.domain.spec.operations import AutonomyMode

# ---- audit log ----------------------------------------------------------------------------

AuditAction = Literal[
    "proposal.filed",
    "proposal.commented",
    "proposal.changes_requested",
    "proposal.approved",
    "proposal.rejected",
    "proposal.superseded",
    "deployment.deployed",
    "deployment.canary_started",
    "deployment.promoted",
    "deployment.paused",
    "deployment.resumed",
    "deployment.rolled_back",
    "autopilot.declined",
    "key.created",
    "key.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    "billing.plan_set",
    "billing.plan_removed",
    "billing.budget_set",
    "billing.budget_removed",
    "billing.outcome_disputed",
    "billing.dispute_accepted",
    "billing.dispute_rejected",
    "alert.silenced",
    "alert.resolved",
]
ActorKind = Literal["member", "service", "channel", "system"]
SYSTEM_AUTOPILOT = "system:autopilot"
"""The actor of what autonomy does by itself (canary starts, automatic rollbacks, promotions)."""
SYSTEM_IMPROVEMENT = "system:improvement"
"""The actor of what the improvement loop files."""


class AuditEntry(Resource):
    """One entry of the workspace's append-only audit log. `hash` is SHA-256 over the previous
    entry's hash and this entry's canonical JSON (`deputy.lifecycle.audit.entry_hash`)."""

    id: str
    workspace_id: str
    seq: int = Field(description="1, 2, 3... within the workspace.")
    at: datetime
    actor: str = Field(description="The acting key's id, or `system:<component>`.")
    actor_kind: ActorKind
    action: AuditAction
    subject_type: str
    subject_id: str
    data: dict[str, JsonValue]
    prev_hash: str
    hash: str


class AuditVerification(Resource):
    """The chain checked from its first entry: `ok` only when every entry's hash is right and
    links to the one before, with no gap in `seq`."""

    ok: bool
    entries: int
    head_hash: str | None = Field(description="The last entry's hash (anchor it elsewhere).")
    first_bad_seq: int | None = None
    problem: str | None = None


# ---- proposals and reviews ----------------------------------------------------------------

ProposalStatus = Literal[
    "open", "changes_requested", "approved", "rejected", "deployed", "superseded"
]
OPEN_PROPOSALS: frozenset[ProposalStatus] = frozenset({"open", "changes_requested"})
ProposalOrigin = Literal["manual", "builder", "improvement"]
GateStatus = Literal["passed", "failed", "missing"]
ReviewKind = Literal["comment", "request_changes", "approve", "reject"]


class CostImpact(BaseModel):
    """Mean model cost per sandbox conversation, live version against the candidate."""

    model_config = ConfigDict(frozen=True)

    baseline_usd: float | None = None
    candidate_usd: float | None = None


class ProposalEvidence(BaseModel):
    """What a reviewer weighs: the candidate's sandbox scorecard, the A/B against the live
    version (same suite and seed), the production conversations that motivated it, the
    regression scenarios made from them, and the cost impact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sandbox_run_id: str | None = Field(default=None, description="The candidate's run.")
    baseline_run_id: str | None = Field(default=None, description="The live version's run.")
    scorecard: Scorecard | None = None
    comparison: Comparison | None = None
    conversation_ids: list[str] = Field(default_factory=list, max_length=200)
    regression_scenario_ids: list[str] = Field(default_factory=list, max_length=200)
    cost: CostImpact = CostImpact()
    improvement_run_id: str | None = None


class ProposalCreate(Body):
    """Offer stored version `version` of the agent as a change to `base_version` (default: the
    version live on `all` channels; none when the agent was never deployed). Given run ids are
    looked up and their scorecard / comparison filled in by the platform."""

    agent_id: str = Field(min_length=1, max_length=40)
    version: int = Field(ge=1, le=2**31 - 1)
    base_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    title: str = Field(min_length=1, max_length=200)
    rationale: str = Field(default="", max_length=20_000)
    sandbox_run_id: str | None = Field(default=None, max_length=40)
    baseline_run_id: str | None = Field(default=None, max_length=40)
    conversation_ids: list[str] = Field(default_factory=list, max_length=200)
    regression_scenario_ids: list[str] = Field(default_factory=list, max_length=200)


class Proposal(Resource):
    id: str
    workspace_id: str
    agent_id: str
    version: int = Field(description="The candidate version.")
    base_version: int | None = Field(description="The version it changes (null: first deploy).")
    status: ProposalStatus
    origin: ProposalOrigin
    title: str
    rationale: str
    evidence: ProposalEvidence
    changes: list[SpecChange] = Field(description="The spec diff from base_version.")
    diff_text: str
    widens_permissions: bool
    widening_reasons: list[str]
    gate: GateStatus = Field(
        description="The sandbox gate: `passed` when the candidate has a finished run and, "
        "against a base version, an A/B with no regressed scenario."
    )
    gate_reason: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None


class ReviewCreate(Body):
    kind: ReviewKind
    body: str = Field(default="", max_length=20_000)


class Review(Resource):
    id: str
    proposal_id: str
    kind: ReviewKind
    body: str
    reviewer: str = Field(description="The reviewing key's id.")
    member_id: str | None
    created_at: datetime


# ---- deployments --------------------------------------------------------------------------

DeployChannel = ChannelName
"""A channel name, or `all`: the deployment every channel without its own uses."""
ALL_CHANNELS = "all"
Arm = Literal["live", "canary"]


class DeploymentCreate(Body):
    """Put `version` live on `channel` (`canary_percent` null), or start it as the canary
    beside the live version (1-99 percent of new conversations). Deploying needs an approved
    proposal for the version, or a member's key (a human deciding); a version that widens
    the agent's permissions is never deployed by autonomy."""

    version: int = Field(ge=1, le=2**31 - 1)
    channel: DeployChannel = ALL_CHANNELS
    canary_percent: int | None = Field(default=None, ge=1, le=99)
    proposal_id: str | None = Field(default=None, max_length=40)
    note: str = Field(default="", max_length=2000)


class RollbackRequest(Body):
    reason: str = Field(default="", max_length=2000)


class Deployment(Resource):
    id: str
    workspace_id: str
    agent_id: str
    channel: str
    live_version: int
    previous_version: int | None = Field(description="Where an instant rollback goes.")
    canary_version: int | None
    canary_percent: int
    canary_paused: bool
    canary_started_at: datetime | None
    canary_proposal_id: str | None
    canary_by_autopilot: bool
    created_at: datetime
    updated_at: datetime


class ArmMetrics(BaseModel):
    """One arm's conversations since the canary started."""

    model_config = ConfigDict(frozen=True)

    version: int
    conversations: int
    resolved: int
    escalated: int
    resolution_rate: float | None
    escalation_rate: float | None
    guardrail_violation_rate: float | None = Field(description="Blocked turns per turn.")
    error_rate: float | None = Field(description="Failed turns per turn.")
    turns: int
    p95_latency_ms: float | None


CanaryAction = Literal["promote", "rollback", "wait"]


class CanaryStatus(Resource):
    deployment_id: str
    live: ArmMetrics
    canary: ArmMetrics
    breaches: list[str] = Field(description="Each rollback trigger or SLO the canary breaches.")
    decision: CanaryAction
    reason: str
    autonomy: AutonomyMode = Field(description="The live version's: whether autopilot acts.")


class TrustRecord(Resource):
    """What justifies widening an agent's autonomy: how its proposals and canaries went."""

    agent_id: str
    autonomy: AutonomyMode | None = Field(description="The live version's mode.")
    proposals: int
    approved: int
    rejected: int
    changes_requested: int
    auto_deployed: int
    canaries_promoted: int
    canaries_rolled_back: int
    automatic_rollbacks: int
    manual_rollbacks: int
