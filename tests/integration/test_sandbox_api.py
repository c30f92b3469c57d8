"""Sandbox runs through the HTTP API on a real database: the retail agent (reasoning mode, a
scripted model) against scripted customers, its tools answered by the retail simulation the
operator registered, while its production source points nowhere; validation, tenancy,
comparisons, cancelling, and a run resumed where a dead process left it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from examples.retail.rest import create_app as create_retail_app
from examples.retail.store import RetailStore
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.ids import new_id
from deputy.domain.sandbox_results import Scorecard, TrialResult
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, reply, tool_call
from tests.integration.conftest import Api
from tests.integration.retail_agent import (
    DELIVERED,
    EMAIL,
    PENDING,
    USER_ID,
    retail_spec,
    serve_model,
)
from tests.integration.retail_backend import retail_server

pytestmark = pytest.mark.integration

AGENT_MODEL = "openai:sandbox-agent"
LEASE_SECONDS = 0.5
NOWHERE = "http://127.0.0.1:9"  # the production source: nothing listens there
NEW_ADDRESS = {
    "address1": "1 Sandbox Way",
    "address2": "",
    "city": "Austin",
    "state": "TX",
    "country": "USA",
    "zip": "78701",
}
STATUS = f"My email is {EMAIL}. What is the status of my order {DELIVERED}?"
MOVE = f"My email is {EMAIL}. Please change my default address to 1 Sandbox Way, Austin TX 78701."
REFUND = f"My email is {EMAIL}. Please refund my order {PENDING} right now."


def suite(name: str = "retail smoke") -> dict[str, Any]:
    """Three scripted scenarios: two the scripted agent gets right, one it fails."""

    def brief(goal: str) -> dict[str, Any]:
        return {"persona": "A customer of the store.", "goal": goal, "knows": {"email": EMAIL}}

    return {
        "name": name,
        "scenarios": [
            {
                "id": "order_status",
                "title": "Status of a delivered order",
                "customer": brief("Learn the status of an order."),
                "script": [STATUS],
                "assertions": {
                    "expected_tool_calls": [
                        {"tool": "get_order_details", "arguments": {"order_id": DELIVERED}}
                    ],
                    "must_communicate": ["delivered"],
                },
            },
            {
                "id": "change_address",
                "title": "Change the default address",
                "customer": brief("Move the default address."),
                "script": [MOVE],
                "assertions": {
                    "reference_actions": [
                        {
                            "tool": "modify_user_address",
                            "arguments": {"user_id": USER_ID, **NEW_ADDRESS},
                        }
                    ],
                    "reward_basis": ["DB"],
                },
            },
            {
                "id": "refund_now",
                "title": "A refund the agent does not give",
                "kind": "edge_case",
                "customer": brief("Get a refund."),
                "script": [REFUND],
                "assertions": {"must_communicate": ["has been refunded"]},
            },
        ],
    }


def called(request: ModelRequest) -> list[str]:
    return [call.name for message in request.messages for call in message.tool_calls]


def customer_text(request: ModelRequest) -> str:
    return "\n".join(m.content for m in request.messages if m.role == "user")


class Agent:
    """The agent's scripted model: it finds the customer, then does what each request asks."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        done, said = called(request), customer_text(request)
        if "find_user_id_by_email" not in done:
            return tool_call("find_user_id_by_email", {"email": EMAIL})
        if "status of my order" in said:
            if "get_order_details" not in done:
                return tool_call("get_order_details", {"order_id": DELIVERED})
            return reply(f"Your order {DELIVERED} has been delivered.")
        if "change my default address" in said:
            if "modify_user_address" not in done:
                return tool_call("modify_user_address", {"user_id": USER_ID, **NEW_ADDRESS})
            return reply("Your default address is now 1 Sandbox Way, Austin TX 78701.")
        return reply("I am sorry, I cannot refund a pending order; I can cancel it for you.")

    def asked_about(self, text: str) -> int:
        return sum(text in customer_text(request) for request in self.requests)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        turn_lease_seconds=LEASE_SECONDS,
        sandbox_backends={"retail": "examples.retail.sandbox:world_factory"},
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def post(api: Api, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    return api.client.post(path, json=body, headers=api.headers(key))


def get(api: Api, path: str, key: str | None = None, **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=api.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    return body


def retail_agent(api: Api, key: str | None = None, name: str = "retail-support") -> str:
    """The retail agent (reasoning mode) bound to a production `retail` source that points
    nowhere, on the scripted model."""
    source = post(
        api,
        "/v1/tool-sources",
        {
            "name": "retail",
            "kind": "openapi",
            "document": _retail_document(),
            "base_url": NOWHERE,
        },
        key,
    )
    assert source.status_code == 201, source.text
    agent = post(api, "/v1/agents", {"name": name}, key)
    assert agent.status_code == 201, agent.text
    agent_id: str = agent.json()["id"]
    version = post(
        api, f"/v1/agents/{agent_id}/versions", {"spec": retail_spec(mode="reasoning")}, key
    )
    assert version.status_code == 201, version.text
    return agent_id


def _retail_document() -> dict[str, Any]:
    document: dict[str, Any] = create_retail_app(RetailStore(), None).openapi()
    return document


SIMULATED = {"sources": {"retail": {"target": "simulation", "backend": "retail"}}}


def start(api: Api, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    response = post(api, "/v1/sandbox/runs", body, key)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/sandbox/runs/{run['id']}"
    return run


def wait(api: Api, run_id: str, key: str | None = None, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = get(api, f"/v1/sandbox/runs/{run_id}", key)
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}: {run}"
        time.sleep(0.05)


def trials(api: Api, run_id: str, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get(api, f"/v1/sandbox/runs/{run_id}/trials", key, limit=2, cursor=cursor, **params)
        items += page["data"]
        if not page["next_cursor"]:
            return items
        cursor = page["next_cursor"]


@pytest.fixture
def agent(api: Api) -> tuple[str, Agent]:
    model = Agent()
    serve_model(api, AGENT_MODEL, FunctionModel(model, name=AGENT_MODEL))
    return retail_agent(api), model


def test_a_run_scores_the_agent_in_the_simulation_only(api: Api, agent: tuple[str, Agent]) -> None:
    agent_id, model = agent
    created = start(
        api,
        {
            "agent_id": agent_id,
            "suite": suite(),
            "trials": 2,
            "seed": 7,
            "model": AGENT_MODEL,
            "world": SIMULATED,
        },
    )
    assert (created["status"], created["version"], created["scenario_count"]) == ("queued", 1, 3)
    assert created["models"] == {
        "agent": AGENT_MODEL,
        "customer": AGENT_MODEL,
        "judge": AGENT_MODEL,
    }
    assert created["world"] == {"retail": "simulation: retail"}
    run = wait(api, created["id"])
    assert run["status"] == "succeeded", run
    assert run["progress"] == {"done": 6, "total": 6, "passed": 4, "errors": 0}
    assert (run["attempts"], run["error"]) == (1, None)
    assert run["started_at"] and run["finished_at"]

    rows = trials(api, run["id"])
    assert [(r["scenario_id"], r["trial"]) for r in rows] == [
        (sid, k) for sid in ("order_status", "change_address", "refund_now") for k in (0, 1)
    ]
    assert {r["scenario_id"]: r["scenario_title"] for r in rows}["change_address"] == (
        "Change the default address"
    )
    passed = {(r["scenario_id"], r["trial"]): r["passed"] for r in rows}
    assert passed == {
        ("order_status", 0): True,
        ("order_status", 1): True,
        ("change_address", 0): True,
        ("change_address", 1): True,
        ("refund_now", 0): False,
        ("refund_now", 1): False,
    }
    moved = next(r for r in rows if r["scenario_id"] == "change_address")
    assert moved["components"] == {"DB": 1.0}
    # every tool call was answered by the simulation; none went to the production source
    assert all(call["ok"] for r in rows for call in r["tool_calls"]), rows
    assert any(m["role"] == "customer" and m["text"] == MOVE for m in moved["transcript"])
    only = trials(api, run["id"], scenario_id="refund_now")
    assert [r["trial"] for r in only] == [0, 1]
    assert {c["kind"] for c in only[0]["checks"] if not c["passed"]} == {"communicate"}

    card = Scorecard.model_validate(get(api, f"/v1/sandbox/runs/{run['id']}/scorecard"))
    assert card == Scorecard.model_validate(run["scorecard"])
    assert (card.scenarios, card.trials_per_scenario, card.conversations) == (3, 2, 6)
    assert card.pass_hat[1].value == pytest.approx(4 / 6)
    assert card.pass_hat[2].value == pytest.approx(2 / 3)
    assert {s.scenario_id: s.successes for s in card.per_scenario} == {
        "order_status": 2,
        "change_address": 2,
        "refund_now": 0,
    }
    assert (
        card.cost.agent.calls == sum(r["agent_usage"]["calls"] for r in rows) == len(model.requests)
    )
    # the model's usage is metered to the workspace, the agent and the run
    assert {(r.metadata["agent_id"], r.metadata["conversation_id"]) for r in model.requests} == {
        (agent_id, run["id"])
    }
    # nothing of the sandbox reached the platform's conversations or tool-call ledger
    assert get(api, "/v1/conversations")["data"] == []
    with api.platform.db.session() as session:
        assert session.scalar(select(func.count()).select_from(t.ToolCallRow)) == 0
    listed = get(api, "/v1/sandbox/runs", agent_id=agent_id)["data"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert get(api, "/v1/sandbox/runs", agent_id="agt_other")["data"] == []


def test_run_inputs_are_checked_before_anything_is_stored(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, _ = agent
    base = {"agent_id": agent_id, "model": AGENT_MODEL}

    def create(**body: Any) -> Any:
        return post(api, "/v1/sandbox/runs", {**base, **body})

    staging = post(
        api,
        "/v1/tool-sources",
        {"name": "hooks", "kind": "http"},
    )
    assert staging.status_code == 201, staging.text
    error(create(), 422, "validation_error")  # neither suite nor build
    error(create(suite=suite(), build_id="bld_x"), 422, "validation_error")
    error(create(suite=suite(), trials=11), 422, "validation_error")
    error(create(suite=suite(), concurrency=0), 422, "validation_error")
    unknown = error(
        create(
            suite=suite(),
            world={"sources": {"retail": {"target": "simulation", "backend": "airline"}}},
        ),
        422,
        "validation_error",
    )
    assert unknown["details"]["registered"] == ["retail"]
    seed = {"target": "simulation", "backend": "retail", "seed": "/etc/passwd"}
    error(create(suite=suite(), world={"sources": {"retail": seed}}), 422, "validation_error")
    same = error(
        create(
            suite=suite(),
            world={"sources": {"retail": {"target": "staging", "source": "retail"}}},
        ),
        422,
        "validation_error",
    )
    assert "production" in same["message"]
    missing = error(
        create(
            suite=suite(),
            world={"sources": {"retail": {"target": "staging", "source": "retail_staging"}}},
        ),
        404,
        "not_found",
    )
    assert "retail_staging" in missing["message"]
    webhook = error(
        create(
            suite=suite(), world={"sources": {"retail": {"target": "staging", "source": "hooks"}}}
        ),
        422,
        "validation_error",
    )
    assert webhook["details"]["kind"] == "http"
    error(
        create(suite=suite(), world={"sources": {"billing": {"target": "recorded"}}}),
        422,
        "validation_error",
    )
    ids = error(
        create(suite=suite(), scenario_ids=["order_status", "nope"]), 422, "validation_error"
    )
    assert ids["details"]["scenario_ids"] == ["nope"]
    simulated = suite()
    simulated["scenarios"][0]["script"] = []
    needs = error(create(suite=simulated, customer_model="none"), 422, "validation_error")
    assert needs["details"]["scenario_ids"] == ["order_status"]
    error(create(suite=suite(), version=2), 404, "not_found")
    error(create(suite=suite(), build_id=None, agent_id="agt_missing"), 404, "not_found")
    error(create(build_id="bld_missing"), 404, "not_found")
    error(create(suite=suite(), model="openai-compatible:nowhere/m"), 400, "invalid_request")
    assert get(api, "/v1/sandbox/runs")["data"] == []


def insert_run(api: Api, agent_id: str, **values: Any) -> str:
    """A run row as a process left it (queued, running, or held by another process)."""
    workspace_id = get(api, "/v1/workspace")["id"]
    row = t.SandboxRun(
        id=new_id("sbx"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        agent_version=1,
        status="queued",
        suite=suite(),
        suite_sha256="x",
        scenario_ids=[],
        trials=1,
        seed=0,
        concurrency=2,
        model=AGENT_MODEL,
        customer_model=None,
        judge_model=None,
        world=SIMULATED,
        world_description={"retail": "simulation: retail"},
        progress={"done": 0, "total": 0, "passed": 0, "errors": 0},
        attempts=0,
        created_by_key_id="key_test",
    )
    for name, value in values.items():
        setattr(row, name, value)
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(row)
    return row.id


def save_trial(api: Api, run_id: str, result: TrialResult, position: int) -> None:
    workspace_id = get(api, "/v1/workspace")["id"]
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(
            t.SandboxTrial(
                workspace_id=workspace_id,
                run_id=run_id,
                scenario_id=result.scenario_id,
                trial=result.trial,
                position=position,
                passed=result.passed,
                termination=result.termination,
                result=result.model_dump(mode="json"),
            )
        )


def test_a_run_whose_process_died_resumes_where_it_stopped(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, model = agent
    orphan = insert_run(
        api,
        agent_id,
        status="running",
        lease_owner="a-process-that-died",
        lease_expires_at=utcnow() - timedelta(seconds=1),
        attempts=1,
        started_at=utcnow() - timedelta(minutes=1),
    )
    earlier = TrialResult(
        scenario_id="order_status",
        trial=0,
        seed=1,
        reward=1.0,
        passed=True,
        termination="customer_stop",
        seconds=42.0,
    )
    save_trial(api, orphan, earlier, position=0)
    run = wait(api, orphan)
    assert run["status"] == "succeeded", run
    assert (run["attempts"], run["progress"]["done"], run["progress"]["total"]) == (2, 3, 3)
    assert model.asked_about(STATUS) == 0  # the saved trial was not run again
    assert model.asked_about(MOVE) > 0 and model.asked_about(REFUND) > 0
    rows = trials(api, orphan)
    assert [r["scenario_id"] for r in rows] == ["order_status", "change_address", "refund_now"]
    assert rows[0]["seconds"] == 42.0
    card = Scorecard.model_validate(run["scorecard"])
    assert {s.scenario_id: s.successes for s in card.per_scenario} == {
        "order_status": 1,
        "change_address": 1,
        "refund_now": 0,
    }


def test_a_run_held_by_a_live_process_is_left_to_it_and_can_be_cancelled(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, model = agent
    held = insert_run(
        api,
        agent_id,
        status="running",
        lease_owner="a-live-process",
        lease_expires_at=utcnow() + timedelta(hours=1),
        attempts=1,
    )
    time.sleep(LEASE_SECONDS * 2)  # the resume loop looked at least once
    assert get(api, f"/v1/sandbox/runs/{held}")["status"] == "running"
    error(
        api.client.get(f"/v1/sandbox/runs/{held}/scorecard", headers=api.headers()), 409, "conflict"
    )
    response = api.client.post(f"/v1/sandbox/runs/{held}/cancel", headers=api.headers())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"]
    again = api.client.post(f"/v1/sandbox/runs/{held}/cancel", headers=api.headers())
    assert error(again, 409, "conflict")["details"]["status"] == "cancelled"
    time.sleep(LEASE_SECONDS * 2)
    assert get(api, f"/v1/sandbox/runs/{held}")["status"] == "cancelled"
    assert model.requests == []


def test_too_many_interruptions_fail_the_run(api: Api, agent: tuple[str, Agent]) -> None:
    agent_id, model = agent
    orphan = insert_run(
        api,
        agent_id,
        status="running",
        lease_owner="a-process-that-died",
        lease_expires_at=utcnow() - timedelta(seconds=1),
        attempts=3,
    )
    run = wait(api, orphan)
    assert run["status"] == "failed"
    assert run["error"]["code"] == "sandbox_interrupted" and run["attempts"] == 4
    assert model.requests == []


def test_two_runs_compare_and_another_workspace_sees_neither(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, _ = agent
    body = {"agent_id": agent_id, "suite": suite(), "model": AGENT_MODEL, "world": SIMULATED}
    baseline = wait(api, start(api, body)["id"])
    candidate = wait(
        api, start(api, {**body, "scenario_ids": ["order_status", "refund_now"]})["id"]
    )
    assert (baseline["status"], candidate["status"]) == ("succeeded", "succeeded")
    assert candidate["scenario_count"] == 2
    comparison = get(
        api, "/v1/sandbox/comparisons", baseline=baseline["id"], candidate=candidate["id"]
    )
    assert comparison["scenarios"] == 2 and comparison["only_in_baseline"] == ["change_address"]
    assert comparison["verdict"] == "no_significant_difference"
    assert comparison["baseline_pass_1"] == comparison["candidate_pass_1"] == 0.5

    other = wait(api, start(api, {**body, "suite": suite("another suite")})["id"])
    different = api.client.get(
        "/v1/sandbox/comparisons",
        params={"baseline": baseline["id"], "candidate": other["id"]},
        headers=api.headers(),
    )
    assert "different suites" in error(different, 422, "validation_error")["message"]
    reseeded = wait(api, start(api, {**body, "seed": 5})["id"])
    other_seed = api.client.get(
        "/v1/sandbox/comparisons",
        params={"baseline": baseline["id"], "candidate": reseeded["id"]},
        headers=api.headers(),
    )
    assert "different seeds" in error(other_seed, 422, "validation_error")["message"]
    held = insert_run(
        api,
        agent_id,
        status="running",
        lease_owner="a-live-process",
        lease_expires_at=utcnow() + timedelta(hours=1),
    )
    unfinished = api.client.get(
        "/v1/sandbox/comparisons",
        params={"baseline": baseline["id"], "candidate": held},
        headers=api.headers(),
    )
    assert error(unfinished, 409, "conflict")["details"]["status"] == "running"

    _, b_key = api.new_workspace("Bee")
    for path in ("", "/trials", "/scorecard"):
        response = api.client.get(
            f"/v1/sandbox/runs/{baseline['id']}{path}", headers=api.headers(b_key)
        )
        error(response, 404, "not_found")
    stolen = api.client.get(
        "/v1/sandbox/comparisons",
        params={"baseline": baseline["id"], "candidate": candidate["id"]},
        headers=api.headers(b_key),
    )
    error(stolen, 404, "not_found")
    cancel = api.client.post(f"/v1/sandbox/runs/{held}/cancel", headers=api.headers(b_key))
    error(cancel, 404, "not_found")
    assert get(api, "/v1/sandbox/runs", b_key)["data"] == []
    hijack = post(api, "/v1/sandbox/runs", {**body, "model": AGENT_MODEL}, b_key)
    error(hijack, 404, "not_found")


def test_reading_needs_agents_read_and_running_agents_write(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, _ = agent
    reader = post(
        api, "/v1/keys", {"name": "reader", "kind": "service", "scopes": ["agents:read"]}
    ).json()["secret"]
    body = {"agent_id": agent_id, "suite": suite(), "model": AGENT_MODEL, "world": SIMULATED}
    error(post(api, "/v1/sandbox/runs", body, reader), 403, "permission_denied")
    run = wait(api, start(api, body)["id"])
    assert get(api, f"/v1/sandbox/runs/{run['id']}", reader)["status"] == "succeeded"
    cancel = api.client.post(f"/v1/sandbox/runs/{run['id']}/cancel", headers=api.headers(reader))
    error(cancel, 403, "permission_denied")


def record_call(api: Api, agent_id: str, tool: str, arguments: dict[str, Any], output: Any) -> None:
    """A call the agent made in production, as the tool-call ledger keeps it."""
    workspace_id = get(api, "/v1/workspace")["id"]
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(
            t.ToolCallRow(
                id=new_id("tcall"),
                workspace_id=workspace_id,
                agent_id=agent_id,
                agent_version=1,
                conversation_id="cnv_production",
                step_key=f"turn_1/{tool}",
                tool=tool,
                effect="read",
                arguments=arguments,
                arguments_sha256="-",
                status="succeeded",
                code="ok",
                request={},
                response={"status": 200},
                output=output,
                attempts=1,
                finished_at=utcnow(),
            )
        )


def test_staging_and_recorded_worlds_reach_only_their_targets(
    api: Api, agent: tuple[str, Agent]
) -> None:
    agent_id, _ = agent
    body = {
        "agent_id": agent_id,
        "suite": suite(),
        "scenario_ids": ["order_status"],
        "model": AGENT_MODEL,
    }
    with retail_server() as staging:
        source = post(
            api,
            "/v1/tool-sources",
            {
                "name": "retail_staging",
                "kind": "openapi",
                "document": staging.document,
                "base_url": staging.url,
            },
        )
        assert source.status_code == 201, source.text
        target = {"target": "staging", "source": "retail_staging"}
        run = wait(api, start(api, {**body, "world": {"sources": {"retail": target}}})["id"])
        assert staging.backend.arrived("find_user_id_by_email") == 1
        assert staging.backend.arrived("get_order_details") == 1
    assert run["status"] == "succeeded", run
    assert run["world"] == {"retail": "staging: tool source retail_staging"}
    (trial,) = trials(api, run["id"])
    assert [(c["tool"], c["ok"]) for c in trial["tool_calls"]] == [
        ("find_user_id_by_email", True),
        ("get_order_details", True),
    ]
    assert trial["passed"] is True

    # Unmapped, the source replays what the ledger recorded; anything else fails, going nowhere.
    record_call(api, agent_id, "find_user_id_by_email", {"email": EMAIL}, "recorded_user_1")
    replayed = wait(api, start(api, body)["id"])
    assert replayed["status"] == "succeeded", replayed
    assert replayed["world"] == {"retail": "recorded: answers from the tool-call ledger, replayed"}
    (trial,) = trials(api, replayed["id"])
    calls = [(c["tool"], c["ok"], c["output"]) for c in trial["tool_calls"]]
    assert calls[0] == ("find_user_id_by_email", True, "recorded_user_1")
    assert calls[1][:2] == ("get_order_details", False)  # not recorded: it went nowhere
