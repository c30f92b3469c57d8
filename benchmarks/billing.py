"""What a budget check costs: starting a conversation (`POST /v1/conversations`, in process, no
network) without a budget, with a workspace hard-stop budget, and with a workspace and an agent
budget, over a month already holding 10k and 100k usage events (a realistic mix of model calls,
conversations, outcomes with a few reversals, tool calls and voice minutes). The check prices
the month so far from sums each process keeps (`deputy.billing.month_sums`: the first check of
a month sums it in SQL, later ones read only the events written since); the invoice preview of
the same month (which loads every event) is timed for comparison. Writes
benchmarks/results/billing.json.

    .venv/bin/python benchmarks/billing.py [--requests 60] [--events 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import insert

from deputy.api.app import create_app
from deputy.billing.event_lookup import usage_id_floor
from deputy.billing.periods import period_at
from deputy.config import load_settings
from deputy.domain.ids import new_id
from deputy.services.startup import prepare
from deputy.store import tables as t

SPEC = {
    "name": "Bench support",
    "goal": "Answer customers.",
    "mode": "reasoning",
    "guardrails": {"preset": "minimal"},
    "outcomes": {
        "billing": {
            "model": "outcome_based",
            "price_per_resolution": "0.9",
            "free_resolutions_per_month": 100,
            "price_per_1k_tokens": "0.002",
        }
    },
}
WORKSPACE_PLAN = {
    "name": "Bench",
    "currency": "USD",
    "models": ["consumption_based", "seat_based"],
    "components": [
        {"component": "conversation", "unit_price": "0.01"},
        {"component": "voice_minute", "unit_price": "0.05"},
        {"component": "tool_call", "unit_price": "0.001"},
        {"component": "seat_month", "unit_price": "20"},
    ],
}
BATCH = 5000
ROUNDS = 3
CASES = ("no_budget", "workspace_budget", "workspace_and_agent_budgets")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def timed(call: Callable[[], httpx.Response], n: int, expected: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        if response.status_code != expected:
            raise SystemExit(f"benchmark call failed: {response.status_code} {response.text}")
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 3),
        "samples": len(ordered),
    }


def _id_at(moment: datetime, rng: random.Random) -> str:
    """An id as `new_id` would have minted it at `moment` (events written as they occur)."""
    return usage_id_floor(moment)[:-16] + "".join(rng.choice(CROCKFORD) for _ in range(16))


def _event(workspace: str, agents: list[str], kind: str, at: datetime, rng: random.Random) -> Any:
    agent = rng.choice(agents)
    conversation = f"cnv_bench{rng.randrange(10**9):09d}"
    row: dict[str, Any] = {
        "id": _id_at(at, rng),
        "event_id": new_id("use"),
        "workspace_id": workspace,
        "kind": kind,
        "agent_id": agent,
        "conversation_id": conversation,
        "quantity": "1",
        "unit": "call",
        "data": {},
        "occurred_at": at,
        "recorded_at": at,
    }
    if kind == "model_call":
        row.update(quantity=str(rng.randrange(200, 4000)), unit="token")
        row["cost_usd"] = str(round(rng.uniform(0.0001, 0.02), 6))
    elif kind == "outcome":
        row.update(unit="outcome", subject=rng.choice(["resolved"] * 4 + ["escalated"]))
    elif kind == "voice_minutes":
        row.update(quantity=f"{rng.randrange(1, 600) / 60:.6f}", unit="minute")
    elif kind == "tool_call":
        row.update(subject=rng.choice(["lookup", "refund", "track"]))
    elif kind == "conversation":
        row.update(unit="conversation")
    return row


def fill_month(platform: Any, workspace: str, agents: list[str], count: int) -> None:
    """`count` usage events spread over this month so far, plus reversals of 0.5% of the
    outcomes."""
    rng = random.Random(20261121)
    start = period_at(datetime.now(UTC)).start
    span = max(1.0, (datetime.now(UTC) - start).total_seconds() - 60)
    kinds = ["model_call"] * 6 + ["conversation"] * 4 + ["outcome"] * 4 + ["tool_call"] * 5
    kinds += ["voice_minutes"]
    rows = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.uniform(0, span))
        rows.append(_event(workspace, agents, rng.choice(kinds), at, rng))
    outcomes = [row for row in rows if row["kind"] == "outcome"]
    for outcome in rng.sample(outcomes, len(outcomes) // 200):
        rows.append(
            {
                **outcome,
                "id": _id_at(outcome["occurred_at"] + timedelta(seconds=1), rng),
                "occurred_at": outcome["occurred_at"] + timedelta(seconds=1),
                "recorded_at": outcome["occurred_at"] + timedelta(seconds=1),
                "event_id": f"reversal:{outcome['event_id']}",
                "kind": "outcome_reversal",
                "quantity": "-1",
                "reverses_event_id": outcome["event_id"],
            }
        )
    with platform.db.tenant_session(workspace) as session:
        for index in range(0, len(rows), BATCH):
            session.execute(insert(t.UsageEventRow), rows[index : index + BATCH])


def run(events: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir), environment="test")
        platform, boot = prepare(settings)
        assert boot.created is not None
        headers = {"Authorization": f"Bearer {boot.created.owner_key.secret}"}
        with TestClient(create_app(platform)) as client:
            workspace = client.get("/v1/workspace", headers=headers).json()["id"]
            agents = []
            for number in range(5):
                agent = client.post(
                    "/v1/agents", json={"name": f"bench-{number}"}, headers=headers
                ).json()["id"]
                client.post(f"/v1/agents/{agent}/versions", json={"spec": SPEC}, headers=headers)
                agents.append(agent)
            client.put("/v1/billing/plan", json=WORKSPACE_PLAN, headers=headers)
            fill_month(platform, workspace, agents, events)

            def start() -> httpx.Response:
                return client.post(
                    "/v1/conversations", json={"agent_id": agents[0]}, headers=headers
                )

            budget = {"amount": "1000000000", "hard_stop": True}
            workspace_budget, agent_budget = (
                "/v1/billing/budget",
                f"/v1/billing/budgets/{agents[0]}",
            )
            # the first check of the month in a process sums the month in SQL (then kept): here
            # when the budget is set
            cold = timed(lambda: client.put(workspace_budget, json=budget, headers=headers), 1, 200)
            samples: dict[str, list[float]] = {name: [] for name in CASES}
            per_round = max(1, requests // ROUNDS)
            for _ in range(ROUNDS):  # interleaved, so a noisy neighbour hits every case alike
                client.delete(workspace_budget, headers=headers)
                samples["no_budget"] += timed(start, per_round, 201)
                client.put(workspace_budget, json=budget, headers=headers)
                samples["workspace_budget"] += timed(start, per_round, 201)
                client.put(agent_budget, json=budget, headers=headers)
                samples["workspace_and_agent_budgets"] += timed(start, per_round, 201)
                client.delete(agent_budget, headers=headers)
            preview = timed(
                lambda: client.get("/v1/billing/invoices/preview", headers=headers), 3, 200
            )
            burn = client.get(workspace_budget, headers=headers).json()["burn"]
        platform.close()
    results = {name: summary(found) for name, found in samples.items()}
    base = results["no_budget"]["median_ms"]
    for result in results.values():
        result["ratio_to_no_budget"] = round(result["median_ms"] / base, 2)
    return {
        "events_in_month": events,
        "month_spend": burn["spend"],
        "results": results,
        "first_check_when_setting_the_budget_ms": round(cold[0] * 1000, 3),
        "invoice_preview_ms": summary(preview)["median_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    runs = [run(count, args.requests) for count in args.events]
    report = {
        "database": "sqlite",
        "requests_per_case": args.requests,
        "cpu_count": os.cpu_count(),
        "runs": runs,
    }
    out = Path(__file__).parent / "results" / "billing.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
