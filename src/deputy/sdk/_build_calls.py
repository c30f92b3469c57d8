"""The build operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from deputy.builder.report import BuildReport
from deputy.domain import builds as b
from deputy.domain import resources as r
from deputy.domain.scenarios import ScenarioSuite
from deputy.sdk._calls import (
    MODEL_FAILURE_CODES,
    Call,
    _key,
    _list_params,
    _model,
    _page,
    _post,
    _seg,
)

YAML = "application/yaml"


def _build(build_id: str) -> str:
    return f"/v1/builds/{_seg(build_id)}"


def create_build(
    goal: str,
    materials: Sequence[str],
    constraints: Sequence[str],
    tool_sources: Sequence[str],
    model: str | None,
    name: str | None,
    idempotency_key: str | None,
) -> Call[b.Build]:
    body: dict[str, Any] = {
        "goal": goal,
        "material_ids": list(materials),
        "constraints": list(constraints),
        "tool_source_ids": list(tool_sources),
    }
    if model is not None:
        body["model"] = model
    if name is not None:
        body["name"] = name
    return _post("/v1/builds", _model(b.Build), body, idempotency_key)


def get_build(build_id: str) -> Call[b.Build]:
    return Call("GET", _build(build_id), _model(b.Build))


def list_builds(limit: int | None, cursor: str | None) -> Call[r.Page[b.Build]]:
    return Call("GET", "/v1/builds", _page(b.Build), params=_list_params(limit, cursor))


def _spec_json(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("a spec is a JSON object")
    return data


def _text(response: httpx.Response) -> str:
    return response.text


def spec_json(build_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{_build(build_id)}/spec", _spec_json)


def spec_yaml(build_id: str) -> Call[str]:
    path = f"{_build(build_id)}/spec"
    return Call("GET", path, _text, params={"format": "yaml"}, accept=YAML)


def scenarios(build_id: str) -> Call[ScenarioSuite]:
    return Call("GET", f"{_build(build_id)}/scenarios", _model(ScenarioSuite))


def report(build_id: str) -> Call[BuildReport]:
    return Call("GET", f"{_build(build_id)}/report", _model(BuildReport))


def change_build(
    build_id: str, text: str, timeout: float | None, idempotency_key: str | None
) -> Call[b.BuildChange]:
    """A change request. It may ask the build's model: a model's failure is final, and a
    resend after a lost answer replays the stored one."""
    return Call(
        "POST",
        f"{_build(build_id)}/changes",
        _model(b.BuildChange),
        json={"text": text},
        idempotency_key=_key(idempotency_key),
        final_codes=MODEL_FAILURE_CODES,
        timeout=timeout,
    )


def list_changes(
    build_id: str, limit: int | None, cursor: str | None
) -> Call[r.Page[b.BuildChange]]:
    return Call(
        "GET",
        f"{_build(build_id)}/changes",
        _page(b.BuildChange),
        params=_list_params(limit, cursor),
    )


def create_agent(
    build_id: str,
    agent_id: str | None,
    name: str | None,
    note: str | None,
    idempotency_key: str | None,
) -> Call[r.AgentVersion]:
    body: dict[str, Any] = {}
    for field, value in (("agent_id", agent_id), ("name", name), ("note", note)):
        if value is not None:
            body[field] = value
    return _post(f"{_build(build_id)}/agent", _model(r.AgentVersion), body, idempotency_key)
