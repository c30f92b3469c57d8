"""Builds as a platform capability: start the builder on a goal and uploaded materials, follow
it, read its draft (spec, scenarios, report), change the draft in plain language, and file it
as an agent version.

Starting a build needs `agents:write` and `materials:read`, changing it and filing it
`agents:write`, reading builds `agents:read`. The run itself is in
`deputy.services.build_runs`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deputy.builder import changes, pipeline
from deputy.builder.report import BuildReport
from deputy.domain import builds as b
from deputy.domain import resources as r
from deputy.domain.errors import (
    Conflict,
    DeputyError,
    InvalidRequest,
    NotFound,
    ValidationFailed,
)
from deputy.domain.ids import new_id
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import (
    AgentSpec,
    SpecDiff,
    lint_errors,
    lint_spec,
    render_diff_text,
    spec_from_data,
)
from deputy.domain.tenancy import Principal
from deputy.services import agents
from deputy.services.access import require, tenant
from deputy.services.build_runs import build_model, source_tools, start_build
from deputy.services.leased_jobs import run_db
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

__all__ = [
    "build_report",
    "build_scenarios",
    "build_spec",
    "change_build",
    "create_agent_from_build",
    "create_build",
    "get_build",
    "list_build_changes",
    "list_builds",
]


class MissingInputs(NotFound):
    """Some of the materials (or tool sources) a build names are not in the workspace."""

    def __init__(self, kind: str, ids: Sequence[str]) -> None:
        listed = ", ".join(ids)
        DeputyError.__init__(
            self,
            f"{kind} not found: {listed}",
            details={"kind": kind, "id": ids[0], "ids": list(ids)},
        )


def build_resource(row: t.Build) -> b.Build:
    return b.Build.model_validate(row)


def change_resource(row: t.BuildChange) -> b.BuildChange:
    diff = SpecDiff.model_validate(row.diff)
    return b.BuildChange(
        id=row.id,
        build_id=row.build_id,
        revision=row.revision,
        request=row.request,
        applied=list(row.applied),
        changes=list(diff.changes),
        widens_permissions=diff.widens_permissions,
        text=render_diff_text(diff),
        affected_scenarios=list(row.affected_scenarios),
        questions=[b.BuildQuestion.model_validate(q) for q in row.questions],
        created_at=row.created_at,
    )


def build_row(session: Session, build_id: str) -> t.Build:
    row = session.scalar(select(t.Build).where(t.Build.id == build_id))
    if row is None:
        raise NotFound("build", build_id)
    return row


def succeeded_row(session: Session, build_id: str) -> t.Build:
    """The build, which must have succeeded: its draft is what the caller wants."""
    row = build_row(session, build_id)
    if row.status in ("queued", "running"):
        raise Conflict(
            f"build {build_id} is {row.status}: wait until it has finished",
            details={"build_id": build_id, "status": row.status},
        )
    if row.status != "succeeded" or row.spec is None:
        raise Conflict(
            f"build {build_id} failed: it has no draft",
            details={"build_id": build_id, "status": row.status},
        )
    return row


def _check_inputs(session: Session, material_ids: list[str], source_ids: list[str]) -> None:
    found = set(session.scalars(select(t.Material.id).where(t.Material.id.in_(material_ids))))
    missing = [mid for mid in material_ids if mid not in found]
    if missing:
        raise MissingInputs("material", missing)
    sources = {
        sid: (kind, name)
        for sid, kind, name in session.execute(
            select(t.ToolSource.id, t.ToolSource.kind, t.ToolSource.name).where(
                t.ToolSource.id.in_(source_ids)
            )
        )
    }
    missing = [sid for sid in source_ids if sid not in sources]
    if missing:
        raise MissingInputs("tool source", missing)
    webhooks = [name for kind, name in sources.values() if kind == "http"]
    if webhooks:
        raise ValidationFailed(
            f"http tool sources have no operations to read: {', '.join(webhooks)}",
            details={"tool_sources": webhooks},
        )


def _insert(platform: Platform, principal: Principal, body: b.BuildCreate) -> b.Build:
    material_ids = list(dict.fromkeys(body.material_ids))
    source_ids = list(dict.fromkeys(body.tool_source_ids))
    with tenant(platform, principal, "agents:write") as session:
        _check_inputs(session, material_ids, source_ids)
        now = utcnow()
        row = t.Build(
            id=new_id("bld"),
            workspace_id=principal.workspace_id,
            status="queued",
            name=body.name,
            goal=body.goal,
            constraints=list(body.constraints),
            material_ids=material_ids,
            tool_source_ids=source_ids,
            model=body.model,
            progress=b.BuildProgress().model_dump(mode="json"),
            revision=0,
            attempts=0,
            created_by_key_id=principal.key_id,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return build_resource(row)


async def create_build(platform: Platform, principal: Principal, body: b.BuildCreate) -> b.Build:
    """Check the inputs (every material and tool source exists in the workspace; the model
    resolves), store the build `queued` and start running it in the background."""
    require(principal, "agents:write")
    require(principal, "materials:read")
    await build_model(platform, principal.workspace_id, body.model)  # the name resolves
    build = await run_db(platform.db, _insert, platform, principal, body)
    start_build(platform, principal.workspace_id, build.id)
    return build


def get_build(platform: Platform, principal: Principal, build_id: str) -> b.Build:
    with tenant(platform, principal, "agents:read") as session:
        return build_resource(build_row(session, build_id))


def list_builds(
    platform: Platform, principal: Principal, *, limit: int, cursor: str | None
) -> r.Page[b.Build]:
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session,
            select(t.Build),
            t.Build.id,
            limit=limit,
            cursor=cursor,
            to_resource=build_resource,
        )


def build_spec(platform: Platform, principal: Principal, build_id: str) -> AgentSpec:
    """The current revision of the build's draft."""
    with tenant(platform, principal, "agents:read") as session:
        data = succeeded_row(session, build_id).spec
    assert data is not None
    return spec_from_data(data)


def build_scenarios(platform: Platform, principal: Principal, build_id: str) -> ScenarioSuite:
    with tenant(platform, principal, "agents:read") as session:
        data = succeeded_row(session, build_id).scenarios
    return ScenarioSuite.model_validate(data)


def build_report(platform: Platform, principal: Principal, build_id: str) -> BuildReport:
    with tenant(platform, principal, "agents:read") as session:
        data = succeeded_row(session, build_id).report
    return BuildReport.model_validate(data)


_NOT_NAME = re.compile(r"[^A-Za-z0-9 _.\-]+")


def agent_name(spec: AgentSpec, build_id: str) -> str:
    """An agent name from the draft's name (the characters agent names allow)."""
    name = _NOT_NAME.sub("-", spec.name).lstrip(" _.-")[:120].rstrip()
    return name or f"build-{build_id.lower()}"


def _check_lint(spec: AgentSpec) -> None:
    """Refuse a draft with lint errors before an agent is created for it (as
    `agents.create_version` would, after)."""
    errors = lint_errors(lint_spec(spec))
    if errors:
        raise ValidationFailed(
            f"the draft has {len(errors)} lint error{'s' if len(errors) > 1 else ''}",
            details={"errors": [finding.as_problem() for finding in errors]},
        )


def create_agent_from_build(
    platform: Platform, principal: Principal, build_id: str, body: b.BuildAgentCreate
) -> r.AgentVersion:
    """File the build's current draft as an agent version for review: a new version of
    `agent_id`, or version 1 of a new agent (named `name`, default the draft's name)."""
    require(principal, "agents:write")
    if body.agent_id is not None and body.name is not None:
        raise InvalidRequest("give `agent_id` or `name`, not both")
    with tenant(platform, principal, "agents:read") as session:
        row = succeeded_row(session, build_id)
        data: dict[str, Any] = dict(row.spec or {})
        revision = row.revision
    note = body.note or f"Drafted by build {build_id}, revision {revision}."
    version = r.VersionCreate(spec=data, note=note)
    if body.agent_id is not None:
        return agents.create_version(platform, principal, body.agent_id, version)
    spec = agents.validate_spec(data)
    _check_lint(spec)
    agent = agents.create_agent(
        platform,
        principal,
        r.AgentCreate(name=body.name or agent_name(spec, build_id), description=spec.goal),
    )
    return agents.create_version(platform, principal, agent.id, version)


@dataclass(frozen=True)
class _Draft:
    revision: int
    spec: AgentSpec
    scenarios: ScenarioSuite
    model: str | None
    tool_source_ids: tuple[str, ...]


def _draft(platform: Platform, principal: Principal, build_id: str) -> _Draft:
    with tenant(platform, principal, "agents:write") as session:
        row = succeeded_row(session, build_id)
        assert row.spec is not None
        return _Draft(
            revision=row.revision,
            spec=spec_from_data(row.spec),
            scenarios=ScenarioSuite.model_validate(row.scenarios),
            model=row.model,
            tool_source_ids=tuple(row.tool_source_ids),
        )


def _record_change(
    platform: Platform,
    principal: Principal,
    build_id: str,
    draft: _Draft,
    request: str,
    result: pipeline.ChangeResult,
) -> b.BuildChange:
    """The change row and, when the draft changed, its next revision, in one transaction; a
    draft another change moved on meanwhile is not overwritten (`Conflict`)."""
    revision = draft.revision
    with tenant(platform, principal, "agents:write") as session:
        build_row(session, build_id)
        if not result.diff.empty or result.scenarios != draft.scenarios:
            revision += 1
            moved = session.execute(
                update(t.Build)
                .where(t.Build.id == build_id, t.Build.revision == draft.revision)
                .values(
                    revision=revision,
                    spec=result.spec.model_dump(mode="json"),
                    scenarios=result.scenarios.model_dump(mode="json"),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                raise Conflict(
                    f"build {build_id} was changed by another request meanwhile; send yours again",
                    details={"build_id": build_id},
                )
        row = t.BuildChange(
            id=new_id("bch"),
            workspace_id=principal.workspace_id,
            build_id=build_id,
            revision=revision,
            request=request,
            applied=list(result.applied),
            diff=result.diff.model_dump(mode="json"),
            affected_scenarios=list(result.affected_scenarios),
            questions=[q.model_dump(mode="json") for q in result.questions],
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return change_resource(row)


async def change_build(
    platform: Platform, principal: Principal, build_id: str, text: str
) -> b.BuildChange:
    """Apply a change request in plain language to a succeeded build's draft, with the build's
    model and its tool sources' tools. A change that alters the draft is its next revision; one
    that could not be applied is recorded too (`applied` empty, with the questions it raised).
    `Conflict` while the build has not succeeded."""
    require(principal, "agents:write")
    draft = await run_db(platform.db, _draft, platform, principal, build_id)
    model = await build_model(platform, principal.workspace_id, draft.model)
    tools = await source_tools(platform, principal.workspace_id, draft.tool_source_ids)
    result = await changes.apply_change(
        draft.spec,
        draft.scenarios,
        text,
        model=model,
        tools=tools,
        metadata={"workspace_id": principal.workspace_id, "build_id": build_id},
    )
    return await run_db(
        platform.db, _record_change, platform, principal, build_id, draft, text, result
    )


def list_build_changes(
    platform: Platform, principal: Principal, build_id: str, *, limit: int, cursor: str | None
) -> r.Page[b.BuildChange]:
    """The change requests applied to a build, newest first."""
    with tenant(platform, principal, "agents:read") as session:
        build_row(session, build_id)
        return paginate(
            session,
            select(t.BuildChange).where(t.BuildChange.build_id == build_id),
            t.BuildChange.id,
            limit=limit,
            cursor=cursor,
            to_resource=change_resource,
        )
