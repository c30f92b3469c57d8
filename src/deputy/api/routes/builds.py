"""Builds: start the builder on a goal and uploaded materials (it runs in the background; poll
the build), read its draft (spec as JSON or YAML, scenarios, report), change the draft in plain
language, and file it as an agent version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.builder.report import BuildReport
from deputy.domain import builds as b
from deputy.domain import resources as r
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import dump_yaml
from deputy.services import builds as svc

router = APIRouter(tags=["builds"])

YAML = "application/yaml"
_MODEL_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": r.ErrorBody, "description": "The build's model is not available"},
}
_SPEC_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The draft AgentSpec: JSON, or YAML with `format=yaml`",
        "content": {YAML: {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/builds",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=b.Build,
    responses=_MODEL_UNAVAILABLE,
)
async def create_build(
    body: b.BuildCreate, response: Response, platform: PlatformDep, principal: PrincipalDep
) -> b.Build:
    """Start a build: the builder reads the materials and drafts an AgentSpec, its scenario
    suite and a report, in the background. Poll the build (`Location`) until it has
    `succeeded` or `failed`."""
    build = await svc.create_build(platform, principal, body)
    response.headers["Location"] = f"/v1/builds/{build.id}"
    return build


@router.get("/builds", response_model=r.Page[b.Build])
def list_builds(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[b.Build]:
    return svc.list_builds(platform, principal, limit=limit, cursor=cursor)


@router.get("/builds/{build_id}", response_model=b.Build)
def get_build(build_id: str, platform: PlatformDep, principal: PrincipalDep) -> b.Build:
    """The build: its inputs, status, progress, revision and, when it failed, why."""
    return svc.get_build(platform, principal, build_id)


@router.get("/builds/{build_id}/spec", response_model=dict[str, Any], responses=_SPEC_FORMATS)
def build_spec(
    build_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    format: Annotated[
        Literal["json", "yaml"], Query(description="`yaml` answers `application/yaml` text.")
    ] = "json",
) -> dict[str, Any] | Response:
    """The current revision of the draft AgentSpec (409 until the build has succeeded)."""
    spec = svc.build_spec(platform, principal, build_id)
    if format == "yaml":
        return Response(dump_yaml(spec), media_type=YAML)
    return spec.model_dump(mode="json")


@router.get("/builds/{build_id}/scenarios", response_model=ScenarioSuite)
def build_scenarios(build_id: str, platform: PlatformDep, principal: PrincipalDep) -> ScenarioSuite:
    """The draft's scenario suite, for the sandbox."""
    return svc.build_scenarios(platform, principal, build_id)


@router.get("/builds/{build_id}/report", response_model=BuildReport)
def build_report(build_id: str, platform: PlatformDep, principal: PrincipalDep) -> BuildReport:
    """What became what, what was left out and why, the questions for the client, the tools
    and their effect tiers, and each file's problems."""
    return svc.build_report(platform, principal, build_id)


@router.post(
    "/builds/{build_id}/changes",
    status_code=status.HTTP_201_CREATED,
    response_model=b.BuildChange,
    responses=_MODEL_UNAVAILABLE,
)
async def change_build(
    build_id: str, body: b.BuildChangeCreate, platform: PlatformDep, principal: PrincipalDep
) -> b.BuildChange:
    """Change the draft in plain language ("refunds over $100 need a manager"): the answer is
    the diff, what was applied, the scenarios to run again and any questions; a change that
    alters the draft makes its next revision."""
    return await svc.change_build(platform, principal, build_id, body.text)


@router.get("/builds/{build_id}/changes", response_model=r.Page[b.BuildChange])
def list_build_changes(
    build_id: str,
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> r.Page[b.BuildChange]:
    return svc.list_build_changes(platform, principal, build_id, limit=limit, cursor=cursor)


@router.post(
    "/builds/{build_id}/agent",
    status_code=status.HTTP_201_CREATED,
    response_model=r.AgentVersion,
)
def create_agent_from_build(
    build_id: str, body: b.BuildAgentCreate, platform: PlatformDep, principal: PrincipalDep
) -> r.AgentVersion:
    """File the current draft for review: a new version of `agent_id`, or version 1 of a new
    agent named `name` (default: the draft's name)."""
    return svc.create_agent_from_build(platform, principal, build_id, body)
