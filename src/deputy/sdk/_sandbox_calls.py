"""The sandbox operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from deputy.domain import resources as r
from deputy.domain import sandbox as s
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.domain.scenarios import ScenarioSuite
from deputy.sdk._calls import Call, _list_params, _model, _page, _post, _seg

RUNS = "/v1/sandbox/runs"
World = Mapping[str, s.SimulationTarget | s.StagingTarget | s.RecordedTarget | Mapping[str, Any]]
"""Spec tool source -> target: `{"target": "simulation", "backend": "retail"}`,
`{"target": "staging", "source": "retail_staging"}` or `{"target": "recorded"}`."""


def _run(run_id: str) -> str:
    return f"{RUNS}/{_seg(run_id)}"


def _json(value: BaseModel | Mapping[str, Any]) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)


def create_run(
    agent_id: str,
    *,
    suite: ScenarioSuite | Mapping[str, Any] | None,
    build_id: str | None,
    version: int | None,
    scenario_ids: Sequence[str],
    trials: int,
    seed: int,
    model: str | None,
    customer_model: str | None,
    judge_model: str | None,
    concurrency: int,
    world: World | None,
    idempotency_key: str | None,
) -> Call[s.SandboxRun]:
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "scenario_ids": list(scenario_ids),
        "trials": trials,
        "seed": seed,
        "concurrency": concurrency,
        "world": {"sources": {name: _json(t) for name, t in (world or {}).items()}},
    }
    optional = (
        ("suite", None if suite is None else _json(suite)),
        ("build_id", build_id),
        ("version", version),
        ("model", model),
        ("customer_model", customer_model),
        ("judge_model", judge_model),
    )
    body.update({field: value for field, value in optional if value is not None})
    return _post(RUNS, _model(s.SandboxRun), body, idempotency_key)


def get_run(run_id: str) -> Call[s.SandboxRun]:
    return Call("GET", _run(run_id), _model(s.SandboxRun))


def list_runs(
    agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[s.SandboxRun]]:
    params = _list_params(limit, cursor)
    if agent_id is not None:
        params["agent_id"] = agent_id
    return Call("GET", RUNS, _page(s.SandboxRun), params=params)


def list_trials(
    run_id: str, scenario_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[s.SandboxTrial]]:
    params = _list_params(limit, cursor)
    if scenario_id is not None:
        params["scenario_id"] = scenario_id
    return Call("GET", f"{_run(run_id)}/trials", _page(s.SandboxTrial), params=params)


def scorecard(run_id: str) -> Call[Scorecard]:
    return Call("GET", f"{_run(run_id)}/scorecard", _model(Scorecard))


def cancel_run(run_id: str, idempotency_key: str | None) -> Call[s.SandboxRun]:
    return _post(f"{_run(run_id)}/cancel", _model(s.SandboxRun), None, idempotency_key)


def compare(baseline: str, candidate: str) -> Call[Comparison]:
    params: dict[str, str | int] = {"baseline": baseline, "candidate": candidate}
    return Call("GET", "/v1/sandbox/comparisons", _model(Comparison), params=params)
