"""Autonomy on a real database: a deliberately bad canary under `auto_with_rollback` is rolled
back by autopilot (from recorded outcomes and turns, and from real turns of a scripted model
through the API), recorded in the audit log with its breaches, and new conversations get the
live version again; a proven canary is promoted; under `proposal_only` nothing is acted on;
`autopilot_canary` never deploys a permission-widening change and says why."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.ids import new_id
from deputy.domain.lifecycle import SYSTEM_AUTOPILOT
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.runtime.journal import Entry
from deputy.services.autopilot import autopilot_canary, check_canaries, keep_watching_canaries
from deputy.services.conversation_store import add_entry
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, tool_call
from tests.integration.conftest import Api
from tests.integration.test_api_model_calls import serve_fake

pytestmark = pytest.mark.integration

MODEL = "openai:autopilot"
AUTO = {
    "mode": "auto_with_rollback",
    "canary_percent": 50,
    "min_canary_conversations": 5,
    "canary_hours": 1,
}
LIVE_GOAL = "Answer order questions."
BAD_GOAL = "Answer order questions. Version two."


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app, with the background canary check far away: these tests call it themselves."""
    settings = load_settings(
        database_url=database_url, data_dir=tmp_path / "data", canary_check_seconds=3600
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def spec(goal: str = LIVE_GOAL, autonomy: dict[str, Any] | None = None, **extra: Any) -> Any:
    return {"name": "Support", "goal": goal, "autonomy": autonomy or AUTO, **extra}


def agent_with(api: Api, *specs: dict[str, Any]) -> str:
    agent_id: str = api.client.post(
        "/v1/agents", json={"name": "support"}, headers=api.headers()
    ).json()["id"]
    for body in specs:
        created = api.client.post(
            f"/v1/agents/{agent_id}/versions", json={"spec": body}, headers=api.headers()
        )
        assert created.status_code == 201, created.text
    return agent_id


def deploy(api: Api, agent_id: str, version: int, **body: Any) -> dict[str, Any]:
    response = api.client.post(
        f"/v1/agents/{agent_id}/deployments",
        json={"version": version, **body},
        headers=api.headers(),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def start(api: Api, agent_id: str) -> dict[str, Any]:
    response = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id}, headers=api.headers()
    )
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def arms(api: Api, agent_id: str, each: int) -> dict[int, list[dict[str, Any]]]:
    """New conversations until both versions have at least `each`."""
    by_version: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    while min(len(found) for found in by_version.values()) < each:
        conversation = start(api, agent_id)
        by_version[conversation["agent_version"]].append(conversation)
    return by_version


def close(api: Api, conversation: dict[str, Any], outcome: str) -> None:
    closed = api.client.post(
        f"/v1/conversations/{conversation['id']}/close",
        json={"outcome": outcome},
        headers=api.headers(),
    )
    assert closed.status_code == 200, closed.text


def audit(api: Api, action: str) -> list[dict[str, Any]]:
    listed = api.client.get("/v1/audit", params={"action": action}, headers=api.headers())
    entries: list[dict[str, Any]] = listed.json()["data"]
    return entries


def deployment(api: Api, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = api.client.get(
        f"/v1/deployments/{deployment_id}", headers=api.headers()
    ).json()
    return found


def bad_canary(api: Api, autonomy: dict[str, Any]) -> tuple[str, str]:
    """v1 live, v2 its canary; every v1 conversation resolved, every v2 one escalated."""
    agent_id = agent_with(api, spec(autonomy=autonomy), spec(BAD_GOAL, autonomy=autonomy))
    live = deploy(api, agent_id, 1)
    deploy(api, agent_id, 2, canary_percent=50)
    split = arms(api, agent_id, 6)
    for conversation in split[1]:
        close(api, conversation, "resolved")
    for conversation in split[2]:
        close(api, conversation, "escalated")
    return agent_id, live["id"]


def test_a_bad_canary_is_rolled_back_by_autopilot(api: Api) -> None:
    agent_id, deployment_id = bad_canary(api, AUTO)
    (status,) = check_canaries(api.platform)
    assert status.decision == "rollback" and status.deployment_id == deployment_id
    assert (status.live.resolution_rate, status.canary.escalation_rate) == (1.0, 1.0)
    assert any("resolution rate 0.0%" in b for b in status.breaches)
    assert any("escalation rate 100.0%" in b for b in status.breaches)

    after = deployment(api, deployment_id)
    assert (after["live_version"], after["canary_version"]) == (1, None)
    (entry,) = audit(api, "deployment.rolled_back")
    assert (entry["actor"], entry["actor_kind"]) == (SYSTEM_AUTOPILOT, "system")
    assert entry["data"]["breaches"] == status.breaches
    assert entry["data"]["canary"]["escalated"] == status.canary.escalated >= 6
    assert entry["data"]["live"]["resolved"] == status.live.resolved >= 6
    assert entry["data"]["rolled_back"] == "canary" and entry["data"]["version"] == 2
    assert {start(api, agent_id)["agent_version"] for _ in range(20)} == {1}
    assert check_canaries(api.platform) == []  # nothing left to watch
    verified = api.client.get("/v1/audit/verify", headers=api.headers()).json()
    assert verified["ok"] is True

    trust = api.client.get(f"/v1/agents/{agent_id}/trust", headers=api.headers()).json()
    assert (trust["automatic_rollbacks"], trust["canaries_rolled_back"]) == (1, 1)
    assert (trust["manual_rollbacks"], trust["autonomy"]) == (0, "auto_with_rollback")


def test_real_turns_of_a_bad_canary_breach_and_roll_it_back(api: Api) -> None:
    """The canary version hands every conversation to a human (the scripted model does so
    whenever its prompt carries version two's goal); the live version answers."""

    def answer(request: ModelRequest) -> ModelResponse | str:
        system = " ".join(str(m.content) for m in request.messages if m.role == "system")
        if "Version two." in system:
            return tool_call("handoff_to_human", {"reason": "I am not sure"})
        return "Your order ships tomorrow."

    serve_fake(api, MODEL, FunctionModel(answer, name=MODEL))  # type: ignore[arg-type]
    agent_id = agent_with(api, spec(), spec(BAD_GOAL))
    api.client.patch(f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers())
    live = deploy(api, agent_id, 1)
    deploy(api, agent_id, 2, canary_percent=50)
    split = arms(api, agent_id, 5)
    for conversation in split[1] + split[2]:
        turn = api.client.post(
            f"/v1/conversations/{conversation['id']}/messages",
            json={"text": "Where is my order?"},
            headers=api.headers(),
        )
        assert turn.status_code == 200, turn.text
    for conversation in split[1]:
        close(api, conversation, "resolved")  # the customer confirms it is sorted
    queued = api.client.get(
        "/v1/conversations", params={"status": "queued"}, headers=api.headers()
    ).json()["data"]
    assert {c["agent_version"] for c in queued} == {2}

    canary = api.client.get(f"/v1/deployments/{live['id']}/canary", headers=api.headers())
    assert canary.json()["decision"] == "rollback"
    assert canary.json()["canary"]["turns"] == len(split[2])
    (status,) = check_canaries(api.platform)
    assert status.decision == "rollback"
    assert status.canary.escalated == len(split[2]) and status.canary.resolution_rate == 0.0
    assert status.live.error_rate == 0.0 and status.live.p95_latency_ms is not None
    (entry,) = audit(api, "deployment.rolled_back")
    assert entry["actor"] == SYSTEM_AUTOPILOT and entry["data"]["breaches"]
    assert deployment(api, live["id"])["canary_version"] is None
    assert {start(api, agent_id)["agent_version"] for _ in range(20)} == {1}


def test_turn_metrics_count_failures_guardrail_stops_and_latency(api: Api) -> None:
    agent_id = agent_with(api, spec(), spec(BAD_GOAL))
    live = deploy(api, agent_id, 1)
    deploy(api, agent_id, 2, canary_percent=50)
    split = arms(api, agent_id, 5)
    now = utcnow()
    with api.platform.db.tenant_session(split[2][0]["workspace_id"]) as session:
        for number, conversation in enumerate(split[2][:5]):
            row = session.get_one(t.Conversation, conversation["id"])
            for turn_number, (status, seconds, action) in enumerate(
                [("completed", 1, "allow"), ("failed", 9, None), ("completed", 2, "block")]
            ):
                turn = t.Turn(
                    id=new_id("turn"),
                    workspace_id=row.workspace_id,
                    conversation_id=row.id,
                    number=turn_number + 1,
                    status=status,
                    attempts=1,
                    started_at=now,
                    finished_at=now + timedelta(seconds=seconds + number / 10),
                )
                session.add(turn)
                session.flush()
                if action is not None:
                    add_entry(
                        session,
                        row,
                        Entry("guardrail", f"t{turn_number}/guard/output", data={"action": action}),
                        turn_id=turn.id,
                    )
    status = api.client.get(f"/v1/deployments/{live['id']}/canary", headers=api.headers()).json()
    canary = status["canary"]
    assert canary["turns"] == 15
    assert canary["error_rate"] == pytest.approx(5 / 15)
    assert canary["guardrail_violation_rate"] == pytest.approx(5 / 15)
    assert canary["p95_latency_ms"] == pytest.approx(9400, abs=1)
    assert status["live"]["turns"] == 0 and status["live"]["error_rate"] is None
    assert any("error rate 33.3%" in b for b in status["breaches"])
    assert any("guardrail violation rate 33.3%" in b for b in status["breaches"])
    assert any(
        "p95 latency 9400 ms is over the latency SLO's 5000 ms" in b for b in status["breaches"]
    )


def test_a_proven_canary_is_promoted_by_autopilot(api: Api) -> None:
    agent_id = agent_with(api, spec(), spec(BAD_GOAL))
    live = deploy(api, agent_id, 1)
    deploy(api, agent_id, 2, canary_percent=50)
    split = arms(api, agent_id, 5)
    for conversation in split[1] + split[2]:
        close(api, conversation, "resolved")
    (waiting,) = check_canaries(api.platform)
    assert waiting.decision == "wait" and "hours" in waiting.reason
    assert deployment(api, live["id"])["canary_version"] == 2
    (promoted,) = check_canaries(api.platform, now=utcnow() + timedelta(hours=2))
    assert promoted.decision == "promote"
    after = deployment(api, live["id"])
    assert (after["live_version"], after["previous_version"], after["canary_version"]) == (
        2,
        1,
        None,
    )
    (entry,) = audit(api, "deployment.promoted")
    assert entry["actor"] == SYSTEM_AUTOPILOT and entry["data"]["canary"]["resolved"] >= 5


def test_a_proposal_only_canary_is_only_reported(api: Api) -> None:
    manual = {**AUTO, "mode": "proposal_only"}
    _, deployment_id = bad_canary(api, manual)
    later = utcnow() + timedelta(days=3)
    for _ in range(2):
        (status,) = check_canaries(api.platform, now=later)
        assert status.decision == "rollback" and status.autonomy == "proposal_only"
    assert deployment(api, deployment_id)["canary_version"] == 2
    assert audit(api, "deployment.rolled_back") == []


def test_a_paused_canary_is_not_watched(api: Api) -> None:
    _, deployment_id = bad_canary(api, AUTO)
    paused = api.client.post(f"/v1/deployments/{deployment_id}/pause", headers=api.headers())
    assert paused.status_code == 200
    assert check_canaries(api.platform) == []
    assert deployment(api, deployment_id)["canary_version"] == 2


def propose(api: Api, agent_id: str, version: int, gate: str = "passed") -> dict[str, Any]:
    """A proposal filed through the API; its sandbox gate set as a finished A/B would."""
    filed = api.client.post(
        "/v1/proposals",
        json={"agent_id": agent_id, "version": version, "title": f"Version {version}"},
        headers=api.headers(),
    )
    assert filed.status_code == 201, filed.text
    proposal: dict[str, Any] = filed.json()
    with api.platform.db.session() as session:
        session.execute(update(t.Proposal).where(t.Proposal.id == proposal["id"]).values(gate=gate))
    return proposal


def declined(api: Api) -> list[str]:
    return [e["data"]["reason"] for e in audit(api, "autopilot.declined")]


def test_autopilot_never_deploys_a_widening_change(api: Api) -> None:
    agent_id = agent_with(
        api,
        spec(),
        spec(guardrails={"preset": "minimal"}),  # weaker guardrails: widens
        spec("Answer order questions, and offer exchanges."),
        spec("Answer order questions, and offer refunds."),
    )
    live = deploy(api, agent_id, 1)
    workspace_id = live["workspace_id"]
    widening = propose(api, agent_id, 2)
    assert widening["widens_permissions"] is True
    assert autopilot_canary(api.platform, workspace_id, widening["id"]) is None
    (reason,) = declined(api)
    assert reason.startswith("widens permissions: weakens the guardrail preset")
    assert reason.endswith("a human must approve")
    assert deployment(api, live["id"])["canary_version"] is None

    failing = propose(api, agent_id, 3, gate="failed")
    assert autopilot_canary(api.platform, workspace_id, failing["id"]) is None
    assert declined(api)[0].startswith("the sandbox gate is failed")

    good = propose(api, agent_id, 3)
    started = autopilot_canary(api.platform, workspace_id, good["id"])
    assert started is not None
    assert (started.canary_version, started.canary_percent) == (3, AUTO["canary_percent"])
    assert started.canary_by_autopilot and started.canary_proposal_id == good["id"]
    (entry,) = audit(api, "deployment.canary_started")
    assert (entry["actor"], entry["data"]["widens_permissions"]) == (SYSTEM_AUTOPILOT, [])
    fetched = api.client.get(f"/v1/proposals/{good['id']}", headers=api.headers()).json()
    assert fetched["status"] == "deployed"
    busy = propose(api, agent_id, 4)
    assert autopilot_canary(api.platform, workspace_id, busy["id"]) is None
    assert declined(api)[0] == "version 3 is already the canary"
    trust = api.client.get(f"/v1/agents/{agent_id}/trust", headers=api.headers()).json()
    assert (trust["auto_deployed"], trust["proposals"]) == (1, 4)


def test_autopilot_waits_for_a_human_under_proposal_only(api: Api) -> None:
    manual = {**AUTO, "mode": "proposal_only"}
    agent_id = agent_with(api, spec(autonomy=manual), spec("Offer exchanges.", autonomy=manual))
    proposal = propose(api, agent_id, 2)
    live_missing = autopilot_canary(api.platform, proposal["workspace_id"], proposal["id"])
    assert live_missing is None
    assert "no version is live" in declined(api)[0]
    deploy(api, agent_id, 1)
    again = propose(api, agent_id, 2)
    assert autopilot_canary(api.platform, again["workspace_id"], again["id"]) is None
    assert (
        declined(api)[0]
        == "the live version's autonomy is proposal_only: a human approves every change"
    )
    with api.platform.db.session() as session:
        assert session.scalars(select(t.Deployment.canary_version)).all() == [None]


def test_the_watch_loop_rolls_back_by_itself_until_cancelled(api: Api) -> None:
    _, deployment_id = bad_canary(api, AUTO)
    settings = api.platform.settings.model_copy(update={"canary_check_seconds": 0.05})
    platform = replace(api.platform, settings=settings)

    async def watch() -> None:
        watching = asyncio.create_task(keep_watching_canaries(platform))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if audit(api, "deployment.rolled_back"):
                break
        watching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watching

    asyncio.run(watch())
    assert deployment(api, deployment_id)["canary_version"] is None
    (entry,) = audit(api, "deployment.rolled_back")
    assert entry["actor"] == SYSTEM_AUTOPILOT


def test_autopilot_leaves_promoting_a_widening_canary_to_a_person(api: Api) -> None:
    agent_id = agent_with(api, spec(), spec(guardrails={"preset": "minimal"}))
    live = deploy(api, agent_id, 1)
    deploy(api, agent_id, 2, canary_percent=50)  # a person started it
    split = arms(api, agent_id, 5)
    for conversation in split[1] + split[2]:
        close(api, conversation, "resolved")
    (status,) = check_canaries(api.platform, now=utcnow() + timedelta(hours=2))
    assert status.decision == "promote"
    assert status.reason.endswith(
        "it widens permissions (weakens the guardrail preset from standard to minimal): "
        "a human promotes it"
    )
    assert deployment(api, live["id"])["canary_version"] == 2
    assert audit(api, "deployment.promoted") == []
