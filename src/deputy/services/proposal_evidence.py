"""What a proposal carries besides its title: the spec diff from its base (or the whole first
version), the sandbox evidence the caller points at, checked and copied (the candidate's
scorecard, the A/B against the base computed as `services.sandbox.compare_runs` does, the cost
impact), and the gate. Everything here reads inside the caller's transaction and raises
before anything is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import InvalidRequest
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.domain.spec import SpecChange, diff_specs, render_diff_text, spec_from_data
from deputy.lifecycle.gate import (
    Gate,
    cost_impact,
    first_version_text,
    first_version_widening,
    sandbox_gate,
)
from deputy.sandbox.compare import compare
from deputy.services.sandbox import incomparable, trial_results
from deputy.store import tables as t

RunField = Literal["sandbox_run_id", "baseline_run_id"]


@dataclass(frozen=True)
class Assessment:
    """The computed part of a proposal."""

    evidence: lc.ProposalEvidence
    changes: list[SpecChange]
    diff_text: str
    widening_reasons: list[str]
    gate: Gate

    @property
    def widens_permissions(self) -> bool:
        return bool(self.widening_reasons)


def _succeeded_run(
    session: Session, field: RunField, run_id: str, agent_id: str, version: int
) -> t.SandboxRun:
    """The run `run_id`, which must be a succeeded run of `agent_id` at `version`."""
    details = {"field": field, "run_id": run_id}
    row = session.scalar(select(t.SandboxRun).where(t.SandboxRun.id == run_id))
    if row is None:
        raise InvalidRequest(f"{field}: there is no sandbox run {run_id}", details=details)
    if row.agent_id != agent_id or row.agent_version != version:
        raise InvalidRequest(
            f"{field}: sandbox run {run_id} ran {row.agent_id} version {row.agent_version}, "
            f"not {agent_id} version {version}",
            details={**details, "agent_id": row.agent_id, "version": row.agent_version},
        )
    if row.status != "succeeded" or row.scorecard is None:
        raise InvalidRequest(
            f"{field}: sandbox run {run_id} is {row.status}; only a succeeded run is evidence",
            details={**details, "status": row.status},
        )
    return row


def _comparison(session: Session, baseline: t.SandboxRun, candidate: t.SandboxRun) -> Comparison:
    """Candidate against baseline, as `services.sandbox.compare_runs` computes it."""
    if problem := incomparable(baseline, candidate):
        raise InvalidRequest(
            f"baseline run {baseline.id} and candidate run {candidate.id}: {problem}",
            details={"baseline_run_id": baseline.id, "sandbox_run_id": candidate.id},
        )
    return compare(trial_results(session, baseline.id), trial_results(session, candidate.id))


def _check_conversations(session: Session, agent_id: str, ids: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    found = set(
        session.scalars(
            select(t.Conversation.id).where(
                t.Conversation.id.in_(wanted), t.Conversation.agent_id == agent_id
            )
        )
    )
    missing = [cid for cid in wanted if cid not in found]
    if missing:
        raise InvalidRequest(
            f"the agent has no conversation {', '.join(missing)}",
            details={"field": "conversation_ids", "conversation_ids": missing},
        )


def evidence(
    session: Session, body: lc.ProposalCreate, base_version: int | None
) -> lc.ProposalEvidence:
    """The evidence of `body`, checked: its runs (succeeded, of the right agent and versions,
    comparable) and its conversations (the agent's)."""
    agent_id = body.agent_id
    if body.baseline_run_id is not None and body.sandbox_run_id is None:
        raise InvalidRequest(
            "a baseline run is compared with the candidate's run: give sandbox_run_id too",
            details={"field": "sandbox_run_id"},
        )
    if body.baseline_run_id is not None and base_version is None:
        raise InvalidRequest(
            "a first version has no base version to compare with: leave out baseline_run_id",
            details={"field": "baseline_run_id"},
        )
    _check_conversations(session, agent_id, body.conversation_ids)
    candidate = baseline = None
    if body.sandbox_run_id is not None:
        candidate = _succeeded_run(
            session, "sandbox_run_id", body.sandbox_run_id, agent_id, body.version
        )
    if body.baseline_run_id is not None and base_version is not None:
        baseline = _succeeded_run(
            session, "baseline_run_id", body.baseline_run_id, agent_id, base_version
        )
    scorecard = Scorecard.model_validate(candidate.scorecard) if candidate else None
    before = Scorecard.model_validate(baseline.scorecard) if baseline else None
    return lc.ProposalEvidence(
        sandbox_run_id=body.sandbox_run_id,
        baseline_run_id=body.baseline_run_id,
        scorecard=scorecard,
        comparison=(_comparison(session, baseline, candidate) if baseline and candidate else None),
        conversation_ids=list(dict.fromkeys(body.conversation_ids)),
        regression_scenario_ids=list(dict.fromkeys(body.regression_scenario_ids)),
        cost=cost_impact(before, scorecard),
    )


def assess(
    session: Session,
    body: lc.ProposalCreate,
    candidate_spec: dict[str, Any],
    base_version: int | None,
    base_spec: dict[str, Any] | None,
) -> Assessment:
    """The diff (or the first version's summary), the evidence and the gate of a proposal."""
    candidate = spec_from_data(candidate_spec)
    if base_spec is None:
        changes: list[SpecChange] = []
        text = first_version_text(candidate)
        reasons = first_version_widening(candidate)
    else:
        diff = diff_specs(spec_from_data(base_spec), candidate)
        changes = list(diff.changes)
        text = render_diff_text(diff)
        reasons = [c.widens_because for c in diff.changes if c.widens_because is not None]
    found = evidence(session, body, base_version)
    gate = sandbox_gate(found.scorecard, found.comparison, base_version=base_version)
    return Assessment(found, changes, text, reasons, gate)
