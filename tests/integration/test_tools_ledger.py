"""The SQL call ledger on the database under test: one of several racing attempts at the same
call gets through, refusals keep no key and are not counted, a ledger stays in its workspace."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.services import agents
from deputy.services.keys import authenticate
from deputy.services.startup import prepare
from deputy.services.tool_ledger import SqlCallLedger
from deputy.tools.confirmation import arguments_sha256, idempotency_key
from deputy.tools.ledger import CallFinish, CallStart

pytestmark = pytest.mark.integration

CANCEL = {"order_id": "#W5918442", "reason": "no longer needed"}


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlCallLedger, CallStart]]:
    platform, boot = prepare(load_settings(database_url=database_url, data_dir=tmp_path / "d"))
    assert boot.created is not None
    principal = authenticate(platform, boot.created.owner_key.secret)
    agent = agents.create_agent(platform, principal, r.AgentCreate(name="ledger"))
    workspace_id = principal.workspace_id
    call = CallStart(
        workspace_id=workspace_id,
        agent_id=agent.id,
        agent_version=3,
        conversation_id="conv_race",
        step_key="turn-1/step-1",
        tool="cancel_pending_order",
        effect="irreversible",
        idempotency_key=idempotency_key(workspace_id, "conv_race", "turn-1/step-1", "cancel"),
        arguments=CANCEL,
        arguments_sha256=arguments_sha256(CANCEL),
        started_at=datetime.now(UTC),
    )
    yield SqlCallLedger(platform.db, workspace_id), call
    platform.close()


def test_one_of_several_racing_attempts_gets_through(
    start: tuple[SqlCallLedger, CallStart],
) -> None:
    ledger, call = start
    barrier = threading.Barrier(4)

    def attempt(_: int) -> tuple[str, bool]:
        barrier.wait()
        record, created = ledger.start_sync(call)
        return record.id, created

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
    assert len({call_id for call_id, _ in outcomes}) == 1
    count = ledger.count(call.workspace_id, "conv_race", "cancel_pending_order")
    assert asyncio.run(count) == 1


def test_refusals_are_not_counted_and_finishing_is_recorded(
    start: tuple[SqlCallLedger, CallStart],
) -> None:
    ledger, call = start
    refused = asyncio.run(ledger.refuse(call, "limit_exceeded", "too much", {"violations": []}))
    assert (refused.status, refused.idempotency_key, refused.attempts) == ("refused", None, 0)
    assert refused.output == {"violations": []}
    record, created = asyncio.run(ledger.start(call))
    assert created and record.status == "pending" and record.attempts == 1
    assert asyncio.run(ledger.count(call.workspace_id, "conv_race", call.tool)) == 1
    again = asyncio.run(ledger.begin_attempt(record.id))
    assert again.attempts == 2
    finished = asyncio.run(
        ledger.finish(
            record.id,
            CallFinish(
                status="succeeded",
                request={"method": "POST", "when": datetime(2026, 1, 1, tzinfo=UTC)},
                response={"status": 200},
                output=["cancelled"],
                attempts=2,
                finished_at=datetime.now(UTC),
                duration_ms=12,
            ),
        )
    )
    assert call.idempotency_key is not None
    found = asyncio.run(ledger.find(call.workspace_id, call.idempotency_key))
    assert found == finished
    assert found.status == "succeeded" and found.output == ["cancelled"]
    assert found.request["when"].startswith("2026-01-01")  # stored as plain JSON
    with pytest.raises(ValueError, match="ledger"):
        ledger.start_sync(replace(call, workspace_id="ws_other"))
