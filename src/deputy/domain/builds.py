"""Builds as callers see them: a run of the builder over a goal and uploaded materials, the
draft it produced, and the change requests applied to that draft since.

The draft itself (an AgentSpec), its scenario suite and the build report have their own
models (`deputy.domain.spec`, `deputy.domain.scenarios`, `deputy.builder.report`) and their own
endpoints; a `Build` carries where the run is and what it was given."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from deputy.domain.resources import Body, ModelName, Resource
from deputy.domain.spec import SpecChange

BuildStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: frozenset[BuildStatus] = frozenset({"succeeded", "failed"})

MAX_GOAL = 4000
MAX_CONSTRAINTS = 50
MAX_CONSTRAINT = 1000
MAX_MATERIALS = 200
MAX_TOOL_SOURCES = 50
MAX_CHANGE_REQUEST = 4000
NO_MODEL = "none"
"""The `model` of a rules-only build: no model is asked anything."""

Constraint = Annotated[str, Field(min_length=1, max_length=MAX_CONSTRAINT, pattern=r"\S")]
ResourceId = Annotated[str, Field(min_length=1, max_length=40)]


class BuildProgress(Resource):
    """Where a run is: its stage (`read`, `extract`, `transcripts`, `scenarios`, `check`), how
    many of the stage's units are done and how many there are. `stage` is null until the run
    reports its first stage."""

    stage: str | None = None
    done: int = 0
    total: int = 0


class BuildError(Resource):
    """Why a build failed: a stable code (`not_found`, `unavailable`, `build_interrupted`,
    `internal_error` …) and a message."""

    code: str
    message: str


class Build(Resource):
    id: str
    workspace_id: str
    name: str | None
    status: BuildStatus
    goal: str
    constraints: list[str]
    material_ids: list[str]
    tool_source_ids: list[str]
    model: str | None = Field(
        description="The model asked for (`none`: rules only; null: the workspace's default)."
    )
    progress: BuildProgress
    revision: int = Field(
        description="The draft's revision: 1 when the build succeeds, +1 per applied change."
    )
    error: BuildError | None
    attempts: int = Field(description="Runs started (a process that died is run again).")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class BuildCreate(Body):
    goal: str = Field(
        min_length=1,
        max_length=MAX_GOAL,
        pattern=r"\S",
        description="What the agent is for, in plain language.",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="The agent's name in the draft."
    )
    constraints: list[Constraint] = Field(
        default_factory=list,
        max_length=MAX_CONSTRAINTS,
        description="Rules the agent must follow whatever the materials say.",
    )
    material_ids: list[ResourceId] = Field(
        min_length=1,
        max_length=MAX_MATERIALS,
        description="Uploaded materials: procedures, policies, transcripts, tool descriptions.",
    )
    tool_source_ids: list[ResourceId] = Field(
        default_factory=list,
        max_length=MAX_TOOL_SOURCES,
        description="The workspace's tool sources (OpenAPI or MCP) the agent may bind.",
    )
    model: ModelName | Literal["none"] | None = Field(
        default=None,
        description="The model that answers the builder's questions; `none` builds by rules "
        "alone; default: the workspace's model.",
    )


class BuildQuestion(Resource):
    """Something the client must settle: a contradiction, a gap, a tool with no binding."""

    kind: str
    text: str
    refs: list[str] = Field(default_factory=list)


class BuildChange(Resource):
    """A change request applied to a build's draft: what was done (`applied`, one line per
    edit; empty when nothing could be applied), the diff as structured changes and as text, the
    scenarios to run again, and the questions left."""

    id: str
    build_id: str
    revision: int = Field(description="The build's revision after this change.")
    request: str
    applied: list[str]
    changes: list[SpecChange]
    widens_permissions: bool
    text: str = Field(description="The diff as text for reviewers, widening changes first.")
    affected_scenarios: list[str]
    questions: list[BuildQuestion]
    created_at: datetime


class BuildChangeCreate(Body):
    text: str = Field(
        min_length=1,
        max_length=MAX_CHANGE_REQUEST,
        pattern=r"\S",
        description='The change in plain language: "refunds over $100 need a manager".',
    )


class BuildAgentCreate(Body):
    """Where the draft goes: a new version of agent `agent_id`, or a new agent named `name`
    (default: the draft's name)."""

    agent_id: ResourceId | None = None
    name: str | None = Field(
        default=None, min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$"
    )
    note: str = Field(default="", max_length=4000)
