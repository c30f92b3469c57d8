"""The usage operations of the API, as `Call`s (see `deputy.sdk._calls`)."""

from __future__ import annotations

from datetime import datetime

from deputy.domain import resources as r
from deputy.domain.billing import UsageKind
from deputy.domain.usage import (
    ExportFormat,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
)
from deputy.sdk._calls import Call, _list_params, _model, _nothing, _page

PATH = "/v1/usage"
EXPORT_MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv",
    "cloudevents": "application/cloudevents-batch+json",
}


def _window(
    start: datetime | None, end: datetime | None, agent_id: str | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if start is not None:
        params["from"] = start.isoformat()
    if end is not None:
        params["to"] = end.isoformat()
    if agent_id is not None:
        params["agent_id"] = agent_id
    return params


def summary(
    start: datetime | None, end: datetime | None, agent_id: str | None, group_by: UsageGroupBy
) -> Call[UsageSummary]:
    params = {**_window(start, end, agent_id), "group_by": group_by}
    return Call("GET", PATH, _model(UsageSummary), params=params)


def list_events(
    start: datetime | None,
    end: datetime | None,
    kind: UsageKind | None,
    agent_id: str | None,
    conversation_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[r.Page[UsageEventInfo]]:
    params = {**_window(start, end, agent_id), **_list_params(limit, cursor)}
    if kind is not None:
        params["kind"] = kind
    if conversation_id is not None:
        params["conversation_id"] = conversation_id
    return Call("GET", f"{PATH}/events", _page(UsageEventInfo), params=params)


def export_events(
    export_format: ExportFormat,
    start: datetime | None,
    end: datetime | None,
    kind: UsageKind | None,
    agent_id: str | None,
) -> Call[None]:
    """Streamed by the client; `parse` is unused."""
    params = {**_window(start, end, agent_id), "format": export_format}
    if kind is not None:
        params["kind"] = kind
    return Call(
        "GET",
        f"{PATH}/events/export",
        _nothing,
        params=params,
        accept=EXPORT_MEDIA_TYPES[export_format],
    )


def list_outcomes(
    start: datetime | None,
    end: datetime | None,
    agent_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[r.Page[OutcomeCost]]:
    params = {**_window(start, end, agent_id), **_list_params(limit, cursor)}
    return Call("GET", f"{PATH}/outcomes", _page(OutcomeCost), params=params)
