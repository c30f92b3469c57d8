"""Deployments through the HTTP API on a real database: the first deploy, per-channel
deployments, a canary's sticky share of new conversations, pause and resume, promote, rollback
to the previous version, who may deploy (an approved proposal or a person), the permission
change record in the audit log, and the SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.sdk.testing import SyncASGITransport
from deputy.services.deployment_routing import bucket
from deputy.testing import FunctionModel, tool_call
from tests.integration.conftest import Api
from tests.integration.test_api_model_calls import serve_fake

pytestmark = pytest.mark.integration

MODEL = "openai:deployments"


def spec(goal: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Support", "goal": goal, **extra}


def create_agent(api: Api, *specs: dict[str, Any], name: str = "support") -> str:
    agent = api.client.post("/v1/agents", json={"name": name}, headers=api.headers())
    agent_id: str = agent.json()["id"]
    for body in specs:
        created = api.client.post(
            f"/v1/agents/{agent_id}/versions", json={"spec": body}, headers=api.headers()
        )
        assert created.status_code == 201, created.text
    return agent_id


def deploy(api: Api, agent_id: str, version: int, key: str | None = None, **body: Any) -> Any:
    return api.client.post(
        f"/v1/agents/{agent_id}/deployments",
        json={"version": version, **body},
        headers=api.headers(key),
    )


def deployed(api: Api, agent_id: str, version: int, **body: Any) -> dict[str, Any]:
    response = deploy(api, agent_id, version, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def start(api: Api, agent_id: str, channel: str = "api") -> dict[str, Any]:
    response = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id, "channel": channel}, headers=api.headers()
    )
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def act(api: Api, deployment_id: str, action: str, **body: Any) -> Any:
    return api.client.post(
        f"/v1/deployments/{deployment_id}/{action}", json=body or None, headers=api.headers()
    )


def audit(api: Api, action: str) -> list[dict[str, Any]]:
    listed = api.client.get("/v1/audit", params={"action": action}, headers=api.headers())
    assert listed.status_code == 200, listed.text
    entries: list[dict[str, Any]] = listed.json()["data"]
    return entries


def test_the_first_deploy_serves_its_version_and_channels_can_differ(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    undeployed = start(api, agent_id)
    assert (undeployed["agent_version"], undeployed["deployment_id"]) == (2, None)

    live = deployed(api, agent_id, 1, note="first go-live")
    assert (live["channel"], live["live_version"], live["previous_version"]) == ("all", 1, None)
    conversation = start(api, agent_id)
    assert conversation["agent_version"] == conversation["current_agent_version"] == 1
    assert (conversation["deployment_id"], conversation["deployment_arm"]) == (live["id"], "live")

    chat = deployed(api, agent_id, 2, channel="chat")
    assert start(api, agent_id, "chat")["agent_version"] == 2
    assert start(api, agent_id, "email")["agent_version"] == 1  # `all` serves the rest
    listed = api.client.get(f"/v1/agents/{agent_id}/deployments", headers=api.headers()).json()
    assert [d["channel"] for d in listed] == ["all", "chat"]
    fetched = api.client.get(f"/v1/deployments/{chat['id']}", headers=api.headers()).json()
    assert fetched == chat

    entries = audit(api, "deployment.deployed")
    first = next(e for e in entries if e["subject_id"] == live["id"])
    assert first["data"]["before"] == {} and first["data"]["after"]["live_version"] == 1
    assert first["data"]["reason"] == "first go-live"
    assert first["actor_kind"] == "member"

    again = deploy(api, agent_id, 1)
    assert again.status_code == 409
    missing = deploy(api, agent_id, 3)
    assert missing.status_code == 404


def test_an_agent_deployed_only_elsewhere_refuses_other_channels(api: Api) -> None:
    agent_id = create_agent(api, spec("Chat only."))
    deployed(api, agent_id, 1, channel="chat")
    assert start(api, agent_id, "chat")["agent_version"] == 1
    refused = api.client.post(
        "/v1/conversations", json={"agent_id": agent_id, "channel": "email"}, headers=api.headers()
    )
    assert refused.status_code == 400
    assert "not deployed on channel 'email'" in refused.json()["error"]["message"]


def test_a_canary_takes_its_sticky_share_and_can_be_paused(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    live = deployed(api, agent_id, 1)
    no_live = deploy(api, agent_id, 2, channel="chat", canary_percent=30)
    assert no_live.status_code == 409  # nothing live on chat to run beside
    canary = deployed(api, agent_id, 2, canary_percent=30)
    assert canary["id"] == live["id"]
    assert (canary["canary_version"], canary["canary_percent"]) == (2, 30)
    assert deploy(api, agent_id, 2, canary_percent=10).status_code == 409  # one at a time
    assert deploy(api, agent_id, 1, canary_percent=10).status_code == 409  # that is live

    conversations = [start(api, agent_id) for _ in range(200)]
    on_canary = [c for c in conversations if c["agent_version"] == 2]
    assert 0.2 <= len(on_canary) / 200 <= 0.4
    for c in conversations:  # the assignment is the conversation id's bucket, nothing else
        expected = (2, "canary") if bucket(c["id"]) < 30 else (1, "live")
        assert (c["agent_version"], c["deployment_arm"]) == expected
        assert c["deployment_id"] == live["id"]

    paused = act(api, live["id"], "pause")
    assert paused.status_code == 200 and paused.json()["canary_paused"] is True
    assert act(api, live["id"], "pause").status_code == 409
    assert {start(api, agent_id)["agent_version"] for _ in range(40)} == {1}
    resumed = act(api, live["id"], "resume").json()
    assert resumed["canary_paused"] is False
    assert 2 in {start(api, agent_id)["agent_version"] for _ in range(40)}
    assert [e["subject_id"] for e in audit(api, "deployment.paused")] == [live["id"]]
    started = audit(api, "deployment.canary_started")
    assert started[0]["data"]["after"]["canary_version"] == 2


def test_a_conversation_keeps_its_version_for_later_turns(api: Api) -> None:
    goals: list[str] = []

    def answer(request: ModelRequest) -> str:
        system = " ".join(str(m.content) for m in request.messages if m.role == "system")
        goals.append("two" if "Version two." in system else "one")
        return "Noted."

    serve_fake(api, MODEL, FunctionModel(answer, name=MODEL))  # type: ignore[arg-type]
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    api.client.patch(f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers())
    live = deployed(api, agent_id, 1)
    deployed(api, agent_id, 2, canary_percent=50)
    conversation = next(
        c for c in (start(api, agent_id) for _ in range(60)) if c["agent_version"] == 2
    )
    path = f"/v1/conversations/{conversation['id']}/messages"
    assert api.client.post(path, json={"text": "Hello"}, headers=api.headers()).status_code == 200
    rolled = act(api, live["id"], "rollback", reason="not sure about it")
    assert rolled.json()["canary_version"] is None
    assert (
        api.client.post(path, json={"text": "Still there?"}, headers=api.headers()).status_code
        == 200
    )
    assert goals == ["two", "two"]
    assert start(api, agent_id)["agent_version"] == 1


def test_promote_then_roll_back_to_the_previous_version(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    live = deployed(api, agent_id, 1)
    assert act(api, live["id"], "promote").status_code == 409  # no canary
    assert act(api, live["id"], "rollback").status_code == 409  # nowhere to go back to
    deployed(api, agent_id, 2, canary_percent=20)
    promoted = act(api, live["id"], "promote").json()
    assert (promoted["live_version"], promoted["previous_version"]) == (2, 1)
    assert promoted["canary_version"] is None
    assert {start(api, agent_id)["agent_version"] for _ in range(20)} == {2}

    rolled = act(api, live["id"], "rollback", reason="complaints")
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["live_version"], rolled.json()["previous_version"]) == (1, None)
    assert start(api, agent_id)["agent_version"] == 1
    assert act(api, live["id"], "rollback").status_code == 409
    entry = audit(api, "deployment.rolled_back")[0]
    assert entry["data"]["rolled_back"] == "live" and entry["data"]["reason"] == "complaints"
    assert entry["data"]["before"]["live_version"] == 2
    assert entry["data"]["after"]["live_version"] == 1
    assert [e["data"]["version"] for e in audit(api, "deployment.promoted")] == [2]


def test_a_service_key_deploys_only_an_approved_proposal(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    deployed(api, agent_id, 1)
    robot = api.client.post(
        "/v1/keys",
        json={"name": "ci", "kind": "service", "scopes": ["agents:read", "deployments:write"]},
        headers=api.headers(),
    ).json()["secret"]
    denied = deploy(api, agent_id, 2, key=robot)
    assert denied.status_code == 403
    assert "approved proposal" in denied.json()["error"]["message"]

    proposal = api.client.post(
        "/v1/proposals",
        json={"agent_id": agent_id, "version": 2, "title": "Version two"},
        headers=api.headers(),
    ).json()
    still = deploy(api, agent_id, 2, key=robot, proposal_id=proposal["id"])
    assert still.status_code == 409  # open, not approved
    review = api.client.post(
        f"/v1/proposals/{proposal['id']}/reviews", json={"kind": "approve"}, headers=api.headers()
    )
    assert review.status_code == 201, review.text
    other = create_agent(api, spec("Someone else."), name="other")
    wrong = deploy(api, other, 1, key=robot, proposal_id=proposal["id"])
    assert wrong.status_code == 400

    allowed = deploy(api, agent_id, 2, key=robot)  # finds the approved proposal by itself
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["live_version"] == 2
    fetched = api.client.get(f"/v1/proposals/{proposal['id']}", headers=api.headers()).json()
    assert fetched["status"] == "deployed"
    entry = audit(api, "deployment.deployed")[0]
    assert entry["actor_kind"] == "service"
    assert entry["data"]["proposal_id"] == proposal["id"]


def test_a_widening_version_is_recorded_as_a_permission_change(api: Api) -> None:
    agent_id = create_agent(
        api, spec("Careful."), spec("Careful.", guardrails={"preset": "minimal"})
    )
    live = deployed(api, agent_id, 1)
    deployed(api, agent_id, 2, canary_percent=10)
    started = audit(api, "deployment.canary_started")[0]
    assert started["data"]["widens_permissions"] == [
        "weakens the guardrail preset from standard to minimal"
    ]
    act(api, live["id"], "promote")
    promoted = audit(api, "deployment.promoted")[0]
    assert promoted["data"]["widens_permissions"] == started["data"]["widens_permissions"]
    rolled = act(api, live["id"], "rollback")
    assert rolled.json()["live_version"] == 1
    back = audit(api, "deployment.rolled_back")[0]
    assert back["data"]["widens_permissions"] == []  # back to the stricter version


def test_the_sdk_drives_deployments_and_reads_the_canary(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    with (
        SyncASGITransport(api.client.app) as transport,
        DeputyClient("http://deputy.test", api.owner_key, transport=transport) as sdk,
    ):
        live = sdk.deployments.deploy(agent_id, 1, note="via the SDK")
        canary = sdk.deployments.deploy(agent_id, 2, canary_percent=25)
        assert canary.id == live.id and canary.canary_version == 2
        assert [d.id for d in sdk.deployments.list(agent_id)] == [live.id]
        for _ in range(10):
            start(api, agent_id)
        status = sdk.deployments.canary(live.id)
        assert (status.live.version, status.canary.version) == (1, 2)
        assert status.live.conversations + status.canary.conversations == 10
        assert status.decision == "wait" and status.autonomy == "proposal_only"
        assert sdk.deployments.pause(live.id).canary_paused is True
        assert sdk.deployments.resume(live.id).canary_paused is False
        assert sdk.deployments.rollback(live.id, reason="enough").canary_version is None
        assert sdk.deployments.get(live.id).live_version == 1
        trust = sdk.deployments.trust(agent_id)
        assert (trust.manual_rollbacks, trust.canaries_rolled_back) == (1, 1)
        assert (trust.automatic_rollbacks, trust.auto_deployed) == (0, 0)
        assert trust.autonomy == "proposal_only"

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(
            "http://deputy.test", api.owner_key, transport=transport
        ) as aio:
            again = await aio.deployments.deploy(agent_id, 2, canary_percent=10)
            assert (await aio.deployments.canary(again.id)).canary.version == 2
            promoted = await aio.deployments.promote(again.id)
            assert (promoted.live_version, promoted.previous_version) == (2, 1)
            assert (await aio.deployments.trust(agent_id)).canaries_promoted == 1

    asyncio.run(scenario())


def test_the_cli_shows_a_canary_beside_the_live_version(api: Api) -> None:
    agent_id = create_agent(api, spec("Version one."), spec("Version two."))
    with SyncASGITransport(api.client.app) as in_process:
        state = CliState(
            url="http://deputy.test",
            api_key=api.owner_key,
            transport=httpx.MockTransport(in_process.handle_request),
        )

        def run(*args: str) -> Result:
            return CliRunner().invoke(app, ["deployments", *args], obj=state)

        deployed_out = run("deploy", "support", "1", "--json")
        assert deployed_out.exit_code == 0, deployed_out.output
        deployment_id = json.loads(deployed_out.stdout)["id"]
        assert run("deploy", agent_id, "2", "--canary", "40").exit_code == 0
        for _ in range(6):
            start(api, agent_id)
        shown = run("show", deployment_id)
        assert shown.exit_code == 0, shown.output
        assert "LIVE v1" in shown.stdout and "CANARY v2" in shown.stdout
        assert "conversations" in shown.stdout and "decision: wait" in shown.stdout
        listed = run("list", "support")
        assert deployment_id in listed.stdout and "v2 at 40%" in listed.stdout
        assert run("pause", deployment_id).exit_code == 0
        rolled = run("rollback", deployment_id, "--reason", "by hand", "--json")
        assert json.loads(rolled.stdout)["canary_version"] is None
        trust = run("trust", "support", "--json")
        assert json.loads(trust.stdout)["manual_rollbacks"] == 1
        refused = run("promote", deployment_id)
        assert refused.exit_code != 0 and "no canary" in refused.output


def test_a_route_reaches_the_target_agents_live_version(api: Api) -> None:
    def answer(request: ModelRequest) -> ModelResponse | str:
        system = " ".join(str(m.content) for m in request.messages if m.role == "system")
        if "Triage." in system:
            return tool_call("transfer_to_agent", {"route_id": "billing", "reason": "invoices"})
        return "Billing version two." if "Billing two." in system else "Billing version one."

    serve_fake(api, MODEL, FunctionModel(answer, name=MODEL))  # type: ignore[arg-type]
    quiet = {"mode": "reasoning", "guardrails": {"preset": "minimal"}}
    billing = create_agent(
        api, spec("Billing one.", **quiet), spec("Billing two.", **quiet), name="billing"
    )
    route = {"id": "billing", "agent": "billing", "when": "Invoices."}
    triage = create_agent(api, spec("Triage.", routes=[route], **quiet), name="triage")
    for agent_id in (billing, triage):
        api.client.patch(f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers())

    def routed() -> tuple[str, int]:
        conversation = start(api, triage)
        turn = api.client.post(
            f"/v1/conversations/{conversation['id']}/messages",
            json={"text": "Why was I charged twice?"},
            headers=api.headers(),
        )
        assert turn.status_code == 200, turn.text
        after = api.client.get(f"/v1/conversations/{conversation['id']}", headers=api.headers())
        return turn.json()["reply"]["text"], after.json()["current_agent_version"]

    assert routed() == ("Billing version two.", 2)  # never deployed: its latest version
    deployed(api, billing, 1)
    assert routed() == ("Billing version one.", 1)  # deployed: its live version
