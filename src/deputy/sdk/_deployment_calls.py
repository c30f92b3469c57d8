"""The deployment operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from typing import Any, Literal

from deputy.domain import lifecycle as lc
from deputy.sdk._calls import Call, _list, _model, _post, _seg

Change = Literal["promote", "pause", "resume", "rollback"]


def _deployment(deployment_id: str) -> str:
    return f"/v1/deployments/{_seg(deployment_id)}"


def deploy(
    agent_id: str,
    version: int,
    channel: str,
    canary_percent: int | None,
    proposal_id: str | None,
    note: str,
    idempotency_key: str | None,
) -> Call[lc.Deployment]:
    body: dict[str, Any] = {"version": version, "channel": channel, "note": note}
    if canary_percent is not None:
        body["canary_percent"] = canary_percent
    if proposal_id is not None:
        body["proposal_id"] = proposal_id
    return _post(
        f"/v1/agents/{_seg(agent_id)}/deployments",
        _model(lc.Deployment),
        body,
        idempotency_key,
    )


def list_deployments(agent_id: str) -> Call[list[lc.Deployment]]:
    return Call("GET", f"/v1/agents/{_seg(agent_id)}/deployments", _list(lc.Deployment))


def get_deployment(deployment_id: str) -> Call[lc.Deployment]:
    return Call("GET", _deployment(deployment_id), _model(lc.Deployment))


def change(
    deployment_id: str, action: Change, body: dict[str, Any] | None, idempotency_key: str | None
) -> Call[lc.Deployment]:
    """`promote`, `pause`, `resume` or `rollback` (with a body)."""
    return _post(
        f"{_deployment(deployment_id)}/{action}", _model(lc.Deployment), body, idempotency_key
    )


def canary(deployment_id: str) -> Call[lc.CanaryStatus]:
    return Call("GET", f"{_deployment(deployment_id)}/canary", _model(lc.CanaryStatus))


def trust(agent_id: str) -> Call[lc.TrustRecord]:
    return Call("GET", f"/v1/agents/{_seg(agent_id)}/trust", _model(lc.TrustRecord))
