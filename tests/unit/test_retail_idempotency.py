"""The retail backend's `Idempotency-Key` support: a repeat never runs the operation twice."""

from __future__ import annotations

from typing import Any

import httpx
from examples.retail.rest import create_app
from examples.retail.store import RetailStore
from fastapi.testclient import TestClient

from tests.processes import SHARED_DATA

DB = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail" / "db.json"


def pending_order(store: RetailStore) -> dict[str, Any]:
    orders = store.snapshot()["orders"].values()
    return next(order for order in orders if order["status"] == "pending")


def cancel(
    client: TestClient, order_id: str, key: str | None, reason: str = "no longer needed"
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/tools/cancel_pending_order",
        json={"order_id": order_id, "reason": reason},
        headers=headers,
    )


def test_a_repeated_key_replays_the_first_answer_without_running_again() -> None:
    store = RetailStore(DB)
    order = pending_order(store)
    client = TestClient(create_app(store, honour_idempotency_keys=True))
    assert client.get("/openapi.json").json()["x-idempotency"]["supported"] is True

    first = cancel(client, order["order_id"], "conv-1/step-4")
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    after_first = store.sha256()
    refunds = len(store.snapshot()["orders"][order["order_id"]]["payment_history"])

    again = cancel(client, order["order_id"], "conv-1/step-4")
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert store.sha256() == after_first
    assert len(store.snapshot()["orders"][order["order_id"]]["payment_history"]) == refunds

    # The same key for another request is a client bug: refused, nothing runs.
    misuse = cancel(client, order["order_id"], "conv-1/step-4", reason="ordered by mistake")
    assert misuse.status_code == 422 and "different request" in misuse.json()["error"]

    # A new key runs the operation, which tau2's rules now refuse (the order is cancelled).
    fresh = cancel(client, order["order_id"], "conv-1/step-5")
    assert fresh.status_code == 400 and fresh.json() == {
        "error": "Non-pending order cannot be cancelled"
    }
    # ... and that refusal is itself replayed for its key.
    assert cancel(client, order["order_id"], "conv-1/step-5").json() == fresh.json()


def test_without_the_option_keys_are_ignored_and_the_document_says_nothing() -> None:
    store = RetailStore(DB)
    order = pending_order(store)
    client = TestClient(create_app(store))
    assert "x-idempotency" not in client.get("/openapi.json").json()
    assert cancel(client, order["order_id"], "k").status_code == 200
    assert cancel(client, order["order_id"], "k").status_code == 400
