"""Running builds in the background, durably.

A build is acknowledged once its row is committed `queued` (`deputy.services.builds`); it then
runs as a leased job of the server process (`deputy.services.leased_jobs`): the claim sets it
`running` and counts an attempt, the lease is renewed while it runs, and the end is written in
one update, `succeeded` with the draft, its scenarios and the report (revision 1), or `failed`
with a stable error code, and only while the lease is still held. The inputs are never touched.

A build is a pure function of its inputs, so a run a dead process left behind is simply run
again from the start: `keep_resuming_builds` finds builds whose lease expired (or was never
taken) and starts them; after `BUILD_ATTEMPTS` runs started without an end, the build fails
with `build_interrupted` instead. Progress is written at most every `PROGRESS_INTERVAL` seconds
within a stage, and at once when the stage changes.

The lease length is the `turn_lease_seconds` setting (`DEPUTY_TURN_LEASE_SECONDS`, 30 s)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import anyio
from sqlalchemy import select

from deputy.builder import pipeline
from deputy.builder.read_tools import tool_from_definition
from deputy.builder.sources import MaterialRef, ToolDescription
from deputy.domain.builds import NO_MODEL, BuildError, BuildProgress
from deputy.domain.errors import NotFound
from deputy.llm.types import Model
from deputy.services.leased_jobs import (
    JobErrors,
    JobKind,
    JobLimits,
    JobNames,
    LeasedJobs,
    LeasedRows,
    run_db,
)
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.tool_sources import operation_definitions
from deputy.store import tables as t
from deputy.store.db import Database

log = logging.getLogger("deputy.builds")
R = TypeVar("R")

BUILD_ATTEMPTS = 3
"""Runs a build may start; one more claim fails it with `build_interrupted`."""
PROGRESS_INTERVAL = 0.5
"""Seconds between two progress writes within one stage (a new stage is written at once)."""
OPEN_STATUSES = ("queued", "running")
MAX_PARALLEL_BUILDS = 2
"""Builds one process runs at once: a build reads and parses every file and may keep a local
model busy, and the same process answers the API."""


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


def _claimed(row: t.Build) -> Claimed:
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


def _result_values(result: pipeline.BuildResult) -> dict[str, object]:
    """The draft, its scenarios and the report, as revision 1."""
    return {
        "spec": result.spec.model_dump(mode="json"),
        "scenarios": result.scenarios.model_dump(mode="json"),
        "report": result.report.model_dump(mode="json"),
        "revision": 1,
    }


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
    platform: Platform, claimed: Claimed, report: Callable[[BuildProgress], None]
) -> pipeline.BuildResult:
    build_input = await _inputs(platform, claimed)
    model = await build_model(platform, claimed.workspace_id, claimed.model)

    def progress(stage: str, done: int, total: int) -> None:
        report(BuildProgress(stage=stage, done=done, total=total))

    return await pipeline.build(
        build_input,
        model=model,
        progress=progress,
        metadata={"workspace_id": claimed.workspace_id, "build_id": claimed.build_id},
    )


def _new_stage(written: BuildProgress, latest: BuildProgress) -> bool:
    return latest.stage != written.stage


BUILDS = LeasedJobs(
    JobKind(
        JobNames(log, "build", id_field="build_id", count_field="builds"),
        LeasedRows(t.Build, OPEN_STATUSES, _claimed, _result_values),
        _execute,
        JobErrors(BuildError, subject="build", interrupted_code="build_interrupted"),
        JobLimits(BUILD_ATTEMPTS, MAX_PARALLEL_BUILDS, PROGRESS_INTERVAL, urgent=_new_stage),
    )
)
"""The builds this process runs."""
start_build = BUILDS.start
stop_builds = BUILDS.stop_all
resume_builds = BUILDS.resume
keep_resuming_builds = BUILDS.keep_resuming
