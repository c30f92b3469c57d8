"""The usage API on the real app and database: sums that equal the events (exactly, as
decimals), half-open windows, grouping by kind, agent, day and channel, raw events page by
page, CSV and CloudEvents exports, the provider cost of each outcome, who may read usage, and
the errors a bad question gets."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from deputy.billing.seats import month_start, next_month_start
from deputy.services import usage as usage_service
from deputy.store.tables import utcnow
from tests.integration.channel_agent import ECHO_MODEL
from tests.integration.conftest import Api
from tests.integration.usage_helpers import (
    PRICED_MODEL,
    all_events,
    close,
    deploy_agent,
    meter_at,
    model_call_at,
    say,
    serve_models,
    start,
    usage,
    workspace_id,
)

pytestmark = pytest.mark.integration

# A past month (the current one holds the owner's seat): March 2025, 31 days.
MARCH = datetime(2025, 3, 1, tzinfo=UTC)
APRIL = datetime(2025, 4, 1, tzinfo=UTC)
WINDOW = {"from": MARCH.isoformat(), "to": APRIL.isoformat()}


def sums_of(events: list[dict[str, Any]]) -> dict[str, tuple[int, Decimal, Decimal | None]]:
    """Per kind: event count, quantity and known provider cost, summed here."""
    counted: dict[str, int] = defaultdict(int)
    quantity: dict[str, Decimal] = defaultdict(Decimal)
    cost: dict[str, Decimal | None] = defaultdict(lambda: None)
    for event in events:
        kind = event["kind"]
        counted[kind] += 1
        quantity[kind] += Decimal(event["quantity"])
        if event["cost_usd"] is not None:
            cost[kind] = (cost[kind] or Decimal(0)) + Decimal(event["cost_usd"])
    return {kind: (counted[kind], quantity[kind], cost[kind]) for kind in counted}


def test_the_summary_is_the_sum_of_the_events(api: Api) -> None:
    serve_models(api)
    priced = deploy_agent(api, "priced", PRICED_MODEL)
    unpriced = deploy_agent(api, "unpriced", ECHO_MODEL)
    for agent_id in (priced, unpriced, priced):
        conversation_id = start(api, agent_id)
        say(api, conversation_id, "Where is my order?")
        close(api, conversation_id)
    start(api, unpriced)  # started, never closed

    summary = usage(api)
    now = utcnow()
    assert (summary["start"], summary["end"]) == (
        month_start(now).isoformat().replace("+00:00", "Z"),
        next_month_start(now).isoformat().replace("+00:00", "Z"),
    )
    events = all_events(api)
    expected = sums_of(events)
    totals = {total["kind"]: total for total in summary["totals"]}
    assert set(totals) == {"seat", "conversation", "outcome", "model_call"}
    for kind, (count, quantity, cost) in expected.items():
        total = totals[kind]
        assert total["events"] == count
        assert Decimal(total["quantity"]) == quantity
        assert total["cost_usd"] == (None if cost is None else format(cost, "f"))
    assert (totals["conversation"]["events"], totals["outcome"]["quantity"]) == (4, "3")
    assert totals["seat"]["quantity"] == "1"  # the owner

    model_calls = [e for e in events if e["kind"] == "model_call"]
    priced_calls = [e for e in model_calls if e["model"] == PRICED_MODEL]
    assert priced_calls and all(e["cost_usd"] == "0.006" for e in priced_calls)
    assert totals["model_call"]["cost_usd"] == format(Decimal("0.006") * len(priced_calls), "f")
    assert totals["model_call"]["unpriced_events"] == len(model_calls) - len(priced_calls) > 0

    by_agent = usage(api, group_by="agent")
    agent_calls = {g["group"]: g["events"] for g in by_agent["groups"] if g["kind"] == "model_call"}
    assert agent_calls == {
        priced: len(priced_calls),
        unpriced: len(model_calls) - len(priced_calls),
    }
    seats = [g for g in by_agent["groups"] if g["kind"] == "seat"]
    assert [(g["group"], g["events"]) for g in seats] == [(None, 1)]
    only_priced = usage(api, agent_id=priced)
    assert {t["kind"]: t["events"] for t in only_priced["totals"]} == {
        "conversation": 2,
        "outcome": 2,
        "model_call": len(priced_calls),
    }

    by_channel = usage(api, group_by="channel")  # model calls take their conversation's
    channels = {(g["group"], g["kind"]) for g in by_channel["groups"]}
    assert channels == {
        ("api", "conversation"),
        ("api", "outcome"),
        ("api", "model_call"),
        (None, "seat"),
    }


def test_windows_are_half_open_and_sums_exact(api: Api) -> None:
    workspace = workspace_id(api)
    agent = deploy_agent(api, "windows", ECHO_MODEL)
    just_before = MARCH - timedelta(microseconds=1)
    for event_id, at, cost in (
        ("w-before", just_before, "0.1"),
        ("w-first", MARCH, "0.1"),
        ("w-mid-1", MARCH + timedelta(days=14, hours=12), "0.1"),
        ("w-mid-2", MARCH + timedelta(days=14, hours=13), "0.1"),
        ("w-end", APRIL, "0.1"),
    ):
        model_call_at(
            api, workspace, event_id, at, input_tokens=5, output_tokens=2, cost=cost, agent_id=agent
        )
    meter_at(
        api,
        workspace,
        "w-voice",
        "voice_minutes",
        MARCH + timedelta(days=2),
        "1.016667",
        agent_id=agent,
    )

    november = usage(api, **WINDOW)
    totals = {t["kind"]: t for t in november["totals"]}
    assert totals["model_call"]["events"] == 3  # not the one a microsecond before, nor at `to`
    assert totals["model_call"]["quantity"] == "21"
    assert totals["model_call"]["cost_usd"] == "0.3"  # exact: 0.1 + 0.1 + 0.1
    assert totals["voice_minutes"]["quantity"] == "1.016667"

    by_day = usage(api, group_by="day", **WINDOW)
    days = {(g["group"], g["kind"]): g["events"] for g in by_day["groups"]}
    assert days == {
        ("2025-03-01", "model_call"): 1,
        ("2025-03-15", "model_call"): 2,
        ("2025-03-03", "voice_minutes"): 1,
    }

    only_end = usage(api, to=MARCH.isoformat())  # the month `to` falls in, up to `to`
    assert only_end["start"] == "2025-02-01T00:00:00Z"
    assert [t["events"] for t in only_end["totals"] if t["kind"] == "model_call"] == [1]
    naive = usage(api, **{"from": "2025-03-01", "to": "2025-04-01T00:00:00"})  # UTC
    assert naive["totals"] == november["totals"]
    listed = all_events(api, kind="model_call", **WINDOW)
    assert [e["event_id"] for e in listed] == ["w-first", "w-mid-1", "w-mid-2"]


def test_events_come_oldest_first_page_by_page(api: Api) -> None:
    workspace = workspace_id(api)
    same_time = MARCH + timedelta(days=3)
    stamps = [MARCH + timedelta(days=5), same_time, MARCH + timedelta(days=1), same_time, MARCH]
    for number, at in enumerate(stamps):
        meter_at(api, workspace, f"p-{number}", "tool_call", at, subject="lookup")
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **WINDOW}
        if cursor:
            params["cursor"] = cursor
        page = usage(api, "/events", **params)
        seen.extend(page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    times = [e["occurred_at"] for e in seen]
    assert times == sorted(times)
    assert sorted(e["event_id"] for e in seen) == [f"p-{n}" for n in range(5)]
    assert seen[0]["event_id"] == "p-4"
    assert {e["subject"] for e in seen} == {"lookup"}
    first = seen[0]
    assert set(first) >= {
        "id",
        "event_id",
        "workspace_id",
        "kind",
        "quantity",
        "unit",
        "cost_usd",
        "occurred_at",
        "recorded_at",
        "data",
    }

    bad = api.client.get(
        "/v1/usage/events", params={"cursor": "not-a-cursor"}, headers=api.headers()
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")


def as_csv(value: Any) -> str:
    """How the API's JSON value of a column reads in the CSV export."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def export(api: Api, fmt: str, key: str | None = None, **params: Any) -> Any:
    response = api.client.get(
        "/v1/usage/events/export", params={"format": fmt, **params}, headers=api.headers(key)
    )
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports read 3 events a batch, so a handful of events already spans several."""
    monkeypatch.setattr(usage_service, "EXPORT_BATCH", 3)


@pytest.mark.usefixtures("small_batches")
def test_csv_export_parses_back_to_the_same_events(api: Api) -> None:
    workspace = workspace_id(api)
    agent = deploy_agent(api, "export", ECHO_MODEL)
    awkward = 'say "hi", then\r\nbye; naïve'
    for number in range(7):
        meter_at(
            api,
            workspace,
            f"e-{number}",
            "tool_call",
            MARCH + timedelta(hours=number),
            agent_id=agent,
            subject=awkward,
            data={"attempts": number, "note": awkward},
        )
    model_call_at(
        api, workspace, "e-cost", MARCH, input_tokens=1000, output_tokens=200, cost="0.006"
    )

    response = export(api, "csv", **WINDOW)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition == 'attachment; filename="usage-20250301-20250401.csv"'
    assert response.text.count("\r\n") >= 9  # CRLF line ends
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    listed = all_events(api, **WINDOW)
    assert len(rows) == len(listed) == 8
    for row, event in zip(rows, listed, strict=True):
        assert row == {name: as_csv(value) for name, value in event.items()}
    tricky = next(row for row in rows if row["event_id"] == "e-1")
    assert tricky["subject"] == awkward and json.loads(tricky["data"])["note"] == awkward

    only_cost = export(api, "csv", kind="model_call", **WINDOW)
    assert [r["event_id"] for r in csv.DictReader(io.StringIO(only_cost.text))] == ["e-cost"]
    empty = export(api, "csv", **{"from": "2020-01-01", "to": "2020-02-01"})
    assert empty.text.splitlines() == [",".join(listed[0])]  # the header alone


@pytest.mark.usefixtures("small_batches")
def test_cloudevents_export_is_a_valid_batch(api: Api) -> None:
    workspace = workspace_id(api)
    serve_models(api)
    agent = deploy_agent(api, "cloud", PRICED_MODEL)
    conversation_id = start(api, agent)
    say(api, conversation_id, "Hello")
    close(api, conversation_id)
    meter_at(api, workspace, "c-seatless", "tool_call", utcnow(), subject="t")

    response = export(api, "cloudevents")
    assert response.headers["content-type"] == "application/cloudevents-batch+json"
    batch = json.loads(response.text)
    listed = {e["event_id"]: e for e in all_events(api)}
    assert [item["id"] for item in batch] == list(listed)
    reader = JSONFormat()
    for item in batch:
        event = reader.read(None, json.dumps(item))  # raises on an invalid CloudEvent
        assert isinstance(event, CloudEvent)
        original = listed[event.get_id()]
        assert event.get_specversion() == "1.0"
        assert event.get_type() == f"dev.deputy.usage.{original['kind']}"
        source = f"/workspaces/{workspace}"
        if original["agent_id"]:
            source += f"/agents/{original['agent_id']}"
        assert event.get_source() == source
        assert event.get_subject() == original["conversation_id"]
        assert event.get_datacontenttype() == "application/json"
        time = event.get_time()
        assert time is not None and time == datetime.fromisoformat(original["occurred_at"])
        assert event.get_data() == original
    kinds = {item["type"] for item in batch}
    assert {
        "dev.deputy.usage.conversation",
        "dev.deputy.usage.outcome",
        "dev.deputy.usage.model_call",
        "dev.deputy.usage.seat",
    } <= kinds


def test_each_outcome_shows_its_provider_cost(api: Api) -> None:
    workspace = workspace_id(api)
    serve_models(api)
    priced = deploy_agent(api, "priced", PRICED_MODEL)
    unpriced = deploy_agent(api, "unpriced", ECHO_MODEL)
    paid = start(api, priced)
    say(api, paid, "Where is my order?")
    say(api, paid, "Thanks")
    close(api, paid, "resolved")
    free = start(api, unpriced)
    say(api, free, "Hello")
    close(api, free, "escalated")

    outcomes = {o["conversation_id"]: o for o in usage(api, "/outcomes")["data"]}
    assert set(outcomes) == {paid, free}
    calls = all_events(api, kind="model_call", conversation_id=paid)
    spent = sum((Decimal(c["cost_usd"]) for c in calls), Decimal(0))
    row = outcomes[paid]
    assert (row["outcome"], row["agent_id"], row["reversed"]) == ("resolved", priced, False)
    assert row["model_calls"] == len(calls) > 0 and row["unpriced_model_calls"] == 0
    assert Decimal(row["provider_cost_usd"]) == spent == Decimal("0.006") * len(calls)
    assert row["tokens"] == 1200 * len(calls) and row["tool_calls"] == 0
    other = outcomes[free]
    assert other["outcome"] == "escalated" and other["provider_cost_usd"] is None
    assert other["unpriced_model_calls"] == other["model_calls"] > 0

    meter_at(
        api,
        workspace,
        f"reversal:{paid}",
        "outcome_reversal",
        utcnow(),
        "-1",
        reverses_event_id=f"outcome:{paid}",
        conversation_id=paid,
        agent_id=priced,
    )
    again = {o["conversation_id"]: o["reversed"] for o in usage(api, "/outcomes")["data"]}
    assert again == {paid: True, free: False}
    page = usage(api, "/outcomes", limit=1, agent_id=unpriced)
    assert [o["conversation_id"] for o in page["data"]] == [free] and page["next_cursor"] is None


def test_only_the_workspace_and_billing_readers_see_usage(api: Api) -> None:
    agent = deploy_agent(api, "mine", ECHO_MODEL)
    serve_models(api)
    conversation_id = start(api, agent)
    mine = {e["event_id"] for e in all_events(api)}
    assert f"conversation:{conversation_id}" in mine

    _, other_key = api.new_workspace("Rival")
    theirs = all_events(api, key=other_key)
    assert [e["kind"] for e in theirs] == ["seat"] and not mine & {e["event_id"] for e in theirs}
    assert {t["kind"] for t in usage(api, key=other_key)["totals"]} == {"seat"}
    exported = export(api, "csv", key=other_key).text
    assert conversation_id not in exported and agent not in exported
    for path, params in (
        ("/v1/usage", {"agent_id": agent}),
        ("/v1/usage/events", {"conversation_id": conversation_id}),
        ("/v1/usage/outcomes", {"agent_id": agent}),
        ("/v1/usage/events/export", {"agent_id": agent}),
    ):
        hidden = api.client.get(path, params=params, headers=api.headers(other_key))
        assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "not_found")

    viewer = api.client.post(
        "/v1/members",
        json={"email": "v@example.com", "name": "Vi", "role": "viewer"},
        headers=api.headers(),
    ).json()
    viewer_key = api.client.post(
        "/v1/keys", json={"name": "vi", "member_id": viewer["id"]}, headers=api.headers()
    ).json()["secret"]
    assert {e["event_id"] for e in all_events(api, key=viewer_key)} >= mine
    channel_key = api.client.post(
        "/v1/keys",
        json={"name": "site", "kind": "channel", "agent_id": agent},
        headers=api.headers(),
    ).json()["secret"]
    reader_key = api.client.post(
        "/v1/keys",
        json={"name": "ro", "kind": "service", "scopes": ["agents:read"]},
        headers=api.headers(),
    ).json()["secret"]
    for key in (channel_key, reader_key):
        for path in (
            "/v1/usage",
            "/v1/usage/events",
            "/v1/usage/outcomes",
            "/v1/usage/events/export",
        ):
            denied = api.client.get(path, headers=api.headers(key))
            assert denied.status_code == 403, path
            assert denied.json()["error"]["details"] == {"required_scope": "billing:read"}
    assert api.client.get("/v1/usage").status_code == 401


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"from": "2026-11-10", "to": "2026-11-10"}, 422, "validation_error"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, 422, "validation_error"),
        ({"from": "2025-01-01", "to": "2026-01-03"}, 422, "validation_error"),
        ({"from": "yesterday"}, 422, "validation_error"),
        ({"group_by": "week"}, 422, "validation_error"),
    ],
)
def test_bad_questions_get_stable_errors(
    api: Api, params: dict[str, str], status: int, code: str
) -> None:
    response = api.client.get("/v1/usage", params=params, headers=api.headers())
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    if "to" in params and "from" in params and "yesterday" not in params.values():
        assert set(response.json()["error"]["details"]) >= {"from", "to"}


def test_bad_export_and_list_parameters_are_refused(api: Api) -> None:
    for path, params in (
        ("/v1/usage/events/export", {"format": "xml"}),
        ("/v1/usage/events", {"kind": "coffee"}),
        ("/v1/usage/events", {"limit": 0}),
        ("/v1/usage/events/export", {"from": "2024-01-01", "to": "2026-01-01"}),
    ):
        response = api.client.get(path, params=params, headers=api.headers())
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "validation_error"
