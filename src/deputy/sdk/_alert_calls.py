"""The alerts, alert targets and SLO operations of the API, as `Call`s (see
`deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deputy.domain import alerts as a
from deputy.domain import resources as r
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page, _post, _seg

TARGETS = "/v1/alert-targets"
ALERTS = "/v1/alerts"


def _target(target_id: str) -> str:
    return f"{TARGETS}/{_seg(target_id)}"


def _alert(alert_id: str) -> str:
    return f"{ALERTS}/{_seg(alert_id)}"


def create_target(
    name: str,
    kind: a.TargetKind,
    config: Mapping[str, Any],
    secret: str | None,
    min_severity: a.Severity,
    enabled: bool,
    idempotency_key: str | None,
) -> Call[a.AlertTarget]:
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "config": dict(config),
        "min_severity": min_severity,
        "enabled": enabled,
    }
    if secret is not None:
        body["secret"] = secret
    return _post(TARGETS, _model(a.AlertTarget), body, idempotency_key)


def list_targets(limit: int | None, cursor: str | None) -> Call[r.Page[a.AlertTarget]]:
    return Call("GET", TARGETS, _page(a.AlertTarget), params=_list_params(limit, cursor))


def get_target(target_id: str) -> Call[a.AlertTarget]:
    return Call("GET", _target(target_id), _model(a.AlertTarget))


def update_target(
    target_id: str,
    config: Mapping[str, Any] | None,
    secret: str | None,
    min_severity: a.Severity | None,
    enabled: bool | None,
) -> Call[a.AlertTarget]:
    """Only what is given changes; `secret=""` removes the secret."""
    body: dict[str, Any] = {}
    if config is not None:
        body["config"] = dict(config)
    if secret is not None:
        body["secret"] = secret
    if min_severity is not None:
        body["min_severity"] = min_severity
    if enabled is not None:
        body["enabled"] = enabled
    return Call("PATCH", _target(target_id), _model(a.AlertTarget), json=body)


def delete_target(target_id: str) -> Call[None]:
    return Call("DELETE", _target(target_id), _nothing, gone_is_done=True)


def send_test(target_id: str, idempotency_key: str | None) -> Call[a.AlertTestResult]:
    body = {"target_id": target_id}
    return _post(f"{ALERTS}/test", _model(a.AlertTestResult), body, idempotency_key)


def list_alerts(
    status: a.AlertStatus | None,
    agent_id: str | None,
    kind: a.AlertKind | None,
    limit: int | None,
    cursor: str | None,
) -> Call[r.Page[a.Alert]]:
    params = _list_params(limit, cursor)
    for name, value in (("status", status), ("agent_id", agent_id), ("kind", kind)):
        if value is not None:
            params[name] = value
    return Call("GET", ALERTS, _page(a.Alert), params=params)


def get_alert(alert_id: str) -> Call[a.Alert]:
    return Call("GET", _alert(alert_id), _model(a.Alert))


def silence_alert(
    alert_id: str, minutes: int, reason: str, idempotency_key: str | None
) -> Call[a.Alert]:
    body = {"minutes": minutes, "reason": reason}
    return _post(f"{_alert(alert_id)}/silence", _model(a.Alert), body, idempotency_key)


def resolve_alert(alert_id: str, reason: str, idempotency_key: str | None) -> Call[a.Alert]:
    body = {"reason": reason}
    return _post(f"{_alert(alert_id)}/resolve", _model(a.Alert), body, idempotency_key)


def agent_slos(agent_id: str) -> Call[a.AgentSlos]:
    return Call("GET", f"/v1/agents/{_seg(agent_id)}/slos", _model(a.AgentSlos))


def agent_status(agent_id: str) -> Call[a.AgentStatus]:
    return Call("GET", f"/v1/agents/{_seg(agent_id)}/status", _model(a.AgentStatus))
