"""A sandbox run: every scenario of a suite, k trials each, against one agent version.

Trials run concurrently (`concurrency` conversations at once), while each model is held to its
own limit across the whole process (`ModelLimits`), so a run cannot flood a provider or queue
dozens of requests on the local model. Each finished trial is saved (`ResultStore.save`) before
it counts; a run started again after a crash asks the store what is finished and runs only the
rest. Trials are scheduled trial-major (every scenario's first trial before any second one), so
an interrupted run has an even first pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from deputy.domain.sandbox import MAX_TRIALS
from deputy.domain.sandbox_results import TrialResult
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.llm.types import Model
from deputy.runtime.ports import Retriever
from deputy.sandbox.models import ModelLimits
from deputy.sandbox.ports import Customer, WorldFactory
from deputy.sandbox.trial import Price, TrialSetup, run_trial, trial_seed

__all__ = [
    "MAX_TRIALS",
    "ModelLimits",
    "ResultStore",
    "RunModels",
    "RunProgress",
    "run_suite",
]


@dataclass(frozen=True)
class RunModels:
    agent: Model
    customer: Model | None = None
    """Plays simulated customers (scripted scenarios need none)."""
    judge: Model | None = None
    """Judges natural-language assertions (without one they fail, saying why)."""
    guard: Model | None = None
    """Answers the guardrails' model checks, as in production."""
    agent_for: Callable[[Scenario], Model] | None = None
    """An agent model per scenario instead of `agent` (the oracle)."""
    customer_for: Callable[[Scenario, int], Customer] | None = None
    """A customer per scenario and seed instead of the scripted or simulated one (the oracle)."""


@dataclass(frozen=True)
class RunProgress:
    done: int
    total: int
    passed: int
    errors: int
    last: TrialResult | None = None


class ResultStore(Protocol):
    async def finished(self) -> dict[tuple[str, int], TrialResult]:
        """Trials saved earlier (by scenario id and trial number): not run again."""
        ...

    async def save(self, result: TrialResult) -> None:
        """Persist one trial's result; it is durable when this returns."""
        ...


class MemoryResultStore:
    """A `ResultStore` in a dict (a run that need not survive its process)."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, int], TrialResult] = {}

    async def finished(self) -> dict[tuple[str, int], TrialResult]:
        return dict(self.results)

    async def save(self, result: TrialResult) -> None:
        self.results[(result.scenario_id, result.trial)] = result


def _limited_choice(
    choose: Callable[[Scenario], Model] | None, limits: ModelLimits
) -> Callable[[Scenario], Model] | None:
    if choose is None:
        return None
    chosen = choose

    def limited(scenario: Scenario) -> Model:
        return limits.wrap(chosen(scenario))

    return limited


async def run_suite(
    spec: AgentSpec,
    suite: ScenarioSuite,
    *,
    trials: int,
    models: RunModels,
    world: WorldFactory,
    store: ResultStore,
    seed: int = 0,
    concurrency: int = 4,
    limits: ModelLimits | None = None,
    retriever: Retriever | None = None,
    price: Price | None = None,
    progress: Callable[[RunProgress], Awaitable[None]] | None = None,
) -> list[TrialResult]:
    """Run what is not finished yet and return every result, ordered by the suite's scenario
    order, then trial number."""
    if not 1 <= trials <= MAX_TRIALS:
        raise ValueError(f"trials must be between 1 and {MAX_TRIALS}")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    limits = limits or ModelLimits()

    def limited(model: Model | None) -> Model | None:
        return limits.wrap(model) if model is not None else None

    setup = TrialSetup(
        spec=spec,
        agent=limits.wrap(models.agent),
        world=world,
        customer=limited(models.customer),
        judge=limited(models.judge),
        guard=limited(models.guard),
        retriever=retriever,
        price=price,
        agent_for=_limited_choice(models.agent_for, limits),
        customer_for=models.customer_for,
    )
    results = dict(await store.finished())
    wanted = {(s.id, t) for s in suite.scenarios for t in range(trials)}
    results = {key: value for key, value in results.items() if key in wanted}
    todo: list[tuple[Scenario, int]] = [
        (scenario, trial)
        for trial in range(trials)
        for scenario in suite.scenarios
        if (scenario.id, trial) not in results
    ]
    gate = asyncio.Semaphore(concurrency)
    counts = {
        "passed": sum(r.passed for r in results.values()),
        "errors": sum(r.termination == "error" for r in results.values()),
    }

    async def one(scenario: Scenario, trial: int) -> None:
        async with gate:
            result = await run_trial(setup, scenario, trial, trial_seed(seed, scenario.id, trial))
        await store.save(result)
        results[(scenario.id, trial)] = result
        counts["passed"] += result.passed
        counts["errors"] += result.termination == "error"
        if progress is not None:
            await progress(
                RunProgress(len(results), len(wanted), counts["passed"], counts["errors"], result)
            )

    if progress is not None:
        await progress(RunProgress(len(results), len(wanted), counts["passed"], counts["errors"]))
    async with asyncio.TaskGroup() as group:
        for scenario, trial in todo:
            group.create_task(one(scenario, trial))
    return [results[(s.id, t)] for s in suite.scenarios for t in range(trials)]
