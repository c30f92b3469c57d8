"""tau2-bench on Deputy: a domain directory's tasks as a scenario suite, run through the platform's
runtime and tool layer against a simulation of the domain's backend, scored with tau2's reward
semantics (`deputy.sandbox.evaluate`), reported per task.

Two modes:
- **oracle**: each task's agent is a scripted model that performs the task's reference actions
  (`deputy.sandbox.oracle`), through the same runtime, executor and OpenAPI client as any agent,
  and only the DB component counts. Every task scoring 1.0 proves that the harness, the backend
  and the evaluator agree with tau2's ground truth; `skip_write` drops each task's last write so
  the same check must then fail.
- **agent**: a real agent spec and model against simulated customers, k trials per task."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from deputy.domain.sandbox_results import Scorecard, TrialResult
from deputy.domain.scenarios import Scenario, ScenarioSuite, ToolCallExpectation
from deputy.domain.spec import AgentSpec
from deputy.llm.types import Model
from deputy.sandbox.models import ModelLimits
from deputy.sandbox.oracle import OracleCustomer, ReferenceActionsModel, oracle_spec
from deputy.sandbox.ports import Customer, WorldFactory
from deputy.sandbox.runner import MemoryResultStore, RunModels, RunProgress, run_suite
from deputy.sandbox.scorecard import scorecard
from deputy.sandbox.tau2 import Tau2Task, load_tau2_tasks, tau2_suite
from deputy.sandbox.trial import Price
from deputy.tools.base import ToolDefinition

ORACLE_SOURCE = "backend"


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskScore(_Report):
    id: str
    """The tau2 task id."""
    scenario_id: str
    reward: float
    """Mean reward over the task's trials."""
    rewards: tuple[float, ...]
    components: dict[str, float]
    """Each reward component's mean over the trials."""
    passed: int
    trials: int
    terminations: tuple[str, ...]
    failures: tuple[str, ...] = ()
    """What failed in the first failing trial (check details, or the error)."""


class BenchReport(_Report):
    benchmark: Literal["tau2"] = "tau2"
    domain: str
    mode: Literal["oracle", "agent"]
    agent: str
    model: str
    customer_model: str | None = None
    judge_model: str | None = None
    trials: int
    seed: int
    skip_write: bool = False
    mean_reward: float
    tasks: tuple[TaskScore, ...]
    scorecard: Scorecard
    seconds: float


def task_scores(
    suite: ScenarioSuite, task_ids: Sequence[str], results: Sequence[TrialResult]
) -> list[TaskScore]:
    """One score per task, in suite order (`task_ids` are the tau2 ids of its scenarios)."""
    scores: list[TaskScore] = []
    for scenario, task_id in zip(suite.scenarios, task_ids, strict=True):
        trials = sorted((r for r in results if r.scenario_id == scenario.id), key=lambda r: r.trial)
        if not trials:
            continue
        names = sorted({name for r in trials for name in r.components})
        failing = next((r for r in trials if not r.passed), None)
        failures: tuple[str, ...] = ()
        if failing is not None:
            failures = (
                (failing.error,)
                if failing.error
                else tuple(c.detail for c in failing.checks if not c.passed)
            )
        scores.append(
            TaskScore(
                id=task_id,
                scenario_id=scenario.id,
                reward=sum(r.reward for r in trials) / len(trials),
                rewards=tuple(r.reward for r in trials),
                components={
                    name: sum(r.components.get(name, 0.0) for r in trials) / len(trials)
                    for name in names
                },
                passed=sum(r.passed for r in trials),
                trials=len(trials),
                terminations=tuple(r.termination for r in trials),
                failures=failures[:10],
            )
        )
    return scores


async def world_operations(world: WorldFactory) -> list[ToolDefinition]:
    """The operations a simulated backend offers (its OpenAPI document)."""
    probe = oracle_spec(
        [ToolDefinition("probe", "probe", {"type": "object"}, "read")], source=ORACLE_SOURCE
    )
    opened = await world.open()
    try:
        client = opened.clients(probe).get(ORACLE_SOURCE)
        if client is None:
            raise ValueError(f"the backend {world.description!r} serves no OpenAPI tools")
        return await client.list_tools()
    finally:
        await opened.aclose()


def last_write(actions: Sequence[ToolCallExpectation], effects: Mapping[str, str]) -> int | None:
    """The index of the last reference action that changes the world (None: all are reads)."""
    writes = [i for i, a in enumerate(actions) if effects.get(a.tool, "write") != "read"]
    return writes[-1] if writes else None


def _db_only(scenario: Scenario) -> Scenario:
    assertions = scenario.assertions.model_copy(update={"reward_basis": ("DB",)})
    return scenario.model_copy(update={"assertions": assertions})


Progress = Callable[[RunProgress], Awaitable[None]]


def select_tasks(domain_dir: Path, split: str | None, task_ids: Sequence[str]) -> list[Tau2Task]:
    """The domain's tasks (of `split`), only `task_ids` when given (each must exist)."""
    tasks = load_tau2_tasks(domain_dir, split=split)
    if task_ids:
        known = {t.id for t in tasks}
        missing = [i for i in task_ids if i not in known]
        if missing:
            raise ValueError(f"no such tasks in {domain_dir}: {', '.join(missing)}")
        tasks = [t for t in tasks if t.id in task_ids]
    if not tasks:
        raise ValueError(f"no tasks to run in {domain_dir}")
    return tasks


async def tau2_oracle(
    domain_dir: Path,
    world: WorldFactory,
    *,
    split: str | None = None,
    task_ids: Sequence[str] = (),
    skip_write: bool = False,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> BenchReport:
    started = time.monotonic()
    tasks = [
        t for t in load_tau2_tasks(domain_dir, split=split) if not task_ids or t.id in task_ids
    ]
    suite = tau2_suite(tasks, name=f"tau2 {domain_dir.name} (oracle)")
    suite = suite.model_copy(update={"scenarios": tuple(_db_only(s) for s in suite.scenarios)})
    operations = await world_operations(world)
    effects = {op.operation: op.effect for op in operations}
    spec = oracle_spec(operations, source=ORACLE_SOURCE)
    by_id = {s.id: s for s in suite.scenarios}

    def agent_for(scenario: Scenario) -> Model:
        actions = by_id[scenario.id].assertions.reference_actions
        skip = last_write(actions, effects) if skip_write else None
        return ReferenceActionsModel(actions, skip=skip)

    def customer_for(scenario: Scenario, seed: int) -> Customer:
        return OracleCustomer()

    results = await run_suite(
        spec,
        suite,
        trials=1,
        models=RunModels(
            agent=ReferenceActionsModel(()), agent_for=agent_for, customer_for=customer_for
        ),
        world=world,
        store=MemoryResultStore(),
        concurrency=concurrency,
        limits=ModelLimits(default=max(concurrency, 1)),
        progress=progress,
    )
    scores = task_scores(suite, [t.id for t in tasks], results)
    return BenchReport(
        domain=domain_dir.name,
        mode="oracle",
        agent=spec.name,
        model="oracle (reference actions)",
        trials=1,
        seed=0,
        skip_write=skip_write,
        mean_reward=sum(s.reward for s in scores) / len(scores) if scores else 0.0,
        tasks=tuple(scores),
        scorecard=scorecard(suite, results),
        seconds=time.monotonic() - started,
    )


async def tau2_agent(
    domain_dir: Path,
    world: WorldFactory,
    spec: AgentSpec,
    models: RunModels,
    *,
    split: str | None = None,
    task_ids: Sequence[str] = (),
    trials: int = 1,
    seed: int = 0,
    concurrency: int = 4,
    limits: ModelLimits | None = None,
    price: Price | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    started = time.monotonic()
    tasks = [
        t for t in load_tau2_tasks(domain_dir, split=split) if not task_ids or t.id in task_ids
    ]
    suite = tau2_suite(tasks, name=f"tau2 {domain_dir.name}")
    results = await run_suite(
        spec,
        suite,
        trials=trials,
        models=models,
        world=world,
        store=MemoryResultStore(),
        seed=seed,
        concurrency=concurrency,
        limits=limits,
        price=price,
        progress=progress,
    )
    scores = task_scores(suite, [t.id for t in tasks], results)
    return BenchReport(
        domain=domain_dir.name,
        mode="agent",
        agent=spec.name,
        model=models.agent.name,
        customer_model=models.customer.name if models.customer else None,
        judge_model=models.judge.name if models.judge else None,
        trials=trials,
        seed=seed,
        mean_reward=sum(s.reward for s in scores) / len(scores) if scores else 0.0,
        tasks=tuple(scores),
        scorecard=scorecard(suite, results),
        seconds=time.monotonic() - started,
    )
