"""Spec review through the API: versions are linted when created (errors refuse them,
warnings come back with them), and the diff between two versions is what a reviewer reads."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx

from deputy.domain.spec import load_spec
from deputy.sdk import AsyncDeputyClient, DeputyClient
from deputy.sdk.testing import SyncASGITransport
from tests.integration.conftest import Api

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"


def example(name: str) -> dict[str, Any]:
    spec = load_spec((EXAMPLES / name).read_text(encoding="utf-8"))
    return spec.model_dump(mode="json")


def new_agent(api: Api, name: str = "retail") -> str:
    response = api.client.post("/v1/agents", json={"name": name}, headers=api.headers())
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


def test_lint_errors_refuse_a_version_and_store_nothing(api: Api) -> None:
    agent_id = new_agent(api)
    url = f"/v1/agents/{agent_id}/versions"
    refused = api.client.post(url, json={"spec": example("broken.yaml")}, headers=api.headers())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"] == "the agent spec has 15 lint errors"
    problems = error["details"]["errors"]
    assert len(problems) == 15
    assert {
        "loc": "procedures[voucher].steps[refund_now]",
        "message": (
            "step `refund_now` of procedure `voucher` calls the irreversible tool `issue_refund`, "
            "but not every path to it passes a `confirm` step (after any earlier irreversible "
            "call): add one before it"
        ),
        "type": "irreversible_without_confirmation",
    } in problems
    assert set(error["details"]) == {"errors"}  # warnings come with a stored version only
    assert api.client.get(url, headers=api.headers()).json()["data"] == []
    agent = api.client.get(f"/v1/agents/{agent_id}", headers=api.headers()).json()
    assert agent["latest_version"] == 0


def test_warnings_come_back_with_the_version(api: Api) -> None:
    agent_id = new_agent(api)
    spec = example("retail_support.yaml")
    spec["procedures"][0]["slots"].append({"id": "nickname"})  # never asked nor used
    url = f"/v1/agents/{agent_id}/versions"
    created = api.client.post(url, json={"spec": spec}, headers=api.headers())
    assert created.status_code == 201, created.text
    warning = {
        "severity": "warning",
        "code": "unused_slot",
        "path": "procedures[authenticate_user].slots[nickname]",
        "message": "slot `nickname` of procedure `authenticate_user` is never asked, saved or used",
    }
    assert created.json()["lint"] == [warning]
    assert api.client.get(f"{url}/1", headers=api.headers()).json()["lint"] == [warning]
    assert api.client.get(url, headers=api.headers()).json()["data"][0]["lint"] == [warning]
    clean = api.client.post(
        url, json={"spec": example("retail_support.yaml")}, headers=api.headers()
    )
    assert clean.status_code == 201 and clean.json()["lint"] == []


def two_versions(api: Api) -> tuple[str, dict[str, Any]]:
    agent_id = new_agent(api)
    v1 = example("retail_support.yaml")
    v2 = copy.deepcopy(v1)
    cancel = next(p for p in v2["procedures"] if p["id"] == "cancel_pending_order")
    next(s for s in cancel["steps"] if s["id"] == "cancel")["tool"] = "return_delivered_order_items"
    v2["policies"] = [p for p in v2["policies"] if p["id"] != "one_customer_only"]
    v2["goal"] = "Help customers of the store."
    url = f"/v1/agents/{agent_id}/versions"
    for spec in (v1, v2):
        response = api.client.post(url, json={"spec": spec}, headers=api.headers())
        assert response.status_code == 201, response.text
    return agent_id, v1


def test_the_diff_between_two_versions(api: Api) -> None:
    agent_id, v1 = two_versions(api)
    url = f"/v1/agents/{agent_id}/versions/2/diff"
    diff = api.client.get(url, headers=api.headers())
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert (body["agent_id"], body["from_version"], body["to_version"]) == (agent_id, 1, 2)
    assert body["widens_permissions"] is True
    changes = {c["path"]: c for c in body["changes"]}
    assert set(changes) == {
        "goal",
        "procedures[cancel_pending_order].steps[cancel].tool",
        "policies[one_customer_only]",
    }
    step = changes["procedures[cancel_pending_order].steps[cancel].tool"]
    assert step["kind"] == "changed" and step["area"] == "step"
    assert (step["before"], step["after"]) == (
        "cancel_pending_order",
        "return_delivered_order_items",
    )
    assert step["widens_permissions"] is True
    removed = changes["policies[one_customer_only]"]
    assert removed["kind"] == "removed" and removed["before"]["id"] == "one_customer_only"
    assert changes["goal"]["before"] == v1["goal"] and not changes["goal"]["widens_permissions"]
    assert body["text"].startswith("3 changes, 2 widening what the agent may do.\n")
    assert "! - policies[one_customer_only]: policy `one_customer_only` removed" in body["text"]

    backwards = api.client.get(
        f"/v1/agents/{agent_id}/versions/1/diff?against=2", headers=api.headers()
    )
    assert backwards.status_code == 200
    assert {c["path"] for c in backwards.json()["changes"]} == set(changes)
    assert {c["kind"] for c in backwards.json()["changes"]} == {"changed", "added"}
    same = api.client.get(f"{url}?against=2", headers=api.headers()).json()
    assert same["changes"] == [] and same["text"] == "No changes.\n"


def test_diff_errors(api: Api) -> None:
    agent_id, _ = two_versions(api)
    base = f"/v1/agents/{agent_id}/versions"
    first = api.client.get(f"{base}/1/diff", headers=api.headers())
    assert first.status_code == 400 and first.json()["error"]["code"] == "invalid_request"
    assert "give `against`" in first.json()["error"]["message"]
    assert api.client.get(f"{base}/3/diff", headers=api.headers()).status_code == 404
    assert api.client.get(f"{base}/2/diff?against=9", headers=api.headers()).status_code == 404
    assert api.client.get(f"{base}/2/diff?against=0", headers=api.headers()).status_code == 422
    _, other_key = api.new_workspace("Elsewhere")
    hidden = api.client.get(f"{base}/2/diff", headers=api.headers(other_key))
    assert hidden.status_code == 404 and "retail" not in hidden.text


def test_the_sdks_diff_versions(api: Api) -> None:
    agent_id, _ = two_versions(api)
    app = api.client.app
    with (
        SyncASGITransport(app) as transport,
        DeputyClient("http://deputy.test", api.owner_key, transport=transport) as sdk,
    ):
        diff = sdk.agents.versions.diff(agent_id, 2)
        assert (diff.from_version, diff.to_version, diff.widens_permissions) == (1, 2, True)
        assert sdk.agents.versions.diff(agent_id, 2, against=2).changes == []

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncDeputyClient(
            "http://deputy.test", api.owner_key, transport=transport
        ) as sdk:
            diff = await sdk.agents.versions.diff(agent_id, 1, against=2)
            assert len(diff.changes) == 3 and diff.text.startswith("3 changes")

    asyncio.run(scenario())
