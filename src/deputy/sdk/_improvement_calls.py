"""The improvement loop's operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deputy.domain import resources as r
from deputy.domain.improvement import ImprovementRun
from deputy.sdk._calls import Call, _list_params, _model, _page, _post, _seg
from deputy.sdk._sandbox_calls import World, _json

RUNS = "/v1/improvement/runs"


def _run(run_id: str) -> str:
    return f"{RUNS}/{_seg(run_id)}"


def create_run(
    agent_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    max_conversations: int | None,
    max_candidates: int | None,
    model: str | None,
    trials: int | None,
    suite_scenarios: int | None,
    world: World | None,
    idempotency_key: str | None,
) -> Call[ImprovementRun]:
    body: dict[str, Any] = {"agent_id": agent_id}
    optional = (
        ("since", None if since is None else since.isoformat()),
        ("until", None if until is None else until.isoformat()),
        ("max_conversations", max_conversations),
        ("max_candidates", max_candidates),
        ("model", model),
        ("trials", trials),
        ("suite_scenarios", suite_scenarios),
    )
    body.update({field: value for field, value in optional if value is not None})
    if world is not None:
        body["world"] = {"sources": {name: _json(t) for name, t in world.items()}}
    return _post(RUNS, _model(ImprovementRun), body, idempotency_key)


def get_run(run_id: str) -> Call[ImprovementRun]:
    return Call("GET", _run(run_id), _model(ImprovementRun))


def list_runs(
    agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[ImprovementRun]]:
    params = _list_params(limit, cursor)
    if agent_id is not None:
        params["agent_id"] = agent_id
    return Call("GET", RUNS, _page(ImprovementRun), params=params)


def cancel_run(run_id: str, idempotency_key: str | None) -> Call[ImprovementRun]:
    return _post(f"{_run(run_id)}/cancel", _model(ImprovementRun), None, idempotency_key)
