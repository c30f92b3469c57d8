"""Running sandbox runs in the background, durably, and resuming them where they stopped.

A run is acknowledged once its row is committed `queued` (`deputy.services.sandbox`); it then
runs as an asyncio task of the server process under a lease on its row, as builds do
(`deputy.services.build_runs`): the claim sets it `running` and counts an attempt, the lease is
renewed while it runs, and the end is written only while the lease is still held: `succeeded`
with the scorecard, or `failed` with a stable code. A cancelled run (`cancel`) loses its lease,
so its process stops it.

Unlike a build, a run is not started again from the start: each finished trial is a committed
`sandbox_trials` row (`TrialRows`, the runner's `ResultStore`), and a resumed run skips those.
`keep_resuming_sandbox_runs` finds runs whose lease expired (or was never taken); after
`RUN_ATTEMPTS` starts without an end, the run fails with `sandbox_interrupted`.

Trials run in memory (`deputy.sandbox.trial`): a run writes no conversation, customer, memory
or tool-call row; its models' usage is metered to the workspace, the agent and the run."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

import anyio
from sqlalchemy import or_, select

from deputy.domain.errors import DeputyError
from deputy.domain.sandbox import (
    OPEN,
    SandboxProgress,
    SandboxRunError,
)
from deputy.domain.sandbox_results import Scorecard
from deputy.domain.spec import AgentSpec, spec_from_data
from deputy.llm.types import Model
from deputy.llm.types import Usage as LlmUsage
from deputy.sandbox.models import AttributedModel
from deputy.sandbox.runner import ModelLimits, RunModels, RunProgress, run_suite
from deputy.sandbox.scorecard import scorecard
from deputy.services.build_runs import run_db, stop_tasks
from deputy.services.conversation_runtime import KnowledgeRetriever
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.sandbox_leases import RUN_ATTEMPTS, ClaimedRun, RunLease, TrialRows
from deputy.services.sandbox_worlds import open_world
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.sandbox")

PROGRESS_INTERVAL = 0.5
"""Seconds between two progress writes."""
MAX_PARALLEL_RUNS = 2
"""Runs one process works on at once (each holds up to `concurrency` conversations; the
models' own limits are shared by all of them)."""
MODEL_LIMIT = 4
"""Requests in flight per hosted model across the process's runs (local models: the
`sandbox_local_concurrency` setting)."""


class ProgressWriter:
    """The runner's progress callback: keeps the latest counts, and `run` persists them at most
    every `interval` seconds."""

    def __init__(
        self, save: Callable[[SandboxProgress], Awaitable[object]], interval: float
    ) -> None:
        self._save = save
        self._interval = interval
        self._wake = asyncio.Event()
        self.latest: SandboxProgress | None = None

    async def __call__(self, progress: RunProgress) -> None:
        self.latest = SandboxProgress(
            done=progress.done, total=progress.total, passed=progress.passed, errors=progress.errors
        )
        self._wake.set()

    async def run(self) -> None:
        written: SandboxProgress | None = None
        while True:
            await self._wake.wait()
            self._wake.clear()
            current = self.latest
            if current is not None and current != written:
                await self._save(current)
                written = current
            await asyncio.sleep(self._interval)


def error_of(exc: Exception) -> SandboxRunError:
    """A failed run's stable code and message: a DeputyError's own (also when the runner's
    task group wraps it), else `internal_error`."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, DeputyError):
        return SandboxRunError(code=exc.code, message=exc.message[:2000])
    return SandboxRunError(code="internal_error", message=f"the run failed: {type(exc).__name__}")


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


async def _execute(platform: Platform, claimed: ClaimedRun, progress: ProgressWriter) -> Scorecard:
    spec = await run_db(platform.db, _version_spec, platform.db, claimed)
    models = await _models(platform, claimed)
    world = await anyio.to_thread.run_sync(
        open_world, platform, claimed.workspace_id, spec, claimed.world
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


async def _keep_renewed(lease: RunLease, work: asyncio.Task[Scorecard]) -> None:
    """Renew every third of the lease; when it is lost (taken by another process, or the run
    cancelled), stop the work."""
    while True:
        await asyncio.sleep(lease.seconds / 3)
        if not await run_db(lease.db, lease.renew):
            log.warning("sandbox run lease lost", extra={"run_id": lease.run_id})
            lease.lost = True
            work.cancel()
            return


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def run_sandbox(platform: Platform, workspace_id: str, run_id: str) -> None:
    """Run (or resume) one sandbox run if no live process holds it, and record how it ended;
    at most `MAX_PARALLEL_RUNS` at a time in this process (the others wait, still free for
    another process to take). Never raises but for cancellation (which releases the lease, so
    the run is resumed)."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(MAX_PARALLEL_RUNS))
    async with slots:
        await _run(platform, workspace_id, run_id)


async def _run(platform: Platform, workspace_id: str, run_id: str) -> None:
    db = platform.db
    lease = RunLease(db, workspace_id, run_id, platform.settings.turn_lease_seconds)
    claimed = await run_db(db, lease.claim)
    if claimed is None:
        return
    if claimed.attempts > RUN_ATTEMPTS:
        interrupted = SandboxRunError(
            code="sandbox_interrupted",
            message=f"the run was interrupted {RUN_ATTEMPTS} times and given up",
        )
        await run_db(db, lease.fail, interrupted, None)
        return
    progress = ProgressWriter(
        lambda value: run_db(db, lease.save_progress, value), PROGRESS_INTERVAL
    )
    writer = asyncio.create_task(progress.run())
    work = asyncio.create_task(_execute(platform, claimed, progress))
    renewing = asyncio.create_task(_keep_renewed(lease, work))
    try:
        card = await work
    except asyncio.CancelledError:
        await stop_tasks(writer, renewing)
        current = asyncio.current_task()
        if lease.lost and (current is None or not current.cancelling()):
            return  # another process has the run now, or it was cancelled
        await run_db(db, lease.release)
        raise
    except Exception as exc:
        await stop_tasks(writer, renewing)
        log.warning("sandbox run failed", extra={"run_id": run_id}, exc_info=True)
        await run_db(db, lease.fail, error_of(exc), progress.latest)
        return
    await stop_tasks(writer, renewing)
    if not await run_db(db, lease.succeed, card, progress.latest):
        log.warning("sandbox run finished after its lease was lost", extra={"run_id": run_id})


_RUNNING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def start_run(platform: Platform, workspace_id: str, run_id: str) -> None:
    """Run it in the background of this process (once: a run it already runs is left to it)."""
    running = _RUNNING.setdefault(asyncio.get_running_loop(), {})
    if run_id in running:
        return
    task = asyncio.create_task(run_sandbox(platform, workspace_id, run_id))
    running[run_id] = task
    task.add_done_callback(lambda _: running.pop(run_id, None))


async def stop_local(run_id: str) -> None:
    """Stop the run if this process works on it (it was cancelled)."""
    task = _RUNNING.get(asyncio.get_running_loop(), {}).get(run_id)
    if task is not None:
        await stop_tasks(task)


async def stop_sandbox_runs() -> None:
    """Cancel the runs this process works on (at shutdown); their leases are released, so the
    next process to look resumes them."""
    await stop_tasks(*_RUNNING.get(asyncio.get_running_loop(), {}).values())


def _orphaned(db: Database) -> list[tuple[str, str]]:
    """(workspace, run) of every open run nobody holds."""
    now = utcnow()
    run = t.SandboxRun
    query = select(run.workspace_id, run.id).where(
        run.status.in_(OPEN), or_(run.lease_owner.is_(None), run.lease_expires_at < now)
    )
    with db.session() as session:
        return [(str(ws), str(rid)) for ws, rid in session.execute(query)]


async def resume_sandbox_runs(platform: Platform) -> int:
    """Start every open run nobody holds; returns how many were started. Never raises."""
    try:
        orphaned = await run_db(platform.db, _orphaned, platform.db)
    except Exception:
        log.exception("could not look for sandbox runs to resume")
        return 0
    for workspace_id, run_id in orphaned:
        start_run(platform, workspace_id, run_id)
    if orphaned:
        log.info("resumed sandbox runs", extra={"runs": len(orphaned)})
    return len(orphaned)


async def keep_resuming_sandbox_runs(platform: Platform) -> None:
    """Resume orphaned runs now and then every lease period, for as long as the process runs."""
    while True:
        await resume_sandbox_runs(platform)
        await asyncio.sleep(platform.settings.turn_lease_seconds)
