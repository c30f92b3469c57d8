"""Usage through the SDK (`client.usage`, sync and async) and the CLI (`deputy usage`), against
the real app in process: the same sums and events as the API, exports written to files, and
the model spend of each outcome."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.sdk import AsyncDeputyClient, DeputyClient, NotFoundError
from deputy.sdk.errors import ValidationFailedError
from deputy.sdk.testing import SyncASGITransport
from tests.integration.conftest import Api
from tests.integration.usage_helpers import (
    PRICED_MODEL,
    all_events,
    close,
    deploy_agent,
    say,
    serve_models,
    start,
    usage,
)

pytestmark = pytest.mark.integration

BASE = "http://deputy.test"


@pytest.fixture
def in_process(api: Api) -> Iterator[httpx.BaseTransport]:
    with SyncASGITransport(api.client.app) as transport:
        # A MockTransport in front, so each command closing its client leaves the app up.
        yield httpx.MockTransport(transport.handle_request)


@pytest.fixture
def used(api: Api) -> tuple[str, str]:
    """Two closed conversations with a priced agent; (agent id, last conversation id)."""
    serve_models(api)
    agent = deploy_agent(api, "priced", PRICED_MODEL)
    conversation_id = ""
    for outcome in ("resolved", "escalated"):
        conversation_id = start(api, agent)
        say(api, conversation_id, "Where is my order?")
        close(api, conversation_id, outcome)
    return agent, conversation_id


def test_the_sdk_reads_and_exports_usage(
    api: Api, in_process: httpx.BaseTransport, used: tuple[str, str], tmp_path: Path
) -> None:
    agent, conversation_id = used
    listed = all_events(api)
    with DeputyClient(BASE, api.owner_key, transport=in_process) as client:
        summary = client.usage.summary(group_by="agent")
        assert summary.model_dump(mode="json") == usage(api, group_by="agent")
        events = list(client.usage.events(page_size=2))
        assert [e.model_dump(mode="json") for e in events] == listed
        mine = list(client.usage.events(conversation_id=conversation_id, kind="outcome"))
        assert [e.event_id for e in mine] == [f"outcome:{conversation_id}"]

        written = client.usage.export(tmp_path / "usage.csv")
        raw = (tmp_path / "usage.csv").read_bytes()
        assert written == len(raw) and raw.count(b"\r\n") == len(listed) + 1
        text = raw.decode()
        assert [row["event_id"] for row in csv.DictReader(io.StringIO(text, newline=""))] == [
            e["event_id"] for e in listed
        ]
        client.usage.export(tmp_path / "usage.json", "cloudevents", kind="outcome")
        batch = json.loads((tmp_path / "usage.json").read_text(encoding="utf-8"))
        assert [item["type"] for item in batch] == ["dev.deputy.usage.outcome"] * 2

        outcomes = list(client.usage.outcomes(agent_id=agent, page_size=1))
        assert [o.outcome for o in outcomes] == ["resolved", "escalated"]
        assert all(Decimal(o.provider_cost_usd or "0") > 0 for o in outcomes)
        march = client.usage.summary(
            start=datetime(2025, 3, 1, tzinfo=UTC), end=datetime(2025, 4, 1, tzinfo=UTC)
        )
        assert march.totals == []
        with pytest.raises(ValidationFailedError):
            client.usage.summary(start=datetime(2025, 3, 1), end=datetime(2025, 2, 1))
        with pytest.raises(NotFoundError):
            client.usage.summary(agent_id="agt_00000000000000000000000000")
        assert not list(tmp_path.glob(".*.part"))  # no partial export left behind

    async def with_async_client() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(BASE, api.owner_key, transport=transport) as aio:
            assert (await aio.usage.summary()).model_dump(mode="json") == usage(api)
            streamed = [e.event_id async for e in aio.usage.events(page_size=3)]
            assert streamed == [e["event_id"] for e in listed]
            buffer = io.BytesIO()
            await aio.usage.export(buffer, "csv", kind="conversation")
            rows = list(csv.DictReader(io.StringIO(buffer.getvalue().decode(), newline="")))
            assert {row["kind"] for row in rows} == {"conversation"} and len(rows) == 2
            costs = [o.provider_cost_usd async for o in aio.usage.outcomes()]
            assert costs == [o.provider_cost_usd for o in outcomes]

    asyncio.run(with_async_client())


def test_deputy_usage(
    api: Api, in_process: httpx.BaseTransport, used: tuple[str, str], tmp_path: Path
) -> None:
    agent, conversation_id = used
    state = CliState(url=BASE, api_key=api.owner_key, transport=in_process)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["usage", *args], obj=state)

    table = run()
    assert table.exit_code == 0, table.output
    for word in ("model_call", "conversation", "outcome", "seat", "PROVIDER COST"):
        assert word in table.output
    as_json = run("--json", "--group-by", "agent")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == usage(api, group_by="agent")
    by_name = run("--agent", "priced", "--json")
    assert json.loads(by_name.output) == usage(api, agent_id=agent)
    by_day = run("--group-by", "day")
    assert by_day.exit_code == 0 and "Usage by day" in by_day.output

    listed = run("events", "--kind", "outcome", "--json", "--all")
    assert [e["subject"] for e in json.loads(listed.output)["data"]] == ["resolved", "escalated"]
    one = run("events", "--conversation", conversation_id, "--limit", "1")
    assert one.exit_code == 0 and f"conversation:{conversation_id}" in one.output

    exported = tmp_path / "events.json"
    done = run(
        "events",
        "--export",
        "cloudevents",
        "-o",
        str(exported),
        "--from",
        "2020-01-01",
        "--to",
        "2020-12-31",
    )
    assert done.exit_code == 0, done.output
    assert json.loads(exported.read_text()) == []
    csv_file = tmp_path / "events.csv"
    assert run("events", "--export", "csv", "-o", str(csv_file)).exit_code == 0
    assert len(
        list(csv.DictReader(io.StringIO(csv_file.read_bytes().decode(), newline="")))
    ) == len(all_events(api))

    outcomes = run("outcomes", "--json")
    rows = json.loads(outcomes.output)["data"]
    assert [r["outcome"] for r in rows] == ["resolved", "escalated"]
    shown = run("outcomes")
    assert shown.exit_code == 0 and conversation_id in shown.output and "$0." in shown.output

    for args in (
        ("--group-by", "week"),
        ("--from", "last tuesday"),
        ("--from", "2026-11-10", "--to", "2026-11-01"),
        ("events", "--kind", "coffee"),
        ("events", "--export", "xml", "-o", str(tmp_path / "x")),
        ("events", "--export", "csv"),
    ):
        refused = run(*args)
        assert refused.exit_code == 2, (args, refused.output)
