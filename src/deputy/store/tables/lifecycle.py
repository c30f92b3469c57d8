"""Builds, sandbox runs, the audit log, proposals, deployments and improvement runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from deputy.store.tables.base import Base, TenantOwned, utcnow

# --- builds ---


class Build(TenantOwned, Base):
    """A run of the builder: its inputs (goal, constraints, materials, tool sources, model),
    where it is (`queued`, `running`, then `succeeded` or `failed`), and its result: the current
    revision of the AgentSpec draft, its scenario suite and the build report. A change request
    writes the next revision (`build_changes`). `lease_owner`/`lease_expires_at` let one process
    at a time run it; `attempts` counts the runs started."""

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # queued | running | succeeded | failed
    name: Mapped[str | None] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(Text)
    constraints: Mapped[list[str]]
    material_ids: Mapped[list[str]]
    tool_source_ids: Mapped[list[str]]
    model: Mapped[str | None] = mapped_column(String(200))
    progress: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any] | None]
    scenarios: Mapped[dict[str, Any] | None]
    report: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class BuildChange(TenantOwned, Base):
    """A change request in plain language applied to a build's draft: what was done, the diff,
    the scenarios to run again and the questions left; `revision` is the build's revision after
    it (unchanged when nothing could be applied). Rows are inserted, never updated."""

    __tablename__ = "build_changes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    build_id: Mapped[str] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    request: Mapped[str] = mapped_column(Text)
    applied: Mapped[list[str]]
    diff: Mapped[dict[str, Any]]
    affected_scenarios: Mapped[list[str]]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- sandbox ---


class SandboxRun(TenantOwned, Base):
    """A sandbox run: one agent version against a scenario suite, `trials` times each, in a
    tool world made only of sandbox targets (`world`: spec source -> target). Where it is
    (`queued`, `running`, then `succeeded`, `failed` or `cancelled`), its progress, and at the
    end its scorecard. `suite` is the whole suite given (or the build's); `scenario_ids` the
    subset run (empty: all). `lease_owner`/`lease_expires_at` let one process at a time run it;
    `attempts` counts the runs started. Each finished trial is a `sandbox_trials` row."""

    __tablename__ = "sandbox_runs"
    __table_args__ = (Index("ix_sandbox_runs_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    agent_version: Mapped[int] = mapped_column(Integer)
    build_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # queued | running | succeeded | ...
    suite: Mapped[dict[str, Any]]
    suite_sha256: Mapped[str] = mapped_column(String(64))
    scenario_ids: Mapped[list[str]]
    trials: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    customer_model: Mapped[str | None] = mapped_column(String(200))
    judge_model: Mapped[str | None] = mapped_column(String(200))
    world: Mapped[dict[str, Any]]
    world_description: Mapped[dict[str, Any]]
    progress: Mapped[dict[str, Any]]
    scorecard: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SandboxTrial(TenantOwned, Base):
    """One finished trial of a sandbox run (a `TrialResult` as JSON in `result`), inserted
    once and never updated: a resumed run skips the trials it finds here. `position` orders
    them by the suite's scenario order, then trial number."""

    __tablename__ = "sandbox_trials"
    __table_args__ = (UniqueConstraint("run_id", "position"),)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("sandbox_runs.id", ondelete="CASCADE"), primary_key=True
    )
    scenario_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool]
    termination: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- review, deployment, audit, improvement ---


class AuditEntryRow(TenantOwned, Base):
    """One audit log entry; inserted, never updated (`deputy.lifecycle.audit`). `seq` is unique
    per workspace, so two writers cannot both extend the chain from the same entry."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("workspace_id", "seq"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(60))
    actor_kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(60), index=True)
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Proposal(TenantOwned, Base):
    """A candidate version offered as a change to the live one, with its evidence."""

    __tablename__ = "proposals"
    __table_args__ = (Index("ix_proposals_agent_status", "agent_id", "status"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    version: Mapped[int] = mapped_column(Integer)
    base_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    origin: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]]
    changes: Mapped[list[Any]] = mapped_column(JSON)
    diff_text: Mapped[str] = mapped_column(Text, default="")
    widens_permissions: Mapped[bool]
    widening_reasons: Mapped[list[str]]
    gate: Mapped[str] = mapped_column(String(20))
    gate_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(60))
    decided_at: Mapped[datetime | None]


class ProposalReview(TenantOwned, Base):
    __tablename__ = "proposal_reviews"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(
        ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(60))
    member_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(TenantOwned, Base):
    """What answers an agent's new conversations on one channel (or `all`): the live version
    and at most one canary."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("agent_id", "channel"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    live_version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer)
    canary_version: Mapped[int | None] = mapped_column(Integer)
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    canary_paused: Mapped[bool] = mapped_column(default=False)
    canary_started_at: Mapped[datetime | None]
    canary_proposal_id: Mapped[str | None] = mapped_column(String(40))
    canary_by_autopilot: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImprovementRun(TenantOwned, Base):
    """One pass of the improvement loop over an agent's recent conversations (a leased
    background job like builds and sandbox runs); `report` holds every step's result."""

    __tablename__ = "improvement_runs"
    __table_args__ = (Index("ix_improvement_runs_status", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    request: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    progress: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any] | None]
    proposal_ids: Mapped[list[str]]
    error: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
