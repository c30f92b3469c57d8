"""Acceptance: metering is exactly once across a crash. A real `deputy serve` is SIGKILLed in
the middle of a turn that has just sent an irreversible exchange to the retail backend (whose
answer is held until the server is dead); the restarted server resumes the turn, the exchange
is answered from the backend's idempotency cache, and the agent ends the conversation. The
usage events then match the facts: one `conversation`, one `outcome`, one `tool_call` per
finished ledger row, model calls each once and priced, and the outcome's provider cost is the
sum of its conversation's model calls.

The timing is controlled as in test_runtime_kill_restart.py: a scripted model endpoint and a
backend that holds its answer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.retail_agent import DELIVERED, EMAIL, HOSE, OTHER_HOSE, PAYPAL, RETAIL_SPEC
from tests.integration.scripted_openai import scripted_openai
from tests.integration.test_runtime_kill_restart import (
    EXCHANGE,
    LEASE_SECONDS,
    Client,
    retail_backend,
)
from tests.processes import KEY, START_TIMEOUT, base_env, deputy_server

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

MODEL = "openai-compatible:scripted/m"
# The scripted endpoint reports 10 prompt and 5 completion tokens a call: $0.00007 a call.
PRICES = {"openai-compatible:scripted/*": {"input_per_million": "2", "output_per_million": "10"}}
CALL_COST = Decimal("0.00007")
FINISH = {
    "name": "finish",
    "description": "End the conversation once the customer's request is done.",
    "effect": "read",
    "binding": {"kind": "builtin", "builtin": "end_conversation"},
}


def decide(messages: list[dict[str, Any]], tools: list[str]) -> Any:
    """Find the customer, request the exchange, then end the conversation as resolved."""
    called = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
    if "find_user_id_by_email" not in called:
        return ("find_user_id_by_email", {"email": EMAIL})
    if EXCHANGE not in called:
        arguments = {
            "order_id": DELIVERED,
            "item_ids": [HOSE],
            "new_item_ids": [OTHER_HOSE],
            "payment_method_id": PAYPAL,
        }
        return (EXCHANGE, arguments)
    if "finish" not in called:
        return ("finish", {"outcome": "resolved", "summary": "exchange requested"})
    return "Your exchange is requested. Goodbye!"


def every(api: Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        response = api.http.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_a_kill_mid_turn_meters_every_fact_exactly_once(tmp_path: Path, database_url: str) -> None:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_DATABASE_URL=database_url,
        DEPUTY_TURN_LEASE_SECONDS=str(LEASE_SECONDS),
        DEPUTY_MODEL_PRICES=json.dumps(PRICES),
    )
    spec = yaml.safe_load(RETAIL_SPEC.read_text())
    spec["mode"] = "reasoning"
    spec["tools"].append(FINISH)
    with (
        retail_backend() as (retail_url, backend, held, _store, document),
        scripted_openai(decide) as (model_url, model),
    ):
        with deputy_server("serve", env, tmp_path / "first.log") as first:
            key = first.read_until(KEY, START_TIMEOUT).group(0)
            first.wait_healthy()
            api = Client(first, key)
            api.post("/v1/model-endpoints", {"name": "scripted", "base_url": model_url})
            api.post(
                "/v1/tool-sources",
                {"name": "retail", "kind": "openapi", "document": document, "base_url": retail_url},
            )
            agent = api.post("/v1/agents", {"name": "retail"})["id"]
            patched = api.http.patch(f"/v1/agents/{agent}", json={"model": MODEL})
            assert patched.status_code == 200, patched.text
            api.post(f"/v1/agents/{agent}/versions", {"spec": spec})
            cid = api.post("/v1/conversations", {"agent_id": agent})["id"]
            asked = api.post(
                f"/v1/conversations/{cid}/messages",
                {"text": f"Please exchange the hose of {DELIVERED} for the 100ft one. {EMAIL}"},
            )
            assert EXCHANGE in asked["reply"]["text"]  # the runtime asks to confirm

            def confirm() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the server dies under it
                    api.http.post(f"/v1/conversations/{cid}/messages", json={"text": "yes"})

            confirming = threading.Thread(target=confirm, daemon=True)
            confirming.start()
            assert held.executed.wait(30), "the exchange never reached the backend"
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
            held.release.set()
            confirming.join(timeout=10)
            api.http.close()
        assert backend.ran(EXCHANGE) == 1
        time.sleep(LEASE_SECONDS + 0.5)  # the dead process's lease on the conversation expires

        with deputy_server("serve", env, tmp_path / "second.log") as second:
            second.wait_healthy()
            api = Client(second, key)
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                status = api.http.get(f"/v1/conversations/{cid}").json()["status"]
                if status == "closed":
                    break
                time.sleep(0.2)
            assert status == "closed", "the interrupted turn was not resumed to its end"
            conversation = api.http.get(f"/v1/conversations/{cid}").json()
            assert conversation["outcome"] == "resolved"
            assert backend.ran(EXCHANGE) == 1  # re-sent under its key, not run again

            events = every(api, "/v1/usage/events")
            ledger = every(api, f"/v1/agents/{agent}/tool-calls")
            outcomes = every(api, "/v1/usage/outcomes")
            conversations = every(api, "/v1/conversations")
            summary = api.http.get("/v1/usage").json()
            api.http.close()

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    assert len(events) == len({e["event_id"] for e in events})
    assert [e["event_id"] for e in by_kind["conversation"]] == [f"conversation:{cid}"]
    assert len(by_kind["conversation"]) == len(conversations) == 1
    [outcome] = by_kind["outcome"]
    assert (outcome["event_id"], outcome["subject"]) == (f"outcome:{cid}", "resolved")

    finished = [row for row in ledger if row["status"] not in ("pending", "refused")]
    assert {row["tool"] for row in finished} >= {"find_user_id_by_email", EXCHANGE}
    assert sorted(e["event_id"] for e in by_kind["tool_call"]) == sorted(
        f"tool_call:{row['id']}" for row in finished
    )
    [exchange] = [row for row in finished if row["tool"] == EXCHANGE]
    assert exchange["status"] == "succeeded"

    calls = by_kind["model_call"]
    assert 0 < len(calls) <= len(model.requests)
    assert all(c["cost_usd"] == format(CALL_COST, "f") for c in calls)
    [cost] = outcomes
    assert cost["conversation_id"] == cid and cost["reversed"] is False
    assert cost["model_calls"] == len(calls) and cost["tokens"] == 15 * len(calls)
    assert Decimal(cost["provider_cost_usd"]) == CALL_COST * len(calls)
    assert cost["tool_calls"] == len(finished)
    totals = {t["kind"]: t["events"] for t in summary["totals"]}
    assert totals == {kind: len(found) for kind, found in by_kind.items()}
