"""The channel connection operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deputy.domain import channels as c
from deputy.domain import resources as r
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page, _post, _seg

PATH = "/v1/channel-connections"


def _connection(connection_id: str) -> str:
    return f"{PATH}/{_seg(connection_id)}"


def create_connection(
    agent_id: str,
    kind: c.ChannelKind,
    name: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    idempotency_key: str | None,
) -> Call[c.ChannelConnection]:
    body = {
        "agent_id": agent_id,
        "kind": kind,
        "name": name,
        "config": dict(config),
        "secrets": dict(secrets),
    }
    return _post(PATH, _model(c.ChannelConnection), body, idempotency_key)


def list_connections(
    agent_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[c.ChannelConnection]]:
    params = _list_params(limit, cursor)
    if agent_id is not None:
        params["agent_id"] = agent_id
    return Call("GET", PATH, _page(c.ChannelConnection), params=params)


def get_connection(connection_id: str) -> Call[c.ChannelConnection]:
    return Call("GET", _connection(connection_id), _model(c.ChannelConnection))


def update_connection(
    connection_id: str,
    config: Mapping[str, Any] | None,
    secrets: Mapping[str, str] | None,
    enabled: bool | None,
) -> Call[c.ChannelConnection]:
    """Only what is given changes; a secret set to "" is removed."""
    body: dict[str, Any] = {}
    if config is not None:
        body["config"] = dict(config)
    if secrets:
        body["secrets"] = dict(secrets)
    if enabled is not None:
        body["enabled"] = enabled
    return Call("PATCH", _connection(connection_id), _model(c.ChannelConnection), json=body)


def delete_connection(connection_id: str) -> Call[None]:
    return Call("DELETE", _connection(connection_id), _nothing, gone_is_done=True)
