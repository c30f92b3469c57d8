"""The tool-source and tool-call operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deputy.domain import resources as r
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page, _post, _seg

SOURCE_FIELDS = (
    "description",
    "document",
    "material_id",
    "base_url",
    "mcp",
    "auth",
    "honours_idempotency_keys",
)


def _fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a create/update: the fields given (None means "not given")."""
    body: dict[str, Any] = {}
    for name in SOURCE_FIELDS:
        value = values.get(name)
        if value is not None:
            body[name] = dict(value) if isinstance(value, Mapping) else value
    return body


def create_tool_source(
    name: str, kind: r.ToolSourceKind, fields: Mapping[str, Any], idempotency_key: str | None
) -> Call[r.ToolSource]:
    body = {"name": name, "kind": kind, **_fields(fields)}
    return _post("/v1/tool-sources", _model(r.ToolSource), body, idempotency_key)


def list_tool_sources(limit: int | None, cursor: str | None) -> Call[r.Page[r.ToolSource]]:
    return Call("GET", "/v1/tool-sources", _page(r.ToolSource), params=_list_params(limit, cursor))


def get_tool_source(source_id: str) -> Call[r.ToolSource]:
    return Call("GET", f"/v1/tool-sources/{_seg(source_id)}", _model(r.ToolSource))


def update_tool_source(source_id: str, fields: Mapping[str, Any]) -> Call[r.ToolSource]:
    return Call(
        "PATCH", f"/v1/tool-sources/{_seg(source_id)}", _model(r.ToolSource), json=_fields(fields)
    )


def delete_tool_source(source_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/tool-sources/{_seg(source_id)}", _nothing, gone_is_done=True)


def tool_source_operations(source_id: str) -> Call[r.ToolSourceOperations]:
    return Call("GET", f"/v1/tool-sources/{_seg(source_id)}/tools", _model(r.ToolSourceOperations))


def spec_tools(
    source_id: str, operations: Sequence[str] | None, idempotency_key: str | None
) -> Call[r.SpecTools]:
    body: dict[str, Any] = {}
    if operations is not None:
        body["operations"] = list(operations)
    path = f"/v1/tool-sources/{_seg(source_id)}/spec-tools"
    return _post(path, _model(r.SpecTools), body, idempotency_key)


def list_tool_calls(
    agent_id: str, conversation_id: str | None, limit: int | None, cursor: str | None
) -> Call[r.Page[r.ToolCallInfo]]:
    params = _list_params(limit, cursor)
    if conversation_id is not None:
        params["conversation_id"] = conversation_id
    return Call(
        "GET", f"/v1/agents/{_seg(agent_id)}/tool-calls", _page(r.ToolCallInfo), params=params
    )
