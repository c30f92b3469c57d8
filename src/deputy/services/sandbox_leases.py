"""The durable side of a sandbox run: its row as a leased job (`RUN_ROWS`, for
`deputy.services.leased_jobs`: a claim reads the run's inputs, `ClaimedRun`, and keeps when the
run first started; a success writes the scorecard) and its trial rows (`TrialRows`, the
runner's `ResultStore` on `sandbox_trials`), which is what lets a resumed run skip the trials it
finished before its process died."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from deputy.domain.sandbox import OPEN, WorldConfig, selected_suite
from deputy.domain.sandbox_results import Scorecard, TrialResult
from deputy.domain.scenarios import ScenarioSuite
from deputy.services.leased_jobs import LeasedRows, run_db
from deputy.store import tables as t
from deputy.store.db import Database

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


def _claimed_run(row: t.SandboxRun) -> ClaimedRun:
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


def _first_start(now: datetime) -> dict[str, object]:
    """A claim keeps when the run first started."""
    return {"started_at": func.coalesce(t.SandboxRun.started_at, now)}


def _scorecard_values(card: Scorecard) -> dict[str, object]:
    return {"scorecard": card.model_dump(mode="json")}


RUN_ROWS = LeasedRows(t.SandboxRun, OPEN, _claimed_run, _scorecard_values, _first_start)
"""Sandbox runs as leased jobs: open while `queued` or `running`."""


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
