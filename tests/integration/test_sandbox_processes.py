"""Acceptance, with real processes: a `deputy serve` process runs sandbox runs of the retail agent
whose production tool source is a live retail backend on 127.0.0.1.

- Isolation: the agent's writes land in the sandbox's simulation; the production backend gets
  no request at all and its data is unchanged; no conversation is recorded in the workspace. The
  same holds with no world mapping (recorded responses, the default).
- Crash-resume: the server is killed (SIGKILL) in the middle of a run, restarted on the same
  database, and the run finishes, running only the trials that were not saved before the kill.

The agent's model is a scripted OpenAI-compatible endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.retail_agent import DELIVERED, EMAIL, USER_ID, retail_spec
from tests.integration.retail_backend import RetailServer, retail_server
from tests.integration.scripted_openai import Decision, scripted_openai
from tests.processes import KEY, START_TIMEOUT, ServerProcess, base_env, deputy_server

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]

LEASE_SECONDS = 2.0
MODEL = "openai-compatible:scripted/m"
BACKENDS = json.dumps({"retail": "examples.retail.sandbox:world_factory"})
SIMULATED = {"sources": {"retail": {"target": "simulation", "backend": "retail"}}}
ADDRESS = {
    "address1": "1 Sandbox Way",
    "address2": "",
    "city": "Austin",
    "state": "TX",
    "country": "USA",
    "zip": "78701",
}


def _opening(n: int) -> str:
    return f"Request {n}: my email is {EMAIL}. Please change my default address."


def _status(n: int) -> str:
    return f"Request {n}: my email is {EMAIL}. What is the status of order {DELIVERED}?"


def _suite(count: int) -> dict[str, Any]:
    """`count` scripted scenarios, alternately an address change (a write, checked against the
    reference end state) and an order status question."""
    scenarios = []
    for n in range(count):
        moving = n % 2 == 0
        scenarios.append(
            {
                "id": f"scenario_{n}",
                "title": f"Scenario {n}",
                "customer": {"persona": "A customer.", "goal": "Get help.", "knows": {}},
                "script": [_opening(n) if moving else _status(n)],
                "assertions": (
                    {
                        "reference_actions": [
                            {
                                "tool": "modify_user_address",
                                "arguments": {"user_id": USER_ID, **ADDRESS},
                            }
                        ],
                        "reward_basis": ["DB"],
                    }
                    if moving
                    else {"must_communicate": ["delivered"]}
                ),
            }
        )
    return {"name": "retail processes", "scenarios": scenarios}


def _called(messages: list[dict[str, Any]]) -> list[str]:
    return [
        call["function"]["name"]
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or []
    ]


def _said(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")


def agent(messages: list[dict[str, Any]], tools: list[str]) -> Decision:
    """The retail agent's scripted model: find the customer, then do what they asked."""
    del tools
    done, said = _called(messages), _said(messages)
    if "find_user_id_by_email" not in done:
        return ("find_user_id_by_email", {"email": EMAIL})
    if "change my default address" in said:
        if "modify_user_address" not in done:
            return ("modify_user_address", {"user_id": USER_ID, **ADDRESS})
        return "Your default address is now 1 Sandbox Way, Austin TX 78701."
    if "get_order_details" not in done:
        return ("get_order_details", {"order_id": DELIVERED})
    return f"Your order {DELIVERED} has been delivered."


@dataclass
class Platform:
    server: ServerProcess
    api: httpx.Client
    agent_id: str


@contextmanager
def platform(
    tmp_path: Path, database_url: str, model_url: str, production: RetailServer, log: str
) -> Iterator[Platform]:
    env = base_env(tmp_path)
    env.update(
        DEPUTY_DATA_DIR=str(tmp_path / "data"),
        DEPUTY_DATABASE_URL=database_url,
        DEPUTY_TURN_LEASE_SECONDS=str(LEASE_SECONDS),
        DEPUTY_SANDBOX_BACKENDS=BACKENDS,
    )
    first = not (tmp_path / "agent_id").exists()
    with deputy_server("serve", env, tmp_path / log) as server:
        if first:
            key = server.read_until(KEY, START_TIMEOUT).group(0)
            (tmp_path / "key").write_text(key)
        server.wait_healthy()
        key = (tmp_path / "key").read_text()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
            if first:
                (tmp_path / "agent_id").write_text(_retail_agent(api, model_url, production))
            yield Platform(server, api, (tmp_path / "agent_id").read_text())


def _created(response: httpx.Response) -> Any:
    assert response.status_code in (201, 202), response.text
    return response.json()


def _retail_agent(api: httpx.Client, model_url: str, production: RetailServer) -> str:
    _created(api.post("/v1/model-endpoints", json={"name": "scripted", "base_url": model_url}))
    _created(
        api.post(
            "/v1/tool-sources",
            json={
                "name": "retail",
                "kind": "openapi",
                "document": production.document,
                "base_url": production.url,
            },
        )
    )
    agent_id: str = _created(api.post("/v1/agents", json={"name": "retail-support"}))["id"]
    _created(
        api.post(f"/v1/agents/{agent_id}/versions", json={"spec": retail_spec(mode="reasoning")})
    )
    return agent_id


def _start(api: httpx.Client, agent_id: str, **body: Any) -> str:
    run = _created(
        api.post(
            "/v1/sandbox/runs",
            json={"agent_id": agent_id, "model": MODEL, "customer_model": "none", **body},
        )
    )
    run_id: str = run["id"]
    return run_id


def _wait(api: httpx.Client, run_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = api.get(f"/v1/sandbox/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}: {run}"
        time.sleep(0.2)


def _trials(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    page = api.get(f"/v1/sandbox/runs/{run_id}/trials", params={"limit": 100}).json()
    items: list[dict[str, Any]] = page["data"]
    return items


def test_a_sandbox_run_never_reaches_the_production_backend(
    tmp_path: Path, database_url: str
) -> None:
    with retail_server() as production, scripted_openai(agent) as (model_url, _):
        before = production.store.sha256()
        with platform(tmp_path, database_url, model_url, production, "serve.log") as deputy:
            simulated = _start(
                deputy.api, deputy.agent_id, suite=_suite(2), trials=2, world=SIMULATED
            )
            recorded = _start(deputy.api, deputy.agent_id, suite=_suite(2), trials=1)
            run = _wait(deputy.api, simulated)
            replayed = _wait(deputy.api, recorded)
            conversations = deputy.api.get("/v1/conversations").json()["data"]
            trials = _trials(deputy.api, simulated)
            replayed_trials = _trials(deputy.api, recorded)

    assert run["status"] == "succeeded", run
    assert run["scorecard"]["pass_hat"]["1"]["value"] == 1.0, run["scorecard"]
    moved = [c for t in trials for c in t["tool_calls"] if c["tool"] == "modify_user_address"]
    assert len(moved) == 2 and all(c["ok"] for c in moved)  # written in the simulation
    assert all(t["components"] == {"DB": 1.0} for t in trials if t["scenario_id"] == "scenario_0")
    # recorded responses: nothing was recorded, so every call fails without going anywhere
    assert replayed["status"] == "succeeded", replayed
    calls = [c for t in replayed_trials for c in t["tool_calls"]]
    assert calls and not any(c["ok"] for c in calls)
    assert "no recorded response" in json.dumps(calls)
    # production saw nothing, and nothing was recorded as a conversation
    assert production.backend.exchanges == []
    assert production.store.sha256() == before
    assert conversations == []


def test_a_run_killed_mid_way_resumes_with_only_the_unsaved_trials(
    tmp_path: Path, database_url: str
) -> None:
    blocked = _opening(2)  # trial 0 of scenario_2: scenario_0 and scenario_1 are saved by then
    asked = threading.Event()
    release = threading.Event()

    def decide(messages: list[dict[str, Any]], tools: list[str]) -> Decision:
        if blocked in _said(messages) and not release.is_set():
            asked.set()
            release.wait(60)
        return agent(messages, tools)

    with retail_server() as production, scripted_openai(decide) as (model_url, endpoint):
        with platform(tmp_path, database_url, model_url, production, "first.log") as first:
            run_id = _start(
                first.api,
                first.agent_id,
                suite=_suite(4),
                trials=2,
                concurrency=1,
                world=SIMULATED,
            )
            assert asked.wait(120), "the run never reached scenario_2"
            saved = {(t["scenario_id"], t["trial"]): t for t in _trials(first.api, run_id)}
            assert set(saved) == {("scenario_0", 0), ("scenario_1", 0)}
            os.kill(first.server.process.pid, signal.SIGKILL)
            first.server.process.wait(timeout=10)
        release.set()
        before_restart = len(endpoint.requests)
        per_trial = sum(_opening(0) in _said(r["messages"]) for r in endpoint.requests)
        with platform(tmp_path, database_url, model_url, production, "second.log") as second:
            run = _wait(second.api, run_id)
            trials = _trials(second.api, run_id)
        after = endpoint.requests[before_restart:]

    assert run["status"] == "succeeded" and run["attempts"] == 2, run
    keys = [(t["scenario_id"], t["trial"]) for t in trials]
    assert sorted(keys) == [(f"scenario_{n}", k) for n in range(4) for k in range(2)]
    for key, earlier in saved.items():  # the trials saved before the kill were kept as they were
        assert next(t for t in trials if (t["scenario_id"], t["trial"]) == key) == earlier
    # after the restart, scenario_0 ran once more (its second trial), not twice
    assert per_trial > 0
    assert sum(_opening(0) in _said(r["messages"]) for r in after) == per_trial
    assert run["scorecard"]["conversations"] == 8 and run["progress"]["done"] == 8
    assert production.backend.exchanges == []
