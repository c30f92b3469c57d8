"""The improvement loop's way out: a candidate stored as an undeployed version and proven
against the live version by two sandbox runs (same suite, same seed), and a candidate that does
not regress filed as a proposal (`services.proposals.file_proposal`) and offered to autonomy
(`services.autopilot.autopilot_canary`: a canary only for a gate-passed, non-widening change
under `auto_with_rollback`). Both run as the platform itself (`system:improvement`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from deputy.domain import sandbox as s
from deputy.domain.errors import Conflict, DeputyError
from deputy.domain.improvement import (
    Candidate,
    FailureCluster,
)
from deputy.domain.lifecycle import SYSTEM_IMPROVEMENT, ProposalCreate
from deputy.domain.resources import VersionCreate
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.improve.loop import Validation
from deputy.services import agents, autopilot, proposals, sandbox
from deputy.services.improvement_ports import RunInputs
from deputy.services.leased_jobs import run_db
from deputy.services.platform import Platform
from deputy.store import tables as t

log = logging.getLogger("deputy.improvement")

SANDBOX_POLL_SECONDS = 0.5
"""How often a validation looks at its two sandbox runs."""


def _stored_version(platform: Platform, inputs: RunInputs, spec: AgentSpec, note: str) -> int:
    """The candidate as a version of the agent: an existing version with the same spec (a run
    started over finds the one it stored before), else a new one."""
    data, digest = agents.canonical_json(spec)
    with platform.db.tenant_session(inputs.workspace_id) as session:
        same = session.scalar(
            select(t.AgentVersion.number).where(
                t.AgentVersion.agent_id == inputs.agent_id, t.AgentVersion.spec_sha256 == digest
            )
        )
    if same is not None:
        return same
    body = VersionCreate(spec=data, note=note)
    return agents.create_version(platform, inputs.principal(), inputs.agent_id, body).number


def run_seed(run_id: str) -> int:
    """One seed per improvement run: both arms meet the same customers."""
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 2**31


@dataclass
class SandboxValidator:
    """`deputy.improve.loop.Validator` on the platform's sandbox (see the module)."""

    platform: Platform
    inputs: RunInputs
    live_version: int

    async def validate(self, candidate: AgentSpec, suite: ScenarioSuite, note: str) -> Validation:
        inputs = self.inputs
        note = f"Improvement run {inputs.run_id}: {note}"[:4000]
        version = await run_db(
            self.platform.db, _stored_version, self.platform, inputs, candidate, note
        )
        started: list[str] = []
        try:
            for number in (self.live_version, version):
                run = await sandbox.create_run(
                    self.platform, inputs.principal(), self._run(number, suite)
                )
                started.append(run.id)
            baseline, challenger = await asyncio.gather(*(self._finished(i) for i in started))
        except BaseException:
            await self._cancel(started)
            raise
        comparison = await run_db(
            self.platform.db,
            sandbox.compare_runs,
            self.platform,
            inputs.principal(),
            baseline.id,
            challenger.id,
        )
        return Validation(version, baseline.id, challenger.id, comparison)

    def _run(self, version: int, suite: ScenarioSuite) -> s.SandboxRunCreate:
        request, model = self.inputs.request, self.inputs.model
        return s.SandboxRunCreate(
            agent_id=self.inputs.agent_id,
            version=version,
            suite=suite,
            trials=request.trials,
            seed=run_seed(self.inputs.run_id),
            model=model,
            customer_model=model,
            judge_model=model,
            world=request.world,
        )

    async def _finished(self, run_id: str) -> s.SandboxRun:
        """Wait for a run (it runs in this process's sandbox runner); it must succeed."""
        principal = self.inputs.principal()
        while True:
            run = await run_db(self.platform.db, sandbox.get_run, self.platform, principal, run_id)
            if run.status == "succeeded":
                return run
            if run.status in s.FINISHED:
                why = run.error.message if run.error else "it was cancelled"
                raise Conflict(
                    f"sandbox run {run_id} of version {run.version} {run.status}: {why}",
                    details={"run_id": run_id, "status": run.status},
                )
            await asyncio.sleep(SANDBOX_POLL_SECONDS)

    async def _cancel(self, run_ids: Sequence[str]) -> None:
        """Stop the runs of a validation that ended early: a run started over makes new ones."""
        for run_id in run_ids:
            with contextlib.suppress(DeputyError):
                await asyncio.shield(
                    sandbox.cancel_run(self.platform, self.inputs.principal(), run_id)
                )


# ---- proposals ----------------------------------------------------------------------------


def _open_proposal(platform: Platform, inputs: RunInputs, version: int) -> str | None:
    """A proposal the loop filed for this version before (a run started over)."""
    with platform.db.tenant_session(inputs.workspace_id) as session:
        return session.scalar(
            select(t.Proposal.id).where(
                t.Proposal.agent_id == inputs.agent_id,
                t.Proposal.version == version,
                t.Proposal.origin == "improvement",
                t.Proposal.status.in_(("open", "changes_requested")),
            )
        )


@dataclass
class ProposalFiler:
    """`deputy.improve.loop.ProposalSink`: files a validated candidate as a proposal, then
    offers it to autonomy; `filed` keeps the proposal ids."""

    platform: Platform
    inputs: RunInputs
    live_version: int
    filed: list[str] = field(default_factory=list)

    async def file(self, candidate: Candidate, cluster: FailureCluster, rationale: str) -> str:
        inputs = self.inputs
        if candidate.version is None:
            raise ValueError("a candidate is filed once it is a stored version")
        earlier = await run_db(
            self.platform.db, _open_proposal, self.platform, inputs, candidate.version
        )
        proposal_id = earlier or await self._file(candidate, cluster, rationale)
        self.filed.append(proposal_id)
        return proposal_id

    async def _file(self, candidate: Candidate, cluster: FailureCluster, rationale: str) -> str:
        inputs = self.inputs
        assert candidate.version is not None
        window = f"{inputs.window_start:%Y-%m-%d %H:%M} to {inputs.window_end:%Y-%m-%d %H:%M} UTC"
        body = ProposalCreate(
            agent_id=inputs.agent_id,
            version=candidate.version,
            base_version=self.live_version,
            title=f"{cluster.label} ({cluster.cause.replace('_', ' ')})"[:200],
            rationale=(
                f"{rationale}\n\nFiled by improvement run {inputs.run_id} from "
                f"{len(cluster.conversation_ids)} failing conversations ({window})."
            )[:20_000],
            sandbox_run_id=candidate.candidate_run_id,
            baseline_run_id=candidate.baseline_run_id,
            conversation_ids=list(cluster.conversation_ids[:200]),
            regression_scenario_ids=list(candidate.regression_scenario_ids[:200]),
        )
        proposal = await run_db(
            self.platform.db,
            lambda: proposals.file_proposal(
                self.platform,
                inputs.workspace_id,
                body,
                origin="improvement",
                actor=SYSTEM_IMPROVEMENT,
                improvement_run_id=inputs.run_id,
            ),
        )
        try:
            await run_db(
                self.platform.db,
                autopilot.autopilot_canary,
                self.platform,
                inputs.workspace_id,
                proposal.id,
            )
        except Exception:  # the proposal stands; it waits for a reviewer
            log.warning(
                "improvement run: autonomy could not consider the proposal",
                extra={"improvement_run_id": inputs.run_id, "proposal_id": proposal.id},
                exc_info=True,
            )
        return proposal.id
