"""API request cost on the embedded default (or DEPUTY_DATABASE_URL): median and p95 latency of
representative calls, in process (no network), each as a ratio to `/healthz` measured in the
same run. Writes benchmarks/results/api_latency.json.

    .venv/bin/python benchmarks/api_latency.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.services.startup import prepare


def measure(call: Callable[[], httpx.Response], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        if response.status_code >= 400:
            raise SystemExit(f"benchmark call failed: {response.status_code} {response.text}")
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(data_dir=Path(data_dir), environment="test")
        platform, boot = prepare(settings)
        assert boot.created is not None
        headers = {"Authorization": f"Bearer {boot.created.owner_key.secret}"}
        client = TestClient(create_app(platform))
        for i in range(100):
            client.post("/v1/agents", json={"name": f"seed-{i}"}, headers=headers)
        counter = iter(range(10**9))
        doc = b"# Returns policy\n" + b"Items may be returned within 30 days.\n" * 200
        calls: dict[str, Callable[[], httpx.Response]] = {
            "healthz": lambda: client.get("/healthz"),
            "get_workspace": lambda: client.get("/v1/workspace", headers=headers),
            "list_agents_50": lambda: client.get("/v1/agents?limit=50", headers=headers),
            "create_agent": lambda: client.post(
                "/v1/agents", json={"name": f"a-{next(counter)}"}, headers=headers
            ),
            "create_agent_idempotent": lambda: client.post(
                "/v1/agents",
                json={"name": f"i-{next(counter)}"},
                headers={**headers, "Idempotency-Key": f"k-{next(counter)}"},
            ),
            "upload_material_7kb": lambda: client.post(
                "/v1/materials", files={"file": ("returns.md", doc)}, headers=headers
            ),
        }
        results = {name: measure(call, args.requests) for name, call in calls.items()}
        base = results["healthz"]["median_ms"]
        for result in results.values():
            result["ratio_to_healthz"] = round(result["median_ms"] / base, 2)
        report = {
            "database": platform.db.engine.dialect.name,
            "requests_per_call": args.requests,
            "cpu_count": os.cpu_count(),
            "results": results,
        }
        platform.close()
    out = Path(__file__).parent / "results" / "api_latency.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
