"""The whole assembly line through the HTTP API with a scripted model (the issue's two
end-to-end cases):

1. proposal_only: production conversations fail the same way (the agent never offers
   exchanges) → the improvement loop proposes a fix with regression scenarios and a sandbox A/B
   that shows the improvement → a reviewer approves it → canary → promoted; the trust record and
   the audit chain show every step.
2. auto_with_rollback: the loop's change passes the sandbox (its suite has a blind spot) and
   autopilot starts it as a canary by itself; in production the new version hands the returns
   of one product to a human (the scripted model plays that flaw) → its escalation rate
   breaches the rollback trigger → autopilot rolls it back, and the audit log says so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.lifecycle import SYSTEM_AUTOPILOT, SYSTEM_IMPROVEMENT
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.autopilot import check_canaries
from deputy.services.startup import prepare
from deputy.testing import FunctionModel, tool_call
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model
from tests.integration.test_improvement_api import (
    EXCHANGES,
    MODEL,
    OFFER,
    RETURNS,
    SPEC,
    Store,
    get,
    ok,
    post,
    production,
    start,
    wait,
)

pytestmark = pytest.mark.integration

AUTO = {
    "mode": "auto_with_rollback",
    "canary_percent": 50,
    "min_canary_conversations": 5,
    "canary_hours": 1,
}


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app with the background canary check far away: the test runs the check itself."""
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        canary_check_seconds=3600,
        improvement_interval_hours=0,
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def reviewer_key(api: Api) -> str:
    member = ok(
        post(api, "/v1/members", {"email": "rev@example.com", "name": "Rev", "role": "reviewer"}),
        201,
    )
    key = ok(
        post(api, "/v1/keys", {"name": "rev", "kind": "member", "member_id": member["id"]}), 201
    )
    secret: str = key["secret"]
    return secret


def deployed_agent(api: Api, store: Any, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    serve_model(api, MODEL, FunctionModel(store, name=MODEL))
    agent_id: str = ok(post(api, "/v1/agents", {"name": "store-support"}), 201)["id"]
    ok(post(api, f"/v1/agents/{agent_id}/versions", {"spec": spec}), 201)
    ok(api.client.patch(f"/v1/agents/{agent_id}", json={"model": MODEL}, headers=api.headers()))
    deployment = ok(post(api, f"/v1/agents/{agent_id}/deployments", {"version": 1}), 201)
    return agent_id, deployment


def said(api: Api, conversation_id: str, text: str) -> str:
    turn = ok(post(api, f"/v1/conversations/{conversation_id}/messages", {"text": text}))
    reply = turn["reply"]
    return "" if reply is None else str(reply["text"])


def arms(api: Api, agent_id: str, each: int) -> dict[int, list[str]]:
    """New conversations until both versions have at least `each`."""
    by_version: dict[int, list[str]] = {1: [], 2: []}
    while min(len(found) for found in by_version.values()) < each:
        conversation = ok(post(api, "/v1/conversations", {"agent_id": agent_id}), 201)
        by_version[conversation["agent_version"]].append(conversation["id"])
    return by_version


def actions(api: Api) -> list[tuple[str, str]]:
    entries = ok(get(api, "/v1/audit", limit=200))["data"]
    return [(e["action"], e["actor"]) for e in reversed(entries)]


def test_a_recurring_failure_is_fixed_reviewed_canaried_and_promoted(api: Api) -> None:
    agent_id, live = deployed_agent(api, Store(), SPEC)
    failing, _ = production(api, agent_id)

    run = wait(api, start(api, {"agent_id": agent_id, "trials": 1})["id"])
    assert run["status"] == "succeeded", run["error"]
    [candidate] = run["report"]["candidates"]
    assert candidate["status"] == "proposed", candidate["reason"]
    comparison = candidate["comparison"]
    assert comparison["candidate_pass_1"] > comparison["baseline_pass_1"]
    assert set(candidate["regression_scenario_ids"]) <= set(comparison["improvements"])
    proposal = ok(get(api, f"/v1/proposals/{candidate['proposal_id']}"))
    assert (proposal["status"], proposal["gate"], proposal["origin"]) == (
        "open",
        "passed",
        "improvement",
    )
    assert set(proposal["evidence"]["conversation_ids"]) == set(failing)
    assert proposal["evidence"]["improvement_run_id"] == run["id"]

    # a person reviews it: the owner's service key may not, the reviewer does
    service = ok(post(api, "/v1/keys", {"name": "ci", "kind": "service"}), 201)["secret"]
    review = {"kind": "approve", "body": "ship it"}
    refused = post(api, f"/v1/proposals/{proposal['id']}/reviews", review, service)
    assert refused.status_code == 403
    reviewer = reviewer_key(api)
    ok(post(api, f"/v1/proposals/{proposal['id']}/reviews", review, reviewer), 201)

    # canary at 50%: the canary's conversations get exchanges offered, the live ones do not
    canary = {"version": 2, "canary_percent": 50, "proposal_id": proposal["id"]}
    ok(post(api, f"/v1/agents/{agent_id}/deployments", canary, reviewer), 201)
    split = arms(api, agent_id, 3)
    assert all(said(api, c, EXCHANGES[0]) == OFFER for c in split[2])
    assert all(said(api, c, EXCHANGES[1]) != OFFER for c in split[1])
    status = ok(get(api, f"/v1/deployments/{live['id']}/canary"))
    assert status["canary"]["version"] == 2 and status["canary"]["conversations"] >= 3

    promoted = ok(post(api, f"/v1/deployments/{live['id']}/promote", None, reviewer))
    assert (promoted["live_version"], promoted["previous_version"]) == (2, 1)
    assert ok(get(api, f"/v1/proposals/{proposal['id']}"))["status"] == "deployed"
    fresh = ok(post(api, "/v1/conversations", {"agent_id": agent_id}), 201)
    assert fresh["agent_version"] == 2 and said(api, fresh["id"], EXCHANGES[2]) == OFFER

    trust = ok(get(api, f"/v1/agents/{agent_id}/trust"))
    assert (trust["proposals"], trust["approved"], trust["canaries_promoted"]) == (1, 1, 1)
    assert trust["automatic_rollbacks"] == 0
    steps = actions(api)
    assert ("proposal.filed", SYSTEM_IMPROVEMENT) in steps
    order = [action for action, _ in steps]
    assert order.index("proposal.filed") < order.index("proposal.approved")
    assert order.index("proposal.approved") < order.index("deployment.canary_started")
    assert order.index("deployment.canary_started") < order.index("deployment.promoted")
    assert ok(get(api, "/v1/audit/verify"))["ok"] is True


@dataclass
class BlindSpotStore(Store):
    """The new version's flaw, played by the scripted model: on that version's production
    conversations it hands every return of a camping stove (a product no sandbox scenario
    mentions) to a human. The test names those conversations once the canary has them."""

    canary_conversations: set[str] = field(default_factory=set)

    async def __call__(self, request: ModelRequest) -> ModelResponse:
        last = next(m.content for m in reversed(request.messages) if m.role == "user").lower()
        if (
            request.metadata.get("conversation_id") in self.canary_conversations
            and request.schema_name in (None, "response")
            and "camping stove" in last
        ):
            return tool_call("handoff_to_human", {"reason": "returns go to a colleague now"})
        return await super().__call__(request)


def test_a_bad_change_under_autonomy_is_canaried_and_rolled_back_by_itself(api: Api) -> None:
    store = BlindSpotStore()
    agent_id, live = deployed_agent(api, store, {**SPEC, "autonomy": AUTO})
    production(api, agent_id)

    run = wait(api, start(api, {"agent_id": agent_id, "trials": 1})["id"])
    assert run["status"] == "succeeded", run["error"]
    [candidate] = run["report"]["candidates"]
    assert candidate["status"] == "proposed", candidate["reason"]
    proposal = ok(get(api, f"/v1/proposals/{candidate['proposal_id']}"))
    assert proposal["gate"] == "passed" and proposal["widens_permissions"] is False

    # autopilot started the canary by itself: no person approved anything
    deployment = ok(get(api, f"/v1/deployments/{live['id']}"))
    assert (deployment["canary_version"], deployment["canary_by_autopilot"]) == (2, True)
    split = arms(api, agent_id, 5)
    store.canary_conversations.update(split[2])
    for conversation in split[1] + split[2]:
        said(api, conversation, RETURNS[0])
    for conversation in split[1]:
        ok(post(api, f"/v1/conversations/{conversation}/close", {"outcome": "resolved"}))
    for conversation in split[2]:
        assert ok(get(api, f"/v1/conversations/{conversation}"))["status"] == "queued"

    (status,) = check_canaries(api.platform)
    assert status.decision == "rollback"
    assert any("escalation" in breach for breach in status.breaches), status.breaches
    after = ok(get(api, f"/v1/deployments/{live['id']}"))
    assert (after["live_version"], after["canary_version"]) == (1, None)
    fresh = ok(post(api, "/v1/conversations", {"agent_id": agent_id}), 201)
    assert fresh["agent_version"] == 1

    steps = actions(api)
    assert ("deployment.canary_started", SYSTEM_AUTOPILOT) in steps
    assert ("deployment.rolled_back", SYSTEM_AUTOPILOT) in steps
    rolled = ok(get(api, "/v1/audit", action="deployment.rolled_back"))["data"][0]
    assert rolled["data"]["breaches"] and rolled["data"]["canary"]["escalated"] >= 5
    trust = ok(get(api, f"/v1/agents/{agent_id}/trust"))
    assert (trust["auto_deployed"], trust["automatic_rollbacks"]) == (1, 1)
    assert ok(get(api, "/v1/audit/verify"))["ok"] is True
