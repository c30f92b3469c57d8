"""The sandbox runner: a suite x k trials through the real runtime and tool executor, against the
retail simulation, with per-model concurrency limits, errors kept as results, and resumption
that runs only the trials not saved yet."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec

import pytest
from examples.retail.auth import AuthConfig
from examples.retail.rest import create_app
from examples.retail.sandbox import world_factory
from examples.retail.store import RetailStore
from fastapi import FastAPI

from deputy.domain.sandbox_results import TrialResult
from deputy.domain.scenarios import CustomerBrief, Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.llm.types import Model, ModelRequest
from deputy.sandbox.bench import world_operations
from deputy.sandbox.models import ModelLimits
from deputy.sandbox.oracle import OracleCustomer, ReferenceActionsModel, oracle_spec
from deputy.sandbox.ports import Customer, ToolWorld
from deputy.sandbox.runner import MemoryResultStore, RunModels, RunProgress, run_suite
from deputy.sandbox.tau2 import load_tau2_tasks, tau2_suite
from deputy.sandbox.trial import trial_seed
from deputy.sandbox.worlds import AsgiWorldFactory
from deputy.testing import FunctionModel
from tests.processes import SHARED_DATA

RETAIL = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
WORLD = world_factory()
P = ParamSpec("P")


def synchronously(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def _tasks(*ids: str) -> ScenarioSuite:
    tasks = [t for t in load_tau2_tasks(RETAIL) if t.id in ids]
    suite = tau2_suite(tasks, name="retail")
    only_db = tuple(
        s.model_copy(
            update={"assertions": s.assertions.model_copy(update={"reward_basis": ("DB",)})}
        )
        for s in suite.scenarios
    )
    return suite.model_copy(update={"scenarios": only_db})


async def _oracle_spec() -> AgentSpec:
    return oracle_spec(await world_operations(WORLD))


class Oracle:
    """The oracle's per-scenario agent and customer, counting which trials asked for them."""

    def __init__(self, suite: ScenarioSuite) -> None:
        self.actions = {s.id: s.assertions.reference_actions for s in suite.scenarios}
        self.started: list[str] = []

    def agent_for(self, scenario: Scenario) -> Model:
        self.started.append(scenario.id)
        return ReferenceActionsModel(self.actions[scenario.id])

    def customer_for(self, scenario: Scenario, seed: int) -> Customer:
        return OracleCustomer()

    def models(self) -> RunModels:
        return RunModels(
            agent=ReferenceActionsModel(()),
            agent_for=self.agent_for,
            customer_for=self.customer_for,
        )


@synchronously
async def test_every_trial_runs_in_its_own_world_and_the_oracle_passes() -> None:
    suite = _tasks("0", "41")
    oracle = Oracle(suite)
    seen: list[RunProgress] = []

    async def progress(update: RunProgress) -> None:
        seen.append(update)

    results = await run_suite(
        await _oracle_spec(),
        suite,
        trials=2,
        models=oracle.models(),
        world=WORLD,
        store=MemoryResultStore(),
        seed=7,
        progress=progress,
    )
    assert [(r.scenario_id, r.trial) for r in results] == [
        ("task_0", 0),
        ("task_0", 1),
        ("task_41", 0),
        ("task_41", 1),
    ]
    # each trial wrote to a fresh copy: the second trial of a task could do the same writes again
    assert all(r.passed and r.components == {"DB": 1.0} for r in results), [
        (r.scenario_id, r.error, [c.detail for c in r.checks]) for r in results
    ]
    exchange = [c for c in results[0].tool_calls if c.tool == "exchange_delivered_order_items"]
    assert len(exchange) == 2 and [c.ok for c in exchange] == [False, True]  # confirm, then run
    assert exchange[0].code == "confirmation_required"
    assert results[0].termination == "customer_stop"
    assert results[0].turn_seconds and results[0].agent_usage.calls > 0
    assert results[0].seed == trial_seed(7, "task_0", 0) != results[1].seed
    assert (seen[0].done, seen[-1].done, seen[-1].total, seen[-1].passed) == (0, 4, 4, 4)


@synchronously
async def test_a_resumed_run_runs_only_the_trials_not_saved() -> None:
    suite = _tasks("0", "41")
    spec = await _oracle_spec()
    store = MemoryResultStore()
    first = Oracle(suite)
    earlier = await run_suite(
        spec, suite, trials=1, models=first.models(), world=WORLD, store=store
    )
    assert sorted(first.started) == ["task_0", "task_41"]
    del store.results[("task_41", 0)]  # as if the process died before this trial was saved

    again = Oracle(suite)
    results = await run_suite(
        spec, suite, trials=2, models=again.models(), world=WORLD, store=store
    )
    assert sorted(again.started) == ["task_0", "task_41", "task_41"]
    assert results[0] is earlier[0]  # the saved trial is reused as it was
    assert [(r.scenario_id, r.trial) for r in results] == [
        ("task_0", 0),
        ("task_0", 1),
        ("task_41", 0),
        ("task_41", 1),
    ]
    assert all(r.passed for r in results)


def _chat_suite(count: int) -> ScenarioSuite:
    brief = CustomerBrief(persona="A customer.", goal="Ask about opening hours.")
    return ScenarioSuite(
        name="chat",
        scenarios=tuple(
            Scenario(
                id=f"ask_{n}",
                title=f"Question {n}",
                customer=brief,
                script=("When are you open?", "Thanks."),
            )
            for n in range(count)
        ),
    )


@pytest.mark.parametrize("limit", [1, 3])
@synchronously
async def test_a_model_is_held_to_its_concurrency_limit(limit: int) -> None:
    in_flight = 0
    most = 0

    async def answer(request: ModelRequest) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "We are open from 9 to 5."

    results = await run_suite(
        await _oracle_spec(),
        _chat_suite(6),
        trials=1,
        models=RunModels(agent=FunctionModel(answer, name="test:agent")),
        world=WORLD,
        store=MemoryResultStore(),
        concurrency=6,
        limits=ModelLimits(default=4, per_model={"test": limit}),
    )
    assert all(r.termination == "customer_stop" and r.passed for r in results), results
    assert all(r.turns == 2 and r.transcript[-1].text.startswith("We are open") for r in results)
    assert most == limit


class BrokenWorld:
    description = "a backend that is down"

    async def open(self) -> ToolWorld:
        raise RuntimeError("the backend is down")


@synchronously
async def test_a_trial_that_cannot_run_is_reported_as_an_error() -> None:
    results = await run_suite(
        await _oracle_spec(),
        _chat_suite(2),
        trials=1,
        models=RunModels(agent=FunctionModel(lambda request: "hello")),
        world=BrokenWorld(),
        store=MemoryResultStore(),
    )
    assert [r.termination for r in results] == ["error", "error"]
    assert all(not r.passed and "the backend is down" in (r.error or "") for r in results)


@synchronously
async def test_a_simulated_customer_needs_a_customer_model() -> None:
    suite = _chat_suite(1)
    simulated = suite.scenarios[0].model_copy(update={"script": ()})
    [result] = await run_suite(
        await _oracle_spec(),
        suite.model_copy(update={"scenarios": (simulated,)}),
        trials=1,
        models=RunModels(agent=FunctionModel(lambda request: "hello")),
        world=WORLD,
        store=MemoryResultStore(),
    )
    assert result.termination == "error" and "customer model" in (result.error or "")


@synchronously
async def test_a_tool_the_world_does_not_serve_is_refused_and_never_sent(tmp_path: Path) -> None:
    """The agent's tools bound to a `production` source; the sandbox world serves `backend`
    only: the call is refused as unavailable, nothing leaves, the world is unchanged."""
    data = json.loads((RETAIL / "db.json").read_text())
    stores: list[RetailStore] = []

    def app() -> FastAPI:
        stores.append(RetailStore.from_data(data))
        return create_app(stores[-1], AuthConfig(mode="none"))

    world = AsgiWorldFactory(app, description="backend only", sources=["backend"])
    spec = oracle_spec(await world_operations(WORLD), source="production")
    suite = _tasks("41")
    oracle = Oracle(suite)
    [result] = await run_suite(
        spec, suite, trials=1, models=oracle.models(), world=world, store=MemoryResultStore()
    )
    # the executor has no client for `production`: every call is refused before leaving
    assert result.tool_calls and {c.code for c in result.tool_calls} == {"unavailable"}
    assert not result.passed and result.components == {"DB": 0.0}
    trial_world, reference_world = stores
    assert trial_world.sha256() == RetailStore.from_data(data).sha256()
    assert reference_world.sha256() != trial_world.sha256()


def test_trial_results_round_trip_as_json() -> None:
    result = TrialResult(
        scenario_id="s", trial=0, seed=1, reward=1.0, passed=True, termination="customer_stop"
    )
    assert TrialResult.model_validate_json(result.model_dump_json()) == result
