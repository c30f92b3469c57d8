"""The improvement loop through the HTTP API on a real database: an outdoor store's support
agent, deployed, whose scripted model never offers exchanges; real production conversations
through the API; a run that judges them, clusters the failure, proposes a fix, proves it against
the live version in the sandbox and files a proposal. Also a deliberately bad change (rejected,
nothing filed), cancelling, validation, tenancy, the schedule and resumed runs."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.ids import new_id
from deputy.domain.improvement import ImprovementRunCreate
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.improvement_runs import resume_improvement_runs, schedule_due
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, reply, structured
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

pytestmark = pytest.mark.integration

MODEL = "openai:store-support"
SPEC = {
    "name": "Outdoor store support",
    "goal": "Help customers of the outdoor store return delivered items for a refund.",
    "mode": "reasoning",
}
CANNOT = "I'm sorry, I can only help with returns of delivered items."
RETURNED = "I have started the return of your item; you will get a refund once it arrives."
OFFER = (
    "I can help you exchange it: tell me the order and the item you want instead, and a "
    "colleague will arrange the exchange."
)
BAD_POLICY = "Always promise customers a full refund right away."
BAD_REPLY = "Don't worry, you will get a full refund right away!"
EXCHANGES = (
    "Hi, the hiking boots I got last week are too small. Can I exchange them for a size 10?",
    "I'd like to exchange the blue rain jacket from my last order for the green one.",
    "Can I swap the tent I received for the bigger 4-person model? An exchange, not a refund.",
    "The water bottle I got is the wrong colour; I want to exchange it for the black one.",
)
RETURNS = (
    "I want to return the camping stove from my last order, it arrived broken.",
    "Please return the sleeping bag I received, it is not what I expected.",
)
INTENT = "exchange a delivered item"


def _text(request: ModelRequest) -> str:
    return "\n".join(message.content for message in request.messages)


@dataclass
class Store:
    """Everything the platform asks the model: the agent's replies (it offers exchanges only
    when a procedure about them is in its prompt), the conversation judge, the change request,
    the builder's edits (a bad change adds a policy that makes the agent overpromise), the
    regression scenarios' expectation, the simulated customers and the sandbox judge."""

    bad_change: bool = False
    gate: threading.Event | None = None
    held: frozenset[str] = frozenset()
    """Requests (by kind) that wait for `gate` (empty: every request)."""
    asked: list[str] = field(default_factory=list)

    async def __call__(self, request: ModelRequest) -> ModelResponse:
        name = request.schema_name or ("customer" if self._customer(request) else "agent")
        if self.gate is not None and (not self.held or name in self.held):
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        self.asked.append(name)
        text = _text(request)
        if name == "conversation_evaluation":
            return structured(self._evaluation(text))
        if name == "change_request":
            return structured({"change_request": "Also handle exchanges of delivered items."})
        if name == "spec_edits":
            return structured({"operations": self._edits()})
        if name == "judgement":
            return structured(self._judgement(text))
        if request.response_schema is not None:
            key = next(iter(request.response_schema["properties"]))
            return structured({key: "The agent offers to exchange the item."})
        if name == "customer":
            return reply(self._customer_line(request))
        return reply(self._agent_line(request))

    @staticmethod
    def _customer(request: ModelRequest) -> bool:
        return "Your goal:" in request.messages[0].content

    def _evaluation(self, text: str) -> dict[str, Any]:
        if CANNOT in text:
            return {
                "intent": INTENT,
                "reasoning": "The customer asked for an exchange; the agent only does returns.",
                "resolved": False,
                "policy_adherence": True,
                "tone_ok": True,
                "cause": "missing_procedure",
            }
        return {
            "intent": "return a delivered item",
            "reasoning": "The agent started the return.",
            "resolved": True,
            "policy_adherence": True,
            "tone_ok": True,
            "cause": "none",
        }

    def _edits(self) -> list[dict[str, Any]]:
        if not self.bad_change:
            return []  # the builder's rules apply "Also handle ..."
        return [
            {
                "op": "add_procedure",
                "title": "Exchanges of delivered items",
                "text": "The customer wants to exchange a delivered item for another one.",
            },
            {"op": "add_policy", "text": BAD_POLICY},
        ]

    @staticmethod
    def _judgement(text: str) -> dict[str, Any]:
        if "did the agent do it?" in text:
            return {"reasoning": "Checked the agent's lines.", "holds": "full refund" in text}
        return {"reasoning": "Checked the agent's lines.", "holds": CANNOT not in text}

    @staticmethod
    def _customer_line(request: ModelRequest) -> str:
        if any(message.role == "assistant" for message in request.messages):
            return "Thanks. ###STOP###"
        goal = re.search(r"Your goal: (.+)", request.messages[0].content)
        return goal[1] if goal else "Hello, I need some help."

    @staticmethod
    def _agent_line(request: ModelRequest) -> str:
        system = request.messages[0].content
        said = next(m.content for m in reversed(request.messages) if m.role == "user").lower()
        if BAD_POLICY in system:
            return BAD_REPLY
        if "exchange" in said or "swap" in said:
            return OFFER if "exchange" in system.lower() else CANNOT
        return RETURNED


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data")
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def post(api: Api, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    return api.client.post(path, json=body, headers=api.headers(key))


def get(api: Api, path: str, key: str | None = None, **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.headers(key))


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def store_agent(
    api: Api,
    store: Store,
    key: str | None = None,
    deploy: bool = True,
    name: str = "store-support",
) -> str:
    serve_model(api, MODEL, FunctionModel(store, name=MODEL))
    agent_id: str = ok(post(api, "/v1/agents", {"name": name}, key), 201)["id"]
    ok(post(api, f"/v1/agents/{agent_id}/versions", {"spec": SPEC}, key), 201)
    patched = api.client.patch(
        f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers(key)
    )
    ok(patched)
    if deploy:
        ok(post(api, f"/v1/agents/{agent_id}/deployments", {"version": 1}, key), 201)
    return agent_id


def converse(api: Api, agent_id: str, text: str, outcome: str) -> str:
    conversation = ok(post(api, "/v1/conversations", {"agent_id": agent_id}), 201)
    ok(post(api, f"/v1/conversations/{conversation['id']}/messages", {"text": text}))
    close = {"outcome": outcome, "reason": "the customer left"}
    ok(post(api, f"/v1/conversations/{conversation['id']}/close", close))
    return str(conversation["id"])


def production(api: Api, agent_id: str) -> tuple[list[str], list[str]]:
    """Four conversations asking for an exchange (abandoned), two returns (resolved)."""
    failing = [converse(api, agent_id, text, "abandoned") for text in EXCHANGES]
    fine = [converse(api, agent_id, text, "resolved") for text in RETURNS]
    return failing, fine


def start(api: Api, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    response = post(api, "/v1/improvement/runs", body, key)
    run: dict[str, Any] = ok(response, 201)
    assert response.headers["location"] == f"/v1/improvement/runs/{run['id']}"
    return run


def wait(api: Api, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = ok(get(api, f"/v1/improvement/runs/{run_id}"))
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}: {run['progress']}"
        time.sleep(0.05)


def test_a_recurring_failure_becomes_a_validated_proposal(api: Api) -> None:
    store = Store()
    agent_id = store_agent(api, store)
    failing, fine = production(api, agent_id)
    # a sandbox run of the live version writes no production conversation
    assert {c["id"] for c in ok(get(api, "/v1/conversations"))["data"]} == {*failing, *fine}

    created = start(api, {"agent_id": agent_id, "trials": 1})
    assert (created["status"], created["trigger"], created["model"]) == ("queued", "manual", MODEL)
    assert created["report"] is None and created["proposal_ids"] == []
    run = wait(api, created["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"]["stage"] in ("validate", "propose")
    report = run["report"]
    assert report["conversations"] == 6 and report["previous_conversations"] == 0

    evaluations = {e["conversation_id"]: e for e in report["evaluations"]}
    assert set(evaluations) == {*failing, *fine}
    assert all(evaluations[c]["failed"] for c in failing)
    assert not any(evaluations[c]["failed"] for c in fine)
    assert {evaluations[c]["cause"] for c in failing} == {"missing_procedure"}
    assert evaluations[failing[0]]["judged_by"] == MODEL

    [cluster] = report["clusters"]
    assert cluster["cause"] == "missing_procedure"
    assert set(cluster["conversation_ids"]) == set(failing)
    assert cluster["share"] == pytest.approx(4 / 6)
    assert report["regressions"] == []

    [candidate] = report["candidates"]
    assert candidate["status"] == "proposed", candidate["reason"]
    assert "exchange" in candidate["change_request"].lower()
    assert candidate["version"] == 2
    assert candidate["regression_scenario_ids"]
    assert candidate["baseline_run_id"] and candidate["candidate_run_id"]
    comparison = candidate["comparison"]
    assert comparison["regressions"] == []
    assert comparison["candidate_pass_1"] > comparison["baseline_pass_1"]
    assert set(candidate["regression_scenario_ids"]) <= set(comparison["improvements"])
    assert run["proposal_ids"] == [candidate["proposal_id"]]

    baseline = ok(get(api, f"/v1/sandbox/runs/{candidate['baseline_run_id']}"))
    challenger = ok(get(api, f"/v1/sandbox/runs/{candidate['candidate_run_id']}"))
    assert (baseline["version"], challenger["version"]) == (1, 2)
    assert baseline["seed"] == challenger["seed"]
    assert baseline["status"] == challenger["status"] == "succeeded"
    version = ok(get(api, f"/v1/agents/{agent_id}/versions/2"))
    assert created["id"] in version["note"]
    assert any(p["title"].lower().startswith("exchange") for p in version["spec"]["procedures"])

    proposal = ok(get(api, f"/v1/proposals/{candidate['proposal_id']}"))
    assert (proposal["origin"], proposal["status"]) == ("improvement", "open")
    assert (proposal["version"], proposal["base_version"]) == (2, 1)
    assert proposal["gate"] == "passed"
    assert set(proposal["evidence"]["conversation_ids"]) == set(failing)
    assert proposal["evidence"]["sandbox_run_id"] == candidate["candidate_run_id"]
    assert proposal["evidence"]["regression_scenario_ids"] == candidate["regression_scenario_ids"]
    audit = ok(get(api, "/v1/audit", action="proposal.filed"))["data"]
    assert [(e["actor"], e["subject_id"]) for e in audit] == [
        ("system:improvement", proposal["id"])
    ]
    # the live version's autonomy is proposal_only: nothing was deployed by itself
    [deployment] = ok(get(api, f"/v1/agents/{agent_id}/deployments"))
    assert (deployment["live_version"], deployment["canary_version"]) == (1, None)

    listed = ok(get(api, "/v1/improvement/runs", agent_id=agent_id))["data"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert ok(get(api, "/v1/improvement/runs", agent_id="agt_other"))["data"] == []

    # the next run's window starts where this one ended, and compares with its evaluations
    again = wait(api, start(api, {"agent_id": agent_id, "trials": 1})["id"])
    assert again["status"] == "succeeded", again["error"]
    assert again["report"]["window_start"] == report["window_end"]
    assert again["report"]["conversations"] == 0
    assert again["report"]["previous_conversations"] == 6


def test_a_change_that_regresses_is_rejected_and_nothing_is_filed(api: Api) -> None:
    store = Store(bad_change=True)
    agent_id = store_agent(api, store)
    production(api, agent_id)
    run = wait(api, start(api, {"agent_id": agent_id})["id"])
    assert run["status"] == "succeeded", run["error"]
    [candidate] = run["report"]["candidates"]
    assert candidate["status"] == "rejected"
    regressed = candidate["comparison"]["regressions"]
    assert regressed and all(sid in candidate["reason"] for sid in regressed)
    assert candidate["proposal_id"] is None and run["proposal_ids"] == []
    assert ok(get(api, "/v1/proposals", agent_id=agent_id))["data"] == []
    # the candidate stays a stored, undeployed version
    assert candidate["version"] == 2
    [deployment] = ok(get(api, f"/v1/agents/{agent_id}/deployments"))
    assert deployment["live_version"] == 1


def test_the_suite_adds_the_scenarios_of_the_build_the_agent_came_from(api: Api) -> None:
    agent_id = store_agent(api, Store(), deploy=False)
    workspace_id = ok(get(api, "/v1/workspace"))["id"]
    build_id = new_id("bld")

    def scenario(sid: str, procedure: str | None) -> dict[str, Any]:
        customer = {"persona": "A hiker.", "goal": "Learn the opening hours."}
        return {
            "id": sid,
            "title": sid.replace("_", " "),
            "procedure": procedure,
            "customer": customer,
            "script": ["When do you open on Sunday?"],
        }

    suite = {"name": "from the build", "scenarios": [scenario("opening_hours", None)]}
    suite["scenarios"].append(scenario("gift_card_balance", "gift_cards"))  # no longer in spec
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(
            t.Build(
                id=build_id,
                workspace_id=workspace_id,
                status="succeeded",
                goal=SPEC["goal"],
                constraints=[],
                material_ids=[],
                tool_source_ids=[],
                progress={},
                revision=1,
                spec=SPEC,
                scenarios=suite,
                attempts=1,
                created_by_key_id="key_test",
            )
        )
    spec = {**SPEC, "name": "Outdoor store support v2"}
    note = f"Drafted by build {build_id}, revision 1."
    ok(post(api, f"/v1/agents/{agent_id}/versions", {"spec": spec, "note": note}), 201)
    production(api, agent_id)
    run = wait(api, start(api, {"agent_id": agent_id})["id"])
    assert run["status"] == "succeeded", run["error"]
    [candidate] = run["report"]["candidates"]
    trials = ok(get(api, f"/v1/sandbox/runs/{candidate['baseline_run_id']}/trials", limit=200))
    ran = {trial["scenario_id"] for trial in trials["data"]}
    assert "opening_hours" in ran and "gift_card_balance" not in ran
    assert {"persona_adversarial", *candidate["regression_scenario_ids"]} <= ran


def test_cancel_stops_a_run(api: Api) -> None:
    gate = threading.Event()
    gate.set()
    agent_id = store_agent(api, Store(gate=gate), deploy=False)
    converse(api, agent_id, EXCHANGES[0], "abandoned")
    gate.clear()  # the run's first model call waits
    run = start(api, {"agent_id": agent_id})
    # one run at a time per agent
    busy = post(api, "/v1/improvement/runs", {"agent_id": agent_id})
    assert busy.status_code == 409, busy.text
    deadline = time.monotonic() + 30
    while ok(get(api, f"/v1/improvement/runs/{run['id']}"))["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cancelled = ok(post(api, f"/v1/improvement/runs/{run['id']}/cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    gate.set()
    time.sleep(0.3)
    after = ok(get(api, f"/v1/improvement/runs/{run['id']}"))
    assert (after["status"], after["report"]) == ("cancelled", None)
    again = post(api, f"/v1/improvement/runs/{run['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_cancelling_during_validation_cancels_its_sandbox_runs(api: Api) -> None:
    gate = threading.Event()
    agent_id = store_agent(api, Store(gate=gate, held=frozenset({"judgement"})), deploy=False)
    production(api, agent_id)
    run = start(api, {"agent_id": agent_id})
    deadline = time.monotonic() + 60
    while len(sandbox := ok(get(api, "/v1/sandbox/runs", agent_id=agent_id))["data"]) < 2:
        assert time.monotonic() < deadline, ok(get(api, f"/v1/improvement/runs/{run['id']}"))
        time.sleep(0.05)
    # progress is written at most every half second: the stage shows once it is
    while ok(get(api, f"/v1/improvement/runs/{run['id']}"))["progress"]["stage"] != "propose":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok(post(api, f"/v1/improvement/runs/{run['id']}/cancel"))
    gate.set()
    deadline = time.monotonic() + 30
    while {r["status"] for r in ok(get(api, "/v1/sandbox/runs", agent_id=agent_id))["data"]} != {
        "cancelled"
    }:
        assert time.monotonic() < deadline, sandbox
        time.sleep(0.05)
    after = ok(get(api, f"/v1/improvement/runs/{run['id']}"))
    assert (after["status"], after["proposal_ids"]) == ("cancelled", [])
    # the candidate version stays, undeployed; nothing was filed
    assert ok(get(api, f"/v1/agents/{agent_id}"))["latest_version"] == 2
    assert ok(get(api, "/v1/proposals", agent_id=agent_id))["data"] == []


def test_inputs_are_checked_and_runs_are_tenant_scoped(api: Api) -> None:
    agent_id = store_agent(api, Store(), deploy=False)
    missing = post(api, "/v1/improvement/runs", {"agent_id": "agt_missing"})
    assert missing.status_code == 404, missing.text
    now = utcnow()
    empty = post(
        api,
        "/v1/improvement/runs",
        {
            "agent_id": agent_id,
            "since": now.isoformat(),
            "until": (now - timedelta(hours=1)).isoformat(),
        },
    )
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"
    world = {"sources": {"retail": {"target": "recorded"}}}
    unknown = post(api, "/v1/improvement/runs", {"agent_id": agent_id, "world": world})
    assert unknown.status_code == 422, unknown.text
    assert ok(get(api, "/v1/improvement/runs"))["data"] == []

    run = wait(api, start(api, {"agent_id": agent_id})["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["report"]["conversations"] == 0 and run["report"]["candidates"] == []

    _, other = api.new_workspace("Other")
    assert get(api, f"/v1/improvement/runs/{run['id']}", other).status_code == 404
    assert post(api, f"/v1/improvement/runs/{run['id']}/cancel", key=other).status_code == 404
    assert ok(get(api, "/v1/improvement/runs", other))["data"] == []
    foreign = post(api, "/v1/improvement/runs", {"agent_id": agent_id}, other)
    assert foreign.status_code == 404, foreign.text


def test_the_schedule_starts_runs_for_deployed_agents(api: Api) -> None:
    deployed = store_agent(api, Store())
    store_agent(api, Store(), deploy=False, name="never-deployed")
    started = api.client.portal.call(schedule_due, api.platform)
    [run_id] = started
    run = ok(get(api, f"/v1/improvement/runs/{run_id}"))
    assert (run["agent_id"], run["trigger"], run["model"]) == (deployed, "schedule", MODEL)
    # not again while it is open, nor before the interval has passed
    assert api.client.portal.call(schedule_due, api.platform) == []
    assert wait(api, run_id)["status"] == "succeeded"
    assert api.client.portal.call(schedule_due, api.platform) == []
    later = utcnow() + timedelta(hours=25)
    [next_id] = api.client.portal.call(schedule_due, api.platform, later)
    assert wait(api, next_id)["status"] == "succeeded"


def test_an_interrupted_run_starts_over_and_is_given_up_after_three_starts(api: Api) -> None:
    agent_id = store_agent(api, Store())
    workspace_id = ok(get(api, "/v1/workspace"))["id"]
    expired = utcnow() - timedelta(minutes=1)

    def orphan(attempts: int) -> str:
        body = ImprovementRunCreate(agent_id=agent_id)
        run_id = new_id("imp")
        with api.platform.db.tenant_session(workspace_id) as session:
            session.add(
                t.ImprovementRun(
                    id=run_id,
                    workspace_id=workspace_id,
                    agent_id=agent_id,
                    trigger="manual",
                    status="running",
                    request=body.model_dump(mode="json"),
                    model=MODEL,
                    window_start=utcnow() - timedelta(days=1),
                    window_end=utcnow(),
                    progress={"stage": "evaluate", "done": 1, "total": 5},
                    report=None,
                    proposal_ids=[],
                    error=None,
                    lease_owner="dead-process",
                    lease_expires_at=expired,
                    attempts=attempts,
                    created_by_key_id="key_test",
                )
            )
        return run_id

    resumed = orphan(1)
    assert api.client.portal.call(resume_improvement_runs, api.platform) >= 1
    run = wait(api, resumed)
    assert run["status"] == "succeeded", run["error"]
    with api.platform.db.tenant_session(workspace_id) as session:
        assert session.get_one(t.ImprovementRun, resumed).attempts == 2

    given_up = orphan(3)
    api.client.portal.call(resume_improvement_runs, api.platform)
    run = wait(api, given_up)
    assert run["status"] == "failed"
    assert run["error"]["code"] == "improvement_interrupted"
