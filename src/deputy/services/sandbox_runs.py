"""Running sandbox runs in the background, durably, and resuming them where they stopped.

A run is acknowledged once its row is committed `queued` (`deputy.services.sandbox`); it then
runs as a leased job of the server process, as builds do (`deputy.services.leased_jobs`): the
claim sets it `running` and counts an attempt, the lease is renewed while it runs, and the end
is written only while the lease is still held: `succeeded` with the scorecard, or `failed` with
a stable code. A cancelled run (`cancel`) loses its lease, so its process stops it.

Unlike a build, a run is not started again from the start: each finished trial is a committed
`sandbox_trials` row (`TrialRows`, the runner's `ResultStore`), and a resumed run skips those.
`keep_resuming_sandbox_runs` finds runs whose lease expired (or was never taken); after
`RUN_ATTEMPTS` starts without an end, the run fails with `sandbox_interrupted`. Progress is
written at most every `PROGRESS_INTERVAL` seconds.

Trials run in memory (`deputy.sandbox.trial`): a run writes no conversation, customer, memory
or tool-call row; its models' usage is metered to the workspace, the agent and the run."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

import anyio
from sqlalchemy import select

from deputy.domain.sandbox import SandboxProgress, SandboxRunError
from deputy.domain.sandbox_results import Scorecard
from deputy.domain.spec import AgentSpec, spec_from_data
from deputy.llm.types import Model
from deputy.llm.types import Usage as LlmUsage
from deputy.sandbox.models import AttributedModel
from deputy.sandbox.runner import ModelLimits, RunModels, RunProgress, run_suite
from deputy.sandbox.scorecard import scorecard
from deputy.services.conversation_runtime import KnowledgeRetriever
from deputy.services.leased_jobs import JobErrors, JobKind, JobLimits, JobNames, LeasedJobs, run_db
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.sandbox_leases import RUN_ATTEMPTS, RUN_ROWS, ClaimedRun, TrialRows
from deputy.services.sandbox_worlds import open_world
from deputy.store import tables as t
from deputy.store.db import Database

log = logging.getLogger("deputy.sandbox")

PROGRESS_INTERVAL = 0.5
"""Seconds between two progress writes."""
MAX_PARALLEL_RUNS = 2
"""Runs one process works on at once (each holds up to `concurrency` conversations; the
models' own limits are shared by all of them)."""
MODEL_LIMIT = 4
"""Requests in flight per hosted model across the process's runs (local models: the
`sandbox_local_concurrency` setting)."""


_LIMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ModelLimits] = (
    weakref.WeakKeyDictionary()
)


def model_limits(platform: Platform) -> ModelLimits:
    """The process's per-model limits, shared by every run it works on."""
    local = platform.settings.sandbox_local_concurrency
    return _LIMITS.setdefault(
        asyncio.get_running_loop(), ModelLimits(MODEL_LIMIT, {"local": local})
    )


def _version_spec(db: Database, claimed: ClaimedRun) -> AgentSpec:
    query = select(t.AgentVersion.spec).where(
        t.AgentVersion.agent_id == claimed.agent_id, t.AgentVersion.number == claimed.version
    )
    with db.tenant_session(claimed.workspace_id) as session:
        return spec_from_data(session.scalars(query).one())


def _price(platform: Platform) -> Callable[[str, LlmUsage], float | None]:
    prices = platform.models.base_settings.prices

    def price(model: str, usage: LlmUsage) -> float | None:
        cost = prices.cost(model, model.partition(":")[0], usage)
        return None if cost is None else float(cost)

    return price


async def _models(platform: Platform, claimed: ClaimedRun) -> RunModels:
    metadata = {
        "workspace_id": claimed.workspace_id,
        "agent_id": claimed.agent_id,
        "conversation_id": claimed.run_id,
    }

    async def resolved(name: str | None) -> Model | None:
        if name is None:
            return None
        model = await anyio.to_thread.run_sync(resolve_model, platform, claimed.workspace_id, name)
        return AttributedModel(model, metadata)

    agent = await resolved(claimed.model)
    assert agent is not None
    return RunModels(
        agent=agent,
        customer=await resolved(claimed.customer_model),
        judge=await resolved(claimed.judge_model),
    )


async def _execute(
    platform: Platform, claimed: ClaimedRun, report: Callable[[SandboxProgress], None]
) -> Scorecard:
    spec = await run_db(platform.db, _version_spec, platform.db, claimed)
    models = await _models(platform, claimed)
    world = await anyio.to_thread.run_sync(
        open_world, platform, claimed.workspace_id, spec, claimed.world
    )

    async def progress(counts: RunProgress) -> None:
        report(
            SandboxProgress(
                done=counts.done, total=counts.total, passed=counts.passed, errors=counts.errors
            )
        )

    results = await run_suite(
        spec,
        claimed.suite,
        trials=claimed.trials,
        models=models,
        world=world,
        store=TrialRows(platform.db, claimed),
        seed=claimed.seed,
        concurrency=claimed.concurrency,
        limits=model_limits(platform),
        retriever=KnowledgeRetriever(
            platform.knowledge, claimed.workspace_id, claimed.agent_id, spec.knowledge.retrieval
        ),
        price=_price(platform),
        progress=progress,
    )
    return scorecard(claimed.suite, results)


SANDBOX_RUNS = LeasedJobs(
    JobKind(
        JobNames(log, "sandbox run", id_field="run_id", count_field="runs"),
        RUN_ROWS,
        _execute,
        JobErrors(SandboxRunError, subject="run", interrupted_code="sandbox_interrupted"),
        JobLimits(RUN_ATTEMPTS, MAX_PARALLEL_RUNS, PROGRESS_INTERVAL),
    )
)
"""The sandbox runs this process works on."""
start_run = SANDBOX_RUNS.start
stop_local = SANDBOX_RUNS.stop
stop_sandbox_runs = SANDBOX_RUNS.stop_all
resume_sandbox_runs = SANDBOX_RUNS.resume
keep_resuming_sandbox_runs = SANDBOX_RUNS.keep_resuming
