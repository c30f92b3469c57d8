"""The durable side of a sandbox run: its lease (`RunLease`: claim, renew, end — only while
held) and its trial rows (`TrialRows`, the runner's `ResultStore` on `sandbox_trials`), which
is what lets a resumed run skip the trials it finished before its process died."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from deputy.domain.sandbox import (
    OPEN,
    SandboxProgress,
    SandboxRunError,
    WorldConfig,
    selected_suite,
)
from deputy.domain.sandbox_results import Scorecard, TrialResult
from deputy.domain.scenarios import ScenarioSuite
from deputy.services.build_runs import run_db
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.sandbox")

RUN_ATTEMPTS = 3
"""Runs a sandbox run may start; one more claim fails it with `sandbox_interrupted`."""


@dataclass(frozen=True)
class ClaimedRun:
    """A run's inputs, as claimed for one start."""

    workspace_id: str
    run_id: str
    attempts: int
    agent_id: str
    version: int
    suite: ScenarioSuite
    trials: int
    seed: int
    concurrency: int
    model: str
    customer_model: str | None
    judge_model: str | None
    world: WorldConfig


@dataclass
class RunLease:
    """The right to run one sandbox run, held by `owner` until `seconds` after the last
    renewal. Every write after the claim checks it is still held."""

    db: Database
    workspace_id: str
    run_id: str
    seconds: float
    owner: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex}")
    lost: bool = False

    def claim(self) -> ClaimedRun | None:
        """Take the lease of an open run nobody holds: `running`, attempts + 1."""
        now = utcnow()
        run = t.SandboxRun
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(run)
                .where(
                    run.id == self.run_id,
                    run.status.in_(OPEN),
                    or_(run.lease_owner.is_(None), run.lease_expires_at < now),
                )
                .values(
                    status="running",
                    lease_owner=self.owner,
                    lease_expires_at=now + timedelta(seconds=self.seconds),
                    attempts=run.attempts + 1,
                    started_at=func.coalesce(run.started_at, now),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            row = session.scalars(select(run).where(run.id == self.run_id)).one()
            return ClaimedRun(
                workspace_id=row.workspace_id,
                run_id=row.id,
                attempts=row.attempts,
                agent_id=row.agent_id,
                version=row.agent_version,
                suite=selected_suite(ScenarioSuite.model_validate(row.suite), row.scenario_ids),
                trials=row.trials,
                seed=row.seed,
                concurrency=row.concurrency,
                model=row.model,
                customer_model=row.customer_model,
                judge_model=row.judge_model,
                world=WorldConfig.model_validate(row.world),
            )

    def _update(self, **values: object) -> bool:
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(t.SandboxRun)
                .where(t.SandboxRun.id == self.run_id, t.SandboxRun.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken, or the run cancelled)."""
        return self._update(lease_expires_at=utcnow() + timedelta(seconds=self.seconds))

    def release(self) -> None:
        self._update(lease_owner=None, lease_expires_at=None)

    def save_progress(self, progress: SandboxProgress) -> bool:
        return self._update(progress=progress.model_dump(mode="json"), updated_at=utcnow())

    def _end(self, **values: object) -> bool:
        now = utcnow()
        return self._update(
            lease_owner=None, lease_expires_at=None, updated_at=now, finished_at=now, **values
        )

    def succeed(self, card: Scorecard, progress: SandboxProgress | None) -> bool:
        values: dict[str, object] = {
            "status": "succeeded",
            "scorecard": card.model_dump(mode="json"),
            "error": None,
        }
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return self._end(**values)

    def fail(self, error: SandboxRunError, progress: SandboxProgress | None) -> bool:
        values: dict[str, object] = {"status": "failed", "error": error.model_dump(mode="json")}
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return self._end(**values)


class TrialRows:
    """The runner's `ResultStore` on `sandbox_trials`: each save is its own committed insert,
    and saving a trial already there (a run resumed by two processes) keeps the first."""

    def __init__(self, db: Database, claimed: ClaimedRun) -> None:
        self._db = db
        self._workspace_id = claimed.workspace_id
        self._run_id = claimed.run_id
        self._trials = claimed.trials
        self._order = {s.id: index for index, s in enumerate(claimed.suite.scenarios)}

    def _load(self) -> dict[tuple[str, int], TrialResult]:
        query = select(t.SandboxTrial.result).where(t.SandboxTrial.run_id == self._run_id)
        with self._db.tenant_session(self._workspace_id) as session:
            results = [TrialResult.model_validate(data) for data in session.scalars(query)]
        return {(r.scenario_id, r.trial): r for r in results}

    def _insert(self, result: TrialResult) -> None:
        row = t.SandboxTrial(
            workspace_id=self._workspace_id,
            run_id=self._run_id,
            scenario_id=result.scenario_id,
            trial=result.trial,
            position=self._order[result.scenario_id] * self._trials + result.trial,
            passed=result.passed,
            termination=result.termination,
            result=result.model_dump(mode="json"),
        )
        try:
            with self._db.tenant_session(self._workspace_id) as session:
                session.add(row)
        except IntegrityError:
            log.info(
                "sandbox trial already saved",
                extra={"run_id": self._run_id, "scenario_id": result.scenario_id},
            )

    async def finished(self) -> dict[tuple[str, int], TrialResult]:
        return await run_db(self._db, self._load)

    async def save(self, result: TrialResult) -> None:
        await run_db(self._db, self._insert, result)
