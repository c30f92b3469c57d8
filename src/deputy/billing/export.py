"""Usage events as files: CSV (RFC 4180: a header row, CRLF line ends, fields quoted when they
need it) and CloudEvents 1.0 in the JSON batch format. Both are produced piece by piece from
batches of events, so an export of any size streams in constant memory.

Events come as the JSON the API shows for them (`deputy.billing.usage_report.event_fields`),
every column; in CSV `data` is its JSON text and an absent value an empty field. A
CloudEvent's `data` is the event itself."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

from deputy.domain.usage import ExportFormat, UsageEventInfo

CSV_COLUMNS: Final = tuple(UsageEventInfo.model_fields)
Event = dict[str, Any]
MEDIA_TYPES: Final[dict[ExportFormat, str]] = {
    "csv": "text/csv; charset=utf-8",
    "cloudevents": "application/cloudevents-batch+json",
}
FILE_SUFFIXES: Final[dict[ExportFormat, str]] = {"csv": "csv", "cloudevents": "json"}
CLOUDEVENT_TYPE_PREFIX: Final = "dev.deputy.usage."


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _csv_lines(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([_csv_field(value) for value in row] for row in rows)
    return buffer.getvalue()


def csv_chunks(batches: Iterable[list[Event]]) -> Iterator[str]:
    """The header, then one chunk of rows per batch."""
    yield _csv_lines([CSV_COLUMNS])
    for batch in batches:
        yield _csv_lines([event[column] for column in CSV_COLUMNS] for event in batch)


def cloudevent(event: Event) -> dict[str, Any]:
    """A usage event as a CloudEvent 1.0 (structured JSON)."""
    source = f"/workspaces/{event['workspace_id']}"
    if event["agent_id"]:
        source += f"/agents/{event['agent_id']}"
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event["event_id"],
        "source": source,
        "type": CLOUDEVENT_TYPE_PREFIX + event["kind"],
        "time": event["occurred_at"],
        "datacontenttype": "application/json",
    }
    if event["conversation_id"]:
        envelope["subject"] = event["conversation_id"]
    envelope["data"] = event
    return envelope


def cloudevents_chunks(batches: Iterable[list[Event]]) -> Iterator[str]:
    """A JSON array of CloudEvents (`application/cloudevents-batch+json`), a batch a chunk."""
    yield "["
    first = True
    for batch in batches:
        if not batch:
            continue
        body = ",".join(json.dumps(cloudevent(event), ensure_ascii=False) for event in batch)
        yield body if first else "," + body
        first = False
    yield "]"


def export_chunks(export_format: ExportFormat, batches: Iterable[list[Event]]) -> Iterator[str]:
    if export_format == "csv":
        return csv_chunks(batches)
    return cloudevents_chunks(batches)
