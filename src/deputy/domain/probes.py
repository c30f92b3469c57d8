"""Synthetic probes: a scripted sandbox scenario run on a schedule against an agent's production
deployment, as the API takes and returns it.

A probe's `scenario` is the sandbox's `Scenario` with a `script` (the customer's messages, sent
one by one) and the assertions a production conversation can be checked against: facts the
agent must say, expected and forbidden tool calls (read from the production tool-call ledger),
the outcome, the procedure, guardrail expectations, and natural-language assertions (judged by a
model). A probe never simulates a customer or a tool world: it talks to the real deployment and
its real tools, so it should avoid tools that change anything (see `allow_irreversible`).

A run is `passed` (every assertion held), `failed` (the agent answered but an assertion failed:
it counts against accuracy) or `error` (the agent did not answer: a failed or timed-out turn,
its model down, no deployment on the probe's channel: it counts against availability)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from deputy.domain.resources import Body, ChannelName, ModelName, Resource
from deputy.domain.scenarios import Scenario

ProbeStatus = Literal["passed", "failed", "error"]
TurnStatus = Literal["answered", "failed", "timed_out", "model_failed", "not_sent"]
AlertChange = Literal["opened", "escalated", "still_firing", "resolved"]

SYSTEM_PROBE = "system:probe"
"""The actor probes run as; only it may start a conversation marked with `metadata.probe_id`."""
PROBE_METADATA_KEY = "probe_id"
MAX_INTERVAL_SECONDS = 86_400
DEFAULT_INTERVAL_SECONDS = 300
MAX_SCRIPT_MESSAGES = 20
MAX_MESSAGE_CHARS = 8000
DEFAULT_TURN_TIMEOUT_SECONDS = 60.0
SYNTHETIC_CUSTOMER: dict[str, str] = {
    "persona": "A synthetic probe: a scripted customer checking the production agent.",
    "goal": "Send the probe's scripted messages.",
}
"""The brief a probe's scenario gets when it has none (a scripted customer never reads it)."""


def with_scenario_defaults(data: Any, title: str) -> Any:
    """A probe's scenario as given, with an `id`, a `title` and a customer brief filled in when
    missing: only the script and the assertions matter to a probe."""
    if not isinstance(data, dict):
        return data
    scenario = data.get("scenario")
    if not isinstance(scenario, dict):
        return data
    filled = {"id": "probe", "title": title or "probe", "customer": SYNTHETIC_CUSTOMER}
    return {**data, "scenario": {**filled, **scenario}}


class ProbeCreate(Body):
    """A new probe. `interval_seconds` is at least 60 (the platform's
    `DEPUTY_PROBE_MIN_INTERVAL_SECONDS`) and at most a day. `judge_model` judges the
    natural-language assertions (default: the agent's model); `turn_timeout_seconds` bounds the
    wait for each reply (a timeout is an `error`); `max_turn_latency_ms` fails a run whose
    slowest reply took longer. Expected calls of irreversible tools are refused unless
    `allow_irreversible` is set: a probe's calls are real."""

    agent_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    channel: ChannelName = Field(
        default="api", description="The deployment channel whose live version it tests."
    )
    scenario: Scenario
    interval_seconds: int = Field(default=DEFAULT_INTERVAL_SECONDS, ge=1, le=MAX_INTERVAL_SECONDS)
    enabled: bool = True
    allow_irreversible: bool = False
    judge_model: ModelName | None = None
    turn_timeout_seconds: float = Field(default=DEFAULT_TURN_TIMEOUT_SECONDS, gt=0, le=600)
    max_turn_latency_ms: int | None = Field(default=None, ge=1, le=600_000)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        title = data.get("name") if isinstance(data, dict) else None
        return with_scenario_defaults(data, str(title or "probe"))


class ProbeUpdate(Body):
    """What changes (the rest stays); `judge_model` or `max_turn_latency_ms` set to null go
    back to none."""

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    channel: ChannelName | None = None
    scenario: Scenario | None = None
    interval_seconds: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)
    enabled: bool | None = None
    allow_irreversible: bool | None = None
    judge_model: ModelName | None = None
    turn_timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    max_turn_latency_ms: int | None = Field(default=None, ge=1, le=600_000)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        title = data.get("name") if isinstance(data, dict) else None
        return with_scenario_defaults(data, str(title or "probe"))


class Probe(Resource):
    id: str
    workspace_id: str
    agent_id: str
    name: str
    channel: str
    scenario: Scenario
    interval_seconds: int
    enabled: bool
    allow_irreversible: bool
    judge_model: str | None
    turn_timeout_seconds: float
    max_turn_latency_ms: int | None
    next_run_at: datetime = Field(description="When the scheduler runs it next (if enabled).")
    running: bool = Field(description="A process holds its lease: a run is under way.")
    created_at: datetime


class ProbeCheck(Resource):
    """One assertion of the scenario and what the run found."""

    kind: str = Field(description="A sandbox check kind (communicate, action, ...) or latency.")
    passed: bool
    detail: str
    reasoning: str | None = Field(default=None, description="The judge's reasoning.")


class ProbeTurn(Resource):
    """One scripted message and how the agent answered it."""

    number: int
    message: str
    status: TurnStatus
    latency_ms: int | None = None
    reply: str | None = None
    error: str | None = None


class ProbeAlert(Resource):
    """What the run did to the probe's alert (`probe:<probe id>`)."""

    id: str
    change: AlertChange
    severity: str


class ProbeRun(Resource):
    id: str
    probe_id: str
    agent_id: str
    agent_version: int | None = Field(description="The version that answered.")
    conversation_id: str | None
    status: ProbeStatus
    reason: str = Field(description="Why it did not pass ('' when it passed).")
    latency_ms: int | None = Field(description="The agent's time over all turns.")
    channel: str
    deployment_arm: str | None = Field(description="live or canary (null: never deployed).")
    turns: list[ProbeTurn]
    checks: list[ProbeCheck]
    outcome: str | None = Field(description="The conversation's outcome once closed.")
    alert: ProbeAlert | None
    started_at: datetime
    finished_at: datetime | None
