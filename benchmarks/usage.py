"""Usage at volume: how long the usage API's questions take over a month of events, and what an
export costs in time and memory.

A workspace gets `--events` usage events spread over one month (per conversation: the
conversation, four model calls with varied tokens and costs, a tool call and the outcome),
written in bulk. Then, through the service functions the API calls: the summary per kind,
agent, day and channel; the first and a deep page of raw events; a page of outcome costs; and
the full export as CSV and as CloudEvents, with its throughput, and the peak of Python memory
allocated while the CSV export streams (tracemalloc, in a separate run: it should not grow
with the number of events).
`meter` itself is timed too: one fact per transaction, and the same facts written again.

Results go to benchmarks/results/usage.json.

    PYTHONPATH=src python benchmarks/usage.py [--events 200000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform as host
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert

from deputy.billing.meter import UsageFact, meter
from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.domain.tenancy import Principal
from deputy.domain.usage import ExportFormat
from deputy.services import agents
from deputy.services import usage as svc
from deputy.services.keys import authenticate
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.store import tables as t

RESULTS = Path(__file__).parent / "results" / "usage.json"
MONTH = datetime(2025, 3, 1, tzinfo=UTC)
WINDOW = {"start": MONTH, "end": datetime(2025, 4, 1, tzinfo=UTC)}
EVENTS_PER_CONVERSATION = 7
BULK = 5000
T = TypeVar("T")


def _conversation_events(
    workspace: str, agent: str, number: int, at: datetime
) -> list[dict[str, Any]]:
    cid = f"cnv_bench{number:021d}"
    base = {"workspace_id": workspace, "agent_id": agent, "conversation_id": cid, "data": {}}
    rows = [
        {
            **base,
            "event_id": f"conversation:{cid}",
            "kind": "conversation",
            "channel": "api",
            "quantity": "1",
            "unit": "conversation",
            "occurred_at": at,
        },
        {
            **base,
            "event_id": f"tool_call:{cid}",
            "kind": "tool_call",
            "subject": "lookup",
            "outcome": "succeeded",
            "quantity": "1",
            "unit": "call",
            "occurred_at": at + timedelta(seconds=2),
        },
        {
            **base,
            "event_id": f"outcome:{cid}",
            "kind": "outcome",
            "channel": "api",
            "subject": "resolved",
            "outcome": "resolved",
            "quantity": "1",
            "unit": "outcome",
            "occurred_at": at + timedelta(seconds=9),
        },
    ]
    for call in range(4):
        tokens = 800 + (number * 37 + call * 101) % 900
        rows.append(
            {
                **base,
                "event_id": f"use_bench_{number}_{call}",
                "kind": "model_call",
                "model": "openai:gpt-bench",
                "provider": "openai",
                "outcome": "ok",
                "input_tokens": tokens - 100,
                "output_tokens": 100,
                "quantity": str(tokens),
                "unit": "token",
                "cost_usd": str(Decimal(tokens) * Decimal("0.000002")),
                "occurred_at": at + timedelta(seconds=1 + call),
            }
        )
    return rows


def fill(platform: Platform, workspace: str, agent_ids: list[str], events: int) -> float:
    """Write about `events` events in bulk; the seconds it took."""
    conversations = events // EVENTS_PER_CONVERSATION
    spacing = timedelta(days=30) / max(conversations, 1)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    written = 0
    for number in range(conversations):
        at = MONTH + spacing * number
        agent = agent_ids[number % len(agent_ids)]
        for row in _conversation_events(workspace, agent, number, at):
            written += 1
            batch.append({"id": f"use_bench{written:012d}", **row})
        if len(batch) >= BULK or number == conversations - 1:
            with platform.db.tenant_session(workspace) as session:
                session.execute(insert(t.UsageEventRow), batch)
            batch = []
    return time.perf_counter() - started


def timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def export_size(platform: Platform, owner: Principal, fmt: ExportFormat) -> int:
    export = svc.export_events(
        platform, owner, export_format=fmt, kind=None, agent_id=None, **WINDOW
    )
    return sum(len(chunk.encode()) for chunk in export.chunks)


def measure_export(platform: Platform, owner: Principal, fmt: ExportFormat) -> dict[str, Any]:
    seconds, size = timed(lambda: export_size(platform, owner, fmt))
    return {"seconds": round(seconds, 2), "bytes": size}


def peak_memory(platform: Platform, owner: Principal) -> float:
    """MiB of Python memory allocated at most while a CSV export streams (tracemalloc)."""
    tracemalloc.start()
    export_size(platform, owner, "csv")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def measure_meter(platform: Platform, workspace: str, count: int) -> dict[str, Any]:
    def facts() -> list[UsageFact]:
        return [
            UsageFact(
                event_id=f"bench-meter-{n}",
                kind="tool_call",
                workspace_id=workspace,
                quantity=Decimal(1),
                unit="call",
                occurred_at=MONTH,
                subject="lookup",
            )
            for n in range(count)
        ]

    def write_each() -> int:
        written = 0
        for fact in facts():
            with platform.db.tenant_session(workspace) as session:
                written += meter(session, fact)
        return written

    first_seconds, written = timed(write_each)
    again_seconds, rewritten = timed(write_each)
    assert (written, rewritten) == (count, 0)
    return {
        "facts": count,
        "new_per_second": round(count / first_seconds),
        "repeats_per_second": round(count / again_seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(
            database_url=f"sqlite:///{scratch}/usage.sqlite3", data_dir=Path(scratch) / "data"
        )
        platform, boot = prepare(settings)
        assert boot.created is not None
        owner = authenticate(platform, boot.created.owner_key.secret)
        agent_ids = [
            agents.create_agent(platform, owner, r.AgentCreate(name=f"bench-{n}")).id
            for n in range(5)
        ]
        fill_seconds = fill(platform, owner.workspace_id, agent_ids, events)
        summary: dict[str, float] = {}
        for group_by in ("kind", "agent", "day", "channel"):
            seconds, result = timed(
                lambda g=group_by: svc.summary(  # type: ignore[misc]
                    platform, owner, agent_id=None, group_by=g, **WINDOW
                )
            )
            summary[group_by] = round(seconds, 3)
        total = sum(row.events for row in result.totals)

        def page(cursor: str | None) -> r.Page[Any]:
            return svc.list_events(
                platform,
                owner,
                kind=None,
                agent_id=None,
                conversation_id=None,
                limit=200,
                cursor=cursor,
                **WINDOW,
            )

        first_page_seconds, first = timed(lambda: page(None))
        cursor = first.next_cursor
        for _ in range(50):  # 10,000 events in
            cursor = page(cursor).next_cursor
        deep_page_seconds, _ = timed(lambda: page(cursor))
        outcomes_seconds, outcomes = timed(
            lambda: svc.list_outcomes(
                platform, owner, agent_id=None, limit=200, cursor=None, **WINDOW
            )
        )
        assert len(outcomes.data) == 200 and outcomes.data[0].provider_cost_usd is not None
        formats: tuple[ExportFormat, ...] = ("csv", "cloudevents")
        exports = {fmt: measure_export(platform, owner, fmt) for fmt in formats}
        for result_of in exports.values():
            result_of["events_per_second"] = round(total / result_of["seconds"])
        exports["csv"]["peak_python_mib"] = peak_memory(platform, owner)
        metering = measure_meter(platform, owner.workspace_id, 2000)
        platform.close()

    results = {
        "machine": {"python": host.python_version(), "processor": host.machine()},
        "database": "sqlite",
        "events": total,
        "bulk_fill_seconds": round(fill_seconds, 1),
        "summary_seconds": summary,
        "events_page_seconds": {
            "first": round(first_page_seconds, 3),
            "after_10000": round(deep_page_seconds, 3),
        },
        "outcomes_page_200_seconds": round(outcomes_seconds, 3),
        "export": exports,
        "meter": metering,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
