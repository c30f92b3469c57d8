"""Sandbox runs as callers see them: one agent version against a scenario suite, k trials per
scenario, in a tool world made only of sandbox targets; where the run is, and its scorecard.

The results themselves (trial results, scorecards, comparisons) are the sandbox's own models
(`deputy.domain.sandbox_results`), plain JSON-storable data; a trial as listed adds its scenario's
title."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from deputy.domain.resources import Body, ModelName, Resource
from deputy.domain.sandbox_results import Scorecard, TrialResult
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec.base import Identifier

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
OPEN: frozenset[RunStatus] = frozenset({"queued", "running"})
FINISHED: frozenset[RunStatus] = frozenset({"succeeded", "failed", "cancelled"})

MAX_TRIALS = 10
MAX_CONCURRENCY = 16
MAX_SCENARIO_IDS = 500
MAX_WORLD_SOURCES = 50
SEED_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
"""A backend's seed as a caller may give it: a name (no path separators, no leading dot), so
a backend that looks seeds up as files is never pointed elsewhere by an API caller."""
NO_MODEL = "none"
"""A `customer_model` or `judge_model` of `none`: that role has no model (scripted customers
only; model-judged assertions fail, saying so)."""

ResourceId = Annotated[str, Field(min_length=1, max_length=40)]
SourceName = Annotated[str, Field(min_length=1, max_length=64)]
RoleModel = ModelName | Literal["none"]


class SimulationTarget(Body):
    """The source's tools answered by an in-process simulation of its backend: one of the
    backends the operator registered (`DEPUTY_SANDBOX_BACKENDS`), each trial on a fresh copy
    of its seed data."""

    target: Literal["simulation"]
    backend: str = Field(min_length=1, max_length=64, description="A registered backend's key.")
    seed: str | None = Field(
        default=None,
        max_length=200,
        pattern=SEED_PATTERN,
        description="Which seed data to load (backend-defined); a name, never a path.",
    )


class StagingTarget(Body):
    """The source's tools sent to another registered tool source (a staging or sandbox
    deployment of the client's system), with that source's own URL and credentials."""

    target: Literal["staging"]
    source: SourceName = Field(description="A tool source of the workspace, not a production one.")


class RecordedTarget(Body):
    """The source's tools answered by replaying responses recorded in the workspace's
    tool-call ledger (the default for every source not mapped)."""

    target: Literal["recorded"]


WorldTarget = Annotated[
    SimulationTarget | StagingTarget | RecordedTarget, Field(discriminator="target")
]


class WorldConfig(Body):
    sources: dict[SourceName, WorldTarget] = Field(
        default_factory=dict,
        max_length=MAX_WORLD_SOURCES,
        description="Spec tool source -> sandbox target; unmapped sources replay recordings.",
    )


class SandboxRunCreate(Body):
    """What to run: an agent version against a suite (given, or a build's), k times each."""

    agent_id: ResourceId
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Default: the agent's latest version."
    )
    suite: ScenarioSuite | None = Field(default=None, description="The scenarios to run.")
    build_id: ResourceId | None = Field(
        default=None, description="Run this build's scenarios instead of a given suite."
    )
    scenario_ids: list[Identifier] = Field(
        default_factory=list,
        max_length=MAX_SCENARIO_IDS,
        description="Run only these scenarios of the suite (default: all).",
    )
    trials: int = Field(default=1, ge=1, le=MAX_TRIALS, description="k: trials per scenario.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    model: ModelName | None = Field(
        default=None, description="The agent's model; default: the one its conversations use."
    )
    customer_model: RoleModel | None = Field(
        default=None,
        description="Plays simulated customers (default: `model`; `none`: scripted only).",
    )
    judge_model: RoleModel | None = Field(
        default=None,
        description="Judges natural-language assertions (default: the customer's model, else "
        "`model`; `none`: no judge, and such assertions fail).",
    )
    concurrency: int = Field(
        default=4, ge=1, le=MAX_CONCURRENCY, description="Conversations at once."
    )
    world: WorldConfig = Field(default_factory=WorldConfig)

    @model_validator(mode="after")
    def _one_suite(self) -> SandboxRunCreate:
        if (self.suite is None) == (self.build_id is None):
            raise ValueError("give exactly one of `suite` and `build_id`")
        return self


class SandboxProgress(Resource):
    """Trials finished (`done`) of `total`, how many passed and how many could not run."""

    done: int = 0
    total: int = 0
    passed: int = 0
    errors: int = 0


class SandboxModels(Resource):
    agent: str
    customer: str | None = Field(description="null: no customer model (scripted only).")
    judge: str | None = Field(description="null: no judge model.")


class SandboxRunError(Resource):
    """Why a run failed: a stable code (`not_found`, `unavailable`, `sandbox_interrupted`,
    `internal_error` …) and a message."""

    code: str
    message: str


class SandboxRun(Resource):
    id: str
    agent_id: str
    version: int
    build_id: str | None
    status: RunStatus
    suite_name: str
    trials: int
    seed: int
    concurrency: int
    scenario_count: int
    progress: SandboxProgress
    world: dict[str, str] = Field(description="Spec tool source -> where its calls go.")
    models: SandboxModels
    scorecard: Scorecard | None = Field(description="Set once the run has succeeded.")
    error: SandboxRunError | None
    attempts: int = Field(description="Runs started (a process that died is resumed).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def selected_suite(suite: ScenarioSuite, scenario_ids: Sequence[str]) -> ScenarioSuite:
    """`suite` with only a run's scenarios (all when `scenario_ids` is empty), in the suite's
    order."""
    if not scenario_ids:
        return suite
    wanted = set(scenario_ids)
    chosen = tuple(scenario for scenario in suite.scenarios if scenario.id in wanted)
    return suite.model_copy(update={"scenarios": chosen})


class SandboxTrial(TrialResult):
    """A trial's result with its scenario's title."""

    scenario_title: str
