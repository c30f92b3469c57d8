"""The rules behind usage events, without a database: voice minutes from a call's length,
seat-months, usage windows, and the CSV and CloudEvents encodings of exported events."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat

from deputy.billing.export import cloudevent, cloudevents_chunks, csv_chunks
from deputy.billing.meter import call_minutes, seat_fact, voice_minutes_fact
from deputy.billing.seats import month_start, next_month_start
from deputy.billing.usage_report import event_fields, event_info, resolve_window
from deputy.domain.errors import ValidationFailed
from deputy.domain.usage import UsageEventInfo
from deputy.store import tables as t

NOW = datetime(2026, 11, 22, 17, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "billed", "minutes"),
    [
        (0.0, 0, "0.000000"),
        (0.2, 1, "0.016667"),  # rounded up to the second
        (59.0, 59, "0.983333"),
        (60.0, 60, "1.000000"),
        (60.001, 61, "1.016667"),
        (90.0, 90, "1.500000"),
        (3600.0, 3600, "60.000000"),
    ],
)
def test_a_call_is_billed_by_the_second_in_minutes(
    seconds: float, billed: int, minutes: str
) -> None:
    assert call_minutes(seconds) == (billed, Decimal(minutes))


def conversation(**meta: str) -> t.Conversation:
    return t.Conversation(
        id="cnv_01JD000000000000000000000A",
        workspace_id="ws_1",
        agent_id="agt_1",
        channel="voice",
        meta=dict(meta),
    )


def test_a_call_is_one_voice_event_per_call_and_conversation() -> None:
    long_sid = "CA" + "f" * 62  # the longest call sid the webhook accepts
    started = NOW - timedelta(minutes=2)
    fact = voice_minutes_fact(
        conversation(),
        call_sid=long_sid,
        stream_sid="MZ1",
        started_at=started,
        duration_seconds=61.2,
    )
    assert fact is not None
    assert len(fact.event_id) <= 64 and fact.event_id.startswith("voice:cnv_01JD")
    assert (fact.kind, fact.unit, fact.quantity) == ("voice_minutes", "minute", Decimal("1.033333"))
    assert (fact.occurred_at, fact.agent_id, fact.channel) == (started, "agt_1", "voice")
    assert fact.data == {"seconds": 62, "call_sid": long_sid, "stream_sid": "MZ1"}
    again = voice_minutes_fact(
        conversation(), call_sid=long_sid, stream_sid="MZ2", started_at=NOW, duration_seconds=5
    )
    other = voice_minutes_fact(
        conversation(), call_sid="CA2", stream_sid="MZ1", started_at=started, duration_seconds=61
    )
    assert again is not None and other is not None
    assert again.event_id == fact.event_id  # the same call: written once
    assert other.event_id != fact.event_id
    probe = voice_minutes_fact(
        conversation(probe_id="prb_1"),
        call_sid="CA3",
        stream_sid="MZ",
        started_at=NOW,
        duration_seconds=30,
    )
    assert probe is None


def member(created_at: datetime) -> t.Member:
    return t.Member(id="mem_1", workspace_id="ws_1", role="viewer", created_at=created_at)


def test_a_seat_is_one_event_per_member_and_month() -> None:
    november = month_start(NOW)
    joined = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    fact = seat_fact(member(joined), november)
    assert fact.event_id == "seat:mem_1:2026-11"
    assert (fact.kind, fact.unit, fact.quantity, fact.subject) == (
        "seat",
        "seat",
        Decimal(1),
        "mem_1",
    )
    assert fact.occurred_at == joined  # joined during the month
    december = seat_fact(member(joined), next_month_start(NOW))
    assert december.event_id == "seat:mem_1:2026-12"
    assert december.occurred_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.data == {"role": "viewer", "month": "2026-12"}


def test_months_roll_over_in_utc() -> None:
    late_december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert month_start(late_december) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(late_december) == datetime(2027, 1, 1, tzinfo=UTC)
    tokyo = timezone(timedelta(hours=9))
    new_year_in_tokyo = datetime(2027, 1, 1, 3, 0, tzinfo=tokyo)  # still 2026-12-31 in UTC
    assert month_start(new_year_in_tokyo) == datetime(2026, 12, 1, tzinfo=UTC)


def test_windows_default_to_the_month_and_are_checked() -> None:
    november, december = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert resolve_window(None, None, NOW) == (november, december)
    assert resolve_window(None, november, NOW) == (datetime(2026, 10, 1, tzinfo=UTC), november)
    october_15 = datetime(2026, 10, 15, tzinfo=UTC)
    assert resolve_window(october_15, None, NOW) == (october_15, december)
    naive = resolve_window(datetime(2026, 3, 1), datetime(2026, 4, 1), NOW)
    assert naive == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    year = resolve_window(datetime(2025, 1, 1), datetime(2026, 1, 2), NOW)  # 366 days
    assert year[1] - year[0] == timedelta(days=366)
    for start, end in (
        (november, november),
        (december, november),
        (datetime(2025, 1, 1), datetime(2026, 1, 2, 0, 0, 1)),
    ):
        with pytest.raises(ValidationFailed) as refused:
            resolve_window(start, end, NOW)
        assert set(refused.value.details) >= {"from", "to"}
    for start, end in ((None, datetime.min), (datetime.max, None)):  # no month before / after
        with pytest.raises(ValidationFailed):
            resolve_window(start, end, NOW)


def event(**changes: Any) -> dict[str, Any]:
    """An exported event: its JSON as the API shows it."""
    fields: dict[str, Any] = {
        "id": "use_1",
        "event_id": "tool_call:tcall_1",
        "workspace_id": "ws_1",
        "kind": "tool_call",
        "agent_id": "agt_1",
        "conversation_id": "cnv_1",
        "channel": None,
        "subject": 'lookup, "quoted"\nsecond line',
        "quantity": "1",
        "unit": "call",
        "reverses_event_id": None,
        "outcome": "succeeded",
        "model": None,
        "provider": None,
        "error_code": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "latency_ms": 0,
        "cost_usd": None,
        "occurred_at": NOW,
        "recorded_at": NOW + timedelta(milliseconds=3),
        "data": {"attempts": 2, "effect": "read"},
    }
    return UsageEventInfo.model_validate({**fields, **changes}).model_dump(mode="json")


def test_exported_fields_are_the_api_s_json() -> None:
    for at in (NOW, NOW + timedelta(microseconds=5)):
        row = t.UsageEventRow(
            **{**event(), "occurred_at": at, "recorded_at": at, "cost_usd": "1E-7"}
        )
        assert event_fields(row) == event_info(row).model_dump(mode="json")
        assert event_fields(row)["occurred_at"].endswith("Z")


def test_csv_is_rfc_4180() -> None:
    text = "".join(csv_chunks([[event()], [], [event(id="use_2", subject=None, data={})]]))
    assert text.endswith("\r\n") and text.count("\r\n") == 3  # header and 2 rows end in CRLF
    header, first, second = list(csv.reader(io.StringIO(text, newline="")))
    assert header == list(UsageEventInfo.model_fields)
    row = dict(zip(header, first, strict=True))
    assert row["subject"] == 'lookup, "quoted"\nsecond line'
    assert '"lookup, ""quoted""' in text  # quotes doubled inside a quoted field
    assert json.loads(row["data"]) == {"attempts": 2, "effect": "read"}
    assert (row["channel"], row["cost_usd"], row["occurred_at"]) == ("", "", "2026-11-22T17:30:00Z")
    assert dict(zip(header, second, strict=True))["subject"] == ""


def test_cloudevents_are_a_valid_json_batch() -> None:
    assert "".join(cloudevents_chunks([])) == "[]"
    seat = event(
        id="use_3",
        event_id="seat:mem_1:2026-11",
        kind="seat",
        agent_id=None,
        conversation_id=None,
        unit="seat",
        subject="mem_1",
    )
    batch = json.loads("".join(cloudevents_chunks([[event()], [], [seat]])))
    assert [item["id"] for item in batch] == ["tool_call:tcall_1", "seat:mem_1:2026-11"]
    reader = JSONFormat()
    for item in batch:
        reader.read(None, json.dumps(item))  # raises on an invalid CloudEvent
    tool, seated = batch
    assert (tool["source"], tool["type"], tool["subject"]) == (
        "/workspaces/ws_1/agents/agt_1",
        "dev.deputy.usage.tool_call",
        "cnv_1",
    )
    assert (seated["source"], seated["type"]) == ("/workspaces/ws_1", "dev.deputy.usage.seat")
    assert "subject" not in seated
    assert tool["time"] == "2026-11-22T17:30:00Z" and tool["specversion"] == "1.0"
    assert tool["data"] == event() == cloudevent(event())["data"]
