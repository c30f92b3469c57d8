"""Running builds in the background, durably.

A build is acknowledged once its row is committed `queued` (`deputy.services.builds`); it then
runs as an asyncio task of the server process under a lease on its row: the claim (a
conditional update: free, or expired) sets it `running` and counts an attempt, the lease is
renewed while it runs, and the end is written in one transaction, `succeeded` with the draft,
its scenarios and the report (revision 1), or `failed` with a stable error code, and only while
the lease is still held. The inputs are never touched.

A build is a pure function of its inputs, so a run a dead process left behind is simply run
again from the start: `keep_resuming_builds` finds builds whose lease expired (or was never
taken) and starts them; after `BUILD_ATTEMPTS` runs started without an end, the build fails
with `build_interrupted` instead.

The lease length is the `turn_lease_seconds` setting (`DEPUTY_TURN_LEASE_SECONDS`, 30 s)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

import anyio
from sqlalchemy import or_, select, update

from deputy.builder import pipeline
from deputy.builder.read_tools import tool_from_definition
from deputy.builder.sources import MaterialRef, ToolDescription
from deputy.domain.builds import NO_MODEL, BuildError, BuildProgress
from deputy.domain.errors import DeputyError, NotFound
from deputy.llm.types import Model
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.tool_sources import operation_definitions
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.builds")
R = TypeVar("R")
T = TypeVar("T")

BUILD_ATTEMPTS = 3
"""Runs a build may start; one more claim fails it with `build_interrupted`."""
PROGRESS_INTERVAL = 0.5
"""Seconds between two progress writes within one stage (a new stage is written at once)."""
OPEN_STATUSES = ("queued", "running")
MAX_PARALLEL_BUILDS = 2
"""Builds one process runs at once: a build reads and parses every file and may keep a local
model busy, and the same process answers the API."""


def run_db(db: Database, work: Callable[..., T], *args: Any) -> Awaitable[T]:
    """`db.run(work, *args)`, carried through even when the caller is cancelled: a build's
    lease writes (release on shutdown, fail, succeed) are done once handed to the database,
    never dropped while they wait for the database's thread."""
    return asyncio.shield(db.run(work, *args))


@dataclass(frozen=True)
class Claimed:
    """A build's inputs, as claimed for one run."""

    workspace_id: str
    build_id: str
    attempts: int
    goal: str
    name: str | None
    constraints: tuple[str, ...]
    material_ids: tuple[str, ...]
    tool_source_ids: tuple[str, ...]
    model: str | None


@dataclass
class BuildLease:
    """The right to run one build, held by `owner` until `seconds` after the last renewal.
    Every write after the claim checks it is still held."""

    db: Database
    workspace_id: str
    build_id: str
    seconds: float
    owner: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex}")
    lost: bool = False

    def claim(self) -> Claimed | None:
        """Take the lease of an open build nobody holds: `running`, attempts + 1."""
        now = utcnow()
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(t.Build)
                .where(
                    t.Build.id == self.build_id,
                    t.Build.status.in_(OPEN_STATUSES),
                    or_(t.Build.lease_owner.is_(None), t.Build.lease_expires_at < now),
                )
                .values(
                    status="running",
                    lease_owner=self.owner,
                    lease_expires_at=now + timedelta(seconds=self.seconds),
                    attempts=t.Build.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            row = session.scalars(select(t.Build).where(t.Build.id == self.build_id)).one()
            return Claimed(
                workspace_id=row.workspace_id,
                build_id=row.id,
                attempts=row.attempts,
                goal=row.goal,
                name=row.name,
                constraints=tuple(row.constraints),
                material_ids=tuple(row.material_ids),
                tool_source_ids=tuple(row.tool_source_ids),
                model=row.model,
            )

    def _update(self, **values: object) -> bool:
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(t.Build)
                .where(t.Build.id == self.build_id, t.Build.lease_owner == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken by another)."""
        expires = utcnow() + timedelta(seconds=self.seconds)
        return self._update(lease_expires_at=expires)

    def release(self) -> None:
        self._update(lease_owner=None, lease_expires_at=None)

    def save_progress(self, progress: BuildProgress) -> bool:
        return self._update(progress=progress.model_dump(mode="json"), updated_at=utcnow())

    def succeed(self, result: pipeline.BuildResult, progress: BuildProgress | None) -> bool:
        """Store the draft, its scenarios and the report as revision 1, in one transaction."""
        now = utcnow()
        values: dict[str, object] = {
            "status": "succeeded",
            "spec": result.spec.model_dump(mode="json"),
            "scenarios": result.scenarios.model_dump(mode="json"),
            "report": result.report.model_dump(mode="json"),
            "revision": 1,
            "error": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
            "finished_at": now,
        }
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return self._update(**values)

    def fail(self, error: BuildError, progress: BuildProgress | None) -> bool:
        now = utcnow()
        values: dict[str, object] = {
            "status": "failed",
            "error": error.model_dump(mode="json"),
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
            "finished_at": now,
        }
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return self._update(**values)


class ProgressWriter:
    """The builder's `Progress` callback: keeps the latest report and has `run` persist it, at
    most every `interval` seconds within a stage and at once when the stage changes."""

    def __init__(self, save: Callable[[BuildProgress], Awaitable[object]], interval: float) -> None:
        self._save = save
        self._interval = interval
        self._wake = asyncio.Event()
        self.latest: BuildProgress | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.latest = BuildProgress(stage=stage, done=done, total=total)
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        written: BuildProgress | None = None
        last = float("-inf")
        while True:
            await self._wake.wait()
            self._wake.clear()
            same_stage = (
                written is not None
                and self.latest is not None
                and self.latest.stage == written.stage
            )
            if same_stage and (wait := last + self._interval - loop.time()) > 0:
                await asyncio.sleep(wait)
            current = self.latest
            if current is None or current == written:
                continue
            await self._save(current)
            written, last = current, loop.time()


def error_of(exc: Exception) -> BuildError:
    """A failed run's stable code and message: a DeputyError's own, else `internal_error`."""
    if isinstance(exc, DeputyError):
        return BuildError(code=exc.code, message=exc.message[:2000])
    return BuildError(code="internal_error", message=f"the build failed: {type(exc).__name__}")


def _in_order(rows: dict[str, R], ids: Sequence[str], kind: str) -> list[R]:
    """The rows of `ids`, in that order; `NotFound` names those that are gone."""
    missing = [row_id for row_id in ids if row_id not in rows]
    if missing:
        raise NotFound(kind, ", ".join(missing))
    return [rows[row_id] for row_id in ids]


def _material_refs(db: Database, claimed: Claimed) -> list[MaterialRef]:
    query = select(t.Material).where(t.Material.id.in_(claimed.material_ids))
    with db.tenant_session(claimed.workspace_id) as session:
        found = {m.id: m for m in session.scalars(query)}
        rows = _in_order(found, claimed.material_ids, "material")
        return [MaterialRef(id=m.id, name=m.filename, media_type=m.media_type) for m in rows]


def _tool_source_rows(
    db: Database, workspace_id: str, source_ids: Sequence[str]
) -> list[t.ToolSource]:
    query = select(t.ToolSource).where(t.ToolSource.id.in_(source_ids))
    with db.tenant_session(workspace_id) as session:
        return _in_order({s.id: s for s in session.scalars(query)}, source_ids, "tool source")


async def source_tools(
    platform: Platform, workspace_id: str, source_ids: Sequence[str]
) -> list[ToolDescription]:
    """The tools the workspace's tool sources `source_ids` offer, bound to them."""
    tools: list[ToolDescription] = []
    for row in await run_db(platform.db, _tool_source_rows, platform.db, workspace_id, source_ids):
        definitions, _ = await operation_definitions(platform, row)
        kind: Literal["openapi", "mcp"] = "openapi" if row.kind == "openapi" else "mcp"
        tools += [
            tool_from_definition(definition, source_name=row.name, source_kind=kind, ref=None)
            for definition in definitions
        ]
    return tools


async def build_model(platform: Platform, workspace_id: str, requested: str | None) -> Model | None:
    """The model a build asks its questions (None: rules only)."""
    if requested == NO_MODEL:
        return None
    return await anyio.to_thread.run_sync(resolve_model, platform, workspace_id, requested)


async def _inputs(platform: Platform, claimed: Claimed) -> pipeline.BuildInput:
    """The builder's input: each material's bytes, and the tools of each tool source."""
    refs = await run_db(platform.db, _material_refs, platform.db, claimed)
    materials: list[pipeline.MaterialInput] = []
    for ref in refs:
        chunks = platform.blobs.read_chunks(claimed.workspace_id, ref.id)
        data = await anyio.to_thread.run_sync(b"".join, chunks)
        materials.append(pipeline.MaterialInput(ref=ref, data=data))
    tools = await source_tools(platform, claimed.workspace_id, claimed.tool_source_ids)
    return pipeline.BuildInput(
        goal=claimed.goal,
        name=claimed.name,
        constraints=claimed.constraints,
        materials=tuple(materials),
        tools=tuple(tools),
    )


async def _execute(
    platform: Platform, claimed: Claimed, progress: ProgressWriter
) -> pipeline.BuildResult:
    build_input = await _inputs(platform, claimed)
    model = await build_model(platform, claimed.workspace_id, claimed.model)
    return await pipeline.build(
        build_input,
        model=model,
        progress=progress,
        metadata={"workspace_id": claimed.workspace_id, "build_id": claimed.build_id},
    )


async def _keep_renewed(lease: BuildLease, work: asyncio.Task[pipeline.BuildResult]) -> None:
    """Renew every third of the lease; when it is lost, stop the work (another process runs
    the build now)."""
    while True:
        await asyncio.sleep(lease.seconds / 3)
        if not await run_db(lease.db, lease.renew):
            log.warning("build lease lost", extra={"build_id": lease.build_id})
            lease.lost = True
            work.cancel()
            return


async def stop_tasks(*tasks: asyncio.Task[object]) -> None:
    """Cancel `tasks` and wait until each has ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def run_build(platform: Platform, workspace_id: str, build_id: str) -> None:
    """Run one build if no live process holds it, and record how it ended; at most
    `MAX_PARALLEL_BUILDS` at a time in this process (the others wait, still `queued` and free
    for another process to take). Never raises but for cancellation (which releases the lease,
    so the build is resumed)."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(MAX_PARALLEL_BUILDS))
    async with slots:
        await _run(platform, workspace_id, build_id)


async def _run(platform: Platform, workspace_id: str, build_id: str) -> None:
    db = platform.db
    lease = BuildLease(db, workspace_id, build_id, platform.settings.turn_lease_seconds)
    claimed = await run_db(db, lease.claim)
    if claimed is None:
        return
    if claimed.attempts > BUILD_ATTEMPTS:
        interrupted = BuildError(
            code="build_interrupted",
            message=f"the build was interrupted {BUILD_ATTEMPTS} times and given up",
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
        result = await work
    except asyncio.CancelledError:
        await stop_tasks(writer, renewing)
        current = asyncio.current_task()
        if lease.lost and (current is None or not current.cancelling()):
            return  # another process has the build now
        await run_db(db, lease.release)
        raise
    except Exception as exc:
        await stop_tasks(writer, renewing)
        log.warning("build failed", extra={"build_id": build_id}, exc_info=True)
        await run_db(db, lease.fail, error_of(exc), progress.latest)
        return
    await stop_tasks(writer, renewing)
    if not await run_db(db, lease.succeed, result, progress.latest):
        log.warning("build finished after its lease was lost", extra={"build_id": build_id})


_RUNNING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


def start_build(platform: Platform, workspace_id: str, build_id: str) -> None:
    """Run the build in the background of this process (once: a build it already runs is
    left to that run)."""
    running = _RUNNING.setdefault(asyncio.get_running_loop(), {})
    if build_id in running:
        return
    task = asyncio.create_task(run_build(platform, workspace_id, build_id))
    running[build_id] = task
    task.add_done_callback(lambda _: running.pop(build_id, None))


async def stop_builds() -> None:
    """Cancel the builds this process runs (at shutdown); their leases are released, so the
    next process to look resumes them."""
    running = _RUNNING.get(asyncio.get_running_loop(), {})
    await stop_tasks(*running.values())


def _orphaned(db: Database) -> list[tuple[str, str]]:
    """(workspace, build) of every open build nobody holds."""
    now = utcnow()
    query = select(t.Build.workspace_id, t.Build.id).where(
        t.Build.status.in_(OPEN_STATUSES),
        or_(t.Build.lease_owner.is_(None), t.Build.lease_expires_at < now),
    )
    with db.session() as session:
        return [(str(ws), str(bid)) for ws, bid in session.execute(query)]


async def resume_builds(platform: Platform) -> int:
    """Start every open build nobody holds (its process died, or it never got to start).
    Returns how many were started. Never raises."""
    try:
        orphaned = await run_db(platform.db, _orphaned, platform.db)
    except Exception:
        log.exception("could not look for builds to resume")
        return 0
    for workspace_id, build_id in orphaned:
        start_build(platform, workspace_id, build_id)
    if orphaned:
        log.info("resumed builds", extra={"builds": len(orphaned)})
    return len(orphaned)


async def keep_resuming_builds(platform: Platform) -> None:
    """Resume orphaned builds now and then every lease period, for as long as the process runs."""
    while True:
        await resume_builds(platform)
        await asyncio.sleep(platform.settings.turn_lease_seconds)
