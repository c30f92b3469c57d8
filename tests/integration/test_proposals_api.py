"""Proposals through the HTTP API on a real database: filed with sandbox evidence (runs stored
as a finished sandbox process leaves them), the diff and what widens permissions, the gate;
reviewed by people only (comment, request changes, approve), every step in the audit log;
wrong evidence refused with nothing stored; deployments superseding the proposals they make
stale; and the same through the SDK and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from deputy.cli.main import app as cli_app
from deputy.cli.state import CliState
from deputy.domain.ids import new_id
from deputy.domain.sandbox_results import TrialResult, UsageTotals
from deputy.domain.scenarios import ScenarioSuite
from deputy.sandbox.scorecard import scorecard
from deputy.sdk import AsyncDeputyClient, DeputyClient, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from deputy.services.proposals import approved_proposal, mark_deployed
from deputy.store import tables as t
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

SCENARIOS = ("status", "exchange", "refund", "address")
SUITE: dict[str, Any] = {
    "name": "retail",
    "scenarios": [
        {"id": sid, "title": sid, "customer": {"persona": "A customer.", "goal": "Get help."}}
        for sid in SCENARIOS
    ],
}
GET_ORDER = {
    "name": "get_order",
    "effect": "read",
    "binding": {"kind": "http", "method": "GET", "url": "http://127.0.0.1:9/orders/{id}"},
}
REFUND = {
    "name": "refund_order",
    "effect": "irreversible",
    "binding": {"kind": "http", "method": "POST", "url": "http://127.0.0.1:9/refunds"},
    "limits": [{"argument": "amount", "max": 200}],
}
EXCHANGES = {"id": "offer_exchanges", "text": "Offer an exchange before a refund."}


def spec(*, tools: list[Any] | None = None, policies: list[Any] | None = None) -> dict[str, Any]:
    return {
        "name": "Shop",
        "goal": "Answer questions about orders.",
        "tools": [GET_ORDER, *(tools or [])],
        "policies": policies or [],
    }


def call(api: Api, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
    return api.client.request(method, path, headers=api.headers(key), **kw)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    return body


def workspace_id(api: Api) -> str:
    return str(ok(call(api, "GET", "/v1/workspace"))["id"])


def agent_with_versions(api: Api, *specs: dict[str, Any]) -> str:
    agent_id = str(ok(call(api, "POST", "/v1/agents", json={"name": "shop"}), 201)["id"])
    for body in specs:
        ok(call(api, "POST", f"/v1/agents/{agent_id}/versions", json={"spec": body}), 201)
    return agent_id


def deploy(api: Api, agent_id: str, version: int) -> None:
    """The agent's version live on `all` channels, as a deployment leaves it."""
    ws = workspace_id(api)
    with api.platform.db.tenant_session(ws) as session:
        session.add(
            t.Deployment(
                id=new_id("dep"),
                workspace_id=ws,
                agent_id=agent_id,
                channel="all",
                live_version=version,
            )
        )


def finished_run(
    api: Api,
    agent_id: str,
    version: int,
    marks: str,
    *,
    seed: int = 7,
    suite_sha256: str = "suite-retail",
    status: str = "succeeded",
    cost: float = 0.001,
) -> str:
    """A sandbox run of `version` with one trial per scenario (✓ passed, ✗ failed), stored as
    the run's process leaves it: trials, then the scorecard (when it succeeded)."""
    ws = workspace_id(api)
    results = [
        TrialResult(
            scenario_id=sid,
            trial=0,
            seed=seed,
            reward=1.0 if mark == "✓" else 0.0,
            passed=mark == "✓",
            termination="customer_stop",
            agent_usage=UsageTotals(calls=1, cost_usd=cost),
        )
        for sid, mark in zip(SCENARIOS, marks, strict=True)
    ]
    card = scorecard(ScenarioSuite.model_validate(SUITE), results)
    run_id = new_id("sbx")
    with api.platform.db.tenant_session(ws) as session:
        session.add(
            t.SandboxRun(
                id=run_id,
                workspace_id=ws,
                agent_id=agent_id,
                agent_version=version,
                status=status,
                suite=SUITE,
                suite_sha256=suite_sha256,
                scenario_ids=[],
                trials=1,
                seed=seed,
                concurrency=1,
                model="openai:scripted",
                world={"sources": {}},
                world_description={},
                progress={"done": 4, "total": 4, "passed": marks.count("✓"), "errors": 0},
                scorecard=card.model_dump(mode="json") if status == "succeeded" else None,
                attempts=1,
                created_by_key_id="key_test",
            )
        )
        session.flush()
        for position, result in enumerate(results):
            session.add(
                t.SandboxTrial(
                    workspace_id=ws,
                    run_id=run_id,
                    scenario_id=result.scenario_id,
                    trial=0,
                    position=position,
                    passed=result.passed,
                    termination=result.termination,
                    result=result.model_dump(mode="json"),
                )
            )
    return run_id


def member_key(api: Api, role: str, name: str) -> str:
    member = ok(
        call(
            api,
            "POST",
            "/v1/members",
            json={"email": f"{name}@example.com", "name": name, "role": role},
        ),
        201,
    )
    body = {"name": name, "kind": "member", "member_id": member["id"]}
    return str(ok(call(api, "POST", "/v1/keys", json=body), 201)["secret"])


def service_key(api: Api) -> str:
    return str(
        ok(call(api, "POST", "/v1/keys", json={"name": "bot", "kind": "service"}), 201)["secret"]
    )


def propose(api: Api, key: str | None = None, **body: Any) -> httpx.Response:
    return call(api, "POST", "/v1/proposals", key, json={"title": "A change", **body})


def review(api: Api, proposal_id: str, kind: str, key: str, text: str = "") -> httpx.Response:
    path = f"/v1/proposals/{proposal_id}/reviews"
    return call(api, "POST", path, key, json={"kind": kind, "body": text})


def audit_actions(api: Api, subject_id: str) -> list[str]:
    page = ok(call(api, "GET", "/v1/audit", params={"subject_id": subject_id}))
    return [entry["action"] for entry in sorted(page["data"], key=lambda e: e["seq"])]


@pytest.fixture
def shop(api: Api) -> tuple[str, str, str]:
    """An agent live at version 1 with version 2 (adds a policy) proposed: (agent, baseline
    run of v1, candidate run of v2; the candidate fixes `exchange` and breaks nothing)."""
    agent_id = agent_with_versions(api, spec(), spec(policies=[EXCHANGES]))
    deploy(api, agent_id, 1)
    baseline = finished_run(api, agent_id, 1, "✓✗✗✓", cost=0.002)
    candidate = finished_run(api, agent_id, 2, "✓✓✗✓", cost=0.003)
    return agent_id, baseline, candidate


def test_file_comment_request_changes_approve(api: Api, shop: tuple[str, str, str]) -> None:
    agent_id, baseline, candidate = shop
    rita = member_key(api, "reviewer", "rita")
    filed = propose(
        api,
        agent_id=agent_id,
        version=2,
        rationale="Customers ask for exchanges.",
        sandbox_run_id=candidate,
        baseline_run_id=baseline,
        regression_scenario_ids=["exchange"],
    )
    proposal = ok(filed, 201)
    pid = proposal["id"]
    assert filed.headers["Location"] == f"/v1/proposals/{pid}"
    assert (proposal["status"], proposal["origin"], proposal["base_version"]) == (
        "open",
        "manual",
        1,
    )
    assert [c["path"] for c in proposal["changes"]] == ["policies[offer_exchanges]"]
    assert "offer_exchanges" in proposal["diff_text"]
    assert (proposal["widens_permissions"], proposal["widening_reasons"]) == (False, [])
    evidence = proposal["evidence"]
    assert evidence["scorecard"]["conversations"] == 4
    assert evidence["comparison"]["improvements"] == ["exchange"]
    assert evidence["comparison"]["regressions"] == []
    assert evidence["cost"] == {"baseline_usd": 0.002, "candidate_usd": 0.003}
    assert evidence["regression_scenario_ids"] == ["exchange"]
    assert proposal["gate"] == "passed" and "version 1" in proposal["gate_reason"]

    comment = ok(review(api, pid, "comment", rita, "Why only exchanges?"), 201)
    assert comment["reviewer"] != "" and comment["member_id"] is not None
    assert ok(call(api, "GET", f"/v1/proposals/{pid}"))["status"] == "open"
    ok(review(api, pid, "request_changes", rita, "Name the policy source."), 201)
    assert ok(call(api, "GET", f"/v1/proposals/{pid}"))["status"] == "changes_requested"
    approval = ok(review(api, pid, "approve", rita, "Good."), 201)
    decided = ok(call(api, "GET", f"/v1/proposals/{pid}"))
    assert decided["status"] == "approved"
    assert decided["decided_by"] == approval["reviewer"] and decided["decided_at"]
    again = error(review(api, pid, "reject", rita), 409, "conflict")
    assert again["details"]["status"] == "approved"

    reviews = ok(call(api, "GET", f"/v1/proposals/{pid}/reviews"))["data"]
    assert [r["kind"] for r in reviews] == ["approve", "request_changes", "comment"]
    assert audit_actions(api, pid) == [
        "proposal.filed",
        "proposal.commented",
        "proposal.changes_requested",
        "proposal.approved",
    ]
    filed_entry = ok(call(api, "GET", "/v1/audit", params={"action": "proposal.filed"}))["data"][0]
    assert filed_entry["data"] == {
        "agent": agent_id,
        "version": 2,
        "base": 1,
        "widens_permissions": False,
        "reasons": [],
        "gate": "passed",
    }
    ok(review(api, pid, "comment", rita, "Watch the exchange rate."), 201)  # after a decision
    assert ok(call(api, "GET", f"/v1/proposals/{pid}"))["status"] == "approved"
    listed = ok(call(api, "GET", "/v1/proposals", params={"agent_id": agent_id}))["data"]
    assert [p["id"] for p in listed] == [pid]
    assert ok(call(api, "GET", "/v1/proposals", params={"status": "open"}))["data"] == []
    assert ok(call(api, "GET", "/v1/audit/verify"))["ok"] is True


def test_only_a_person_with_reviews_write_reviews(api: Api, shop: tuple[str, str, str]) -> None:
    agent_id, _, candidate = shop
    pid = ok(propose(api, agent_id=agent_id, version=2, sandbox_run_id=candidate), 201)["id"]
    bot = service_key(api)
    for kind in ("approve", "comment"):
        denied = error(review(api, pid, kind, bot), 403, "permission_denied")
        assert "needs a person" in denied["message"]
    viewer = member_key(api, "viewer", "vic")
    error(review(api, pid, "approve", viewer), 403, "permission_denied")
    builder = member_key(api, "builder", "bob")  # may file, may not review
    ok(propose(api, builder, agent_id=agent_id, version=2), 201)
    error(review(api, pid, "approve", builder), 403, "permission_denied")
    error(propose(api, viewer, agent_id=agent_id, version=2), 403, "permission_denied")
    assert ok(call(api, "GET", f"/v1/proposals/{pid}"))["status"] == "open"
    assert audit_actions(api, pid) == ["proposal.filed"]
    assert ok(call(api, "GET", f"/v1/proposals/{pid}/reviews"))["data"] == []
    error(review(api, "prp_missing", "approve", api.owner_key), 404, "not_found")


def test_wrong_evidence_is_refused_and_nothing_is_stored(
    api: Api, shop: tuple[str, str, str]
) -> None:
    agent_id, baseline, candidate = shop
    other_seed = finished_run(api, agent_id, 1, "✓✓✓✓", seed=8)
    other_suite = finished_run(api, agent_id, 1, "✓✓✓✓", suite_sha256="another-suite")
    running = finished_run(api, agent_id, 2, "✓✓✓✓", status="running")
    refused = {
        "unknown run": {"sandbox_run_id": "sbx_missing"},
        "run of the base": {"sandbox_run_id": baseline},
        "unfinished run": {"sandbox_run_id": running},
        "baseline of the candidate": {"sandbox_run_id": candidate, "baseline_run_id": candidate},
        "other seed": {"sandbox_run_id": candidate, "baseline_run_id": other_seed},
        "other suite": {"sandbox_run_id": candidate, "baseline_run_id": other_suite},
        "baseline alone": {"baseline_run_id": baseline},
        "unknown conversation": {"conversation_ids": ["conv_missing"]},
        "version is the base": {"version": 1},
    }
    messages = {}
    for name, extra in refused.items():
        body = {"agent_id": agent_id, "version": 2, **extra}
        messages[name] = error(propose(api, **body), 400, "invalid_request")["message"]
    assert "is running" in messages["unfinished run"]
    assert "version 1, not" in messages["run of the base"]
    assert "same seed" in messages["other seed"] and "same suite" in messages["other suite"]
    assert "give sandbox_run_id" in messages["baseline alone"]
    error(propose(api, agent_id=agent_id, version=9), 404, "not_found")
    error(propose(api, agent_id=agent_id, version=2, base_version=9), 404, "not_found")
    error(propose(api, agent_id="agt_missing", version=1), 404, "not_found")
    assert ok(call(api, "GET", "/v1/proposals"))["data"] == []
    assert ok(call(api, "GET", "/v1/audit", params={"action": "proposal.filed"}))["data"] == []


def test_widening_is_flagged_and_the_gate_follows_the_evidence(api: Api) -> None:
    agent_id = agent_with_versions(api, spec(tools=[REFUND]), spec(), spec(tools=[REFUND]))
    first = ok(propose(api, agent_id=agent_id, version=1), 201)  # never deployed: v1 whole
    assert first["base_version"] is None and first["changes"] == []
    assert first["diff_text"].startswith("First version")
    assert first["widening_reasons"] == ["adds the irreversible tool `refund_order`"]
    assert "refund_order (irreversible, http POST" in first["diff_text"]
    assert (first["gate"], first["gate_reason"]) == (
        "missing",
        "The candidate has no finished sandbox run.",
    )
    error(
        propose(api, agent_id=agent_id, version=1, baseline_run_id="sbx_x"), 400, "invalid_request"
    )

    deploy(api, agent_id, 2)
    baseline = finished_run(api, agent_id, 2, "✓✓✓✓")
    candidate = finished_run(api, agent_id, 3, "✓✗✓✓")
    widening = ok(
        propose(
            api, agent_id=agent_id, version=3, sandbox_run_id=candidate, baseline_run_id=baseline
        ),
        201,
    )
    assert widening["base_version"] == 2 and widening["widens_permissions"] is True
    assert widening["widening_reasons"] == ["adds the irreversible tool `refund_order`"]
    assert "Widens permissions" in widening["diff_text"]
    assert widening["gate"] == "failed" and "(exchange)" in widening["gate_reason"]
    assert widening["evidence"]["comparison"]["regressions"] == ["exchange"]
    entry = ok(call(api, "GET", "/v1/audit", params={"subject_id": widening["id"]}))["data"][0]
    assert entry["data"]["widens_permissions"] is True
    assert entry["data"]["reasons"] == widening["widening_reasons"]
    assert entry["data"]["gate"] == "failed"
    # Against an explicit base the A/B is still required for the gate.
    no_ab = ok(propose(api, agent_id=agent_id, version=3, sandbox_run_id=candidate), 201)
    assert no_ab["gate"] == "missing" and "live version 2" in no_ab["gate_reason"]


def test_a_deployment_supersedes_the_proposals_it_makes_stale(
    api: Api, shop: tuple[str, str, str]
) -> None:
    agent_id, _, _ = shop
    ok(
        call(api, "POST", f"/v1/agents/{agent_id}/versions", json={"spec": spec(tools=[REFUND])}),
        201,
    )
    chosen, rival, approved_rival = (
        ok(propose(api, agent_id=agent_id, version=v, title=f"v{v}"), 201)["id"] for v in (2, 3, 3)
    )
    other_base = ok(propose(api, agent_id=agent_id, version=3, base_version=2), 201)["id"]
    ok(review(api, approved_rival, "approve", api.owner_key), 201)
    ok(review(api, chosen, "approve", api.owner_key), 201)
    ws = workspace_id(api)
    with api.platform.db.tenant_session(ws) as session:
        found = approved_proposal(session, agent_id, 2)
        assert found is not None and found.id == chosen
        assert approved_proposal(session, agent_id, 1) is None
        mark_deployed(session, chosen)
        mark_deployed(session, chosen)  # again: nothing more happens
    statuses = {p["id"]: p["status"] for p in ok(call(api, "GET", "/v1/proposals"))["data"]}
    assert statuses == {
        chosen: "deployed",
        rival: "superseded",
        approved_rival: "superseded",
        other_base: "open",
    }
    for pid in (rival, approved_rival):
        assert audit_actions(api, pid)[-1] == "proposal.superseded"
    superseded = ok(call(api, "GET", "/v1/audit", params={"action": "proposal.superseded"}))
    assert {e["actor"] for e in superseded["data"]} == {"system:deployments"}
    assert all(e["data"]["by_proposal"] == chosen for e in superseded["data"])
    error(review(api, rival, "approve", api.owner_key), 409, "conflict")
    assert ok(call(api, "GET", "/v1/audit/verify"))["ok"] is True


@pytest.fixture
def sdk(api: Api) -> Iterator[tuple[DeputyClient, httpx.BaseTransport]]:
    with SyncASGITransport(api.client.app) as transport:
        proxy = httpx.MockTransport(transport.handle_request)
        client = DeputyClient("http://deputy.test", api.owner_key, transport=proxy)
        yield client, proxy
        client.close()


def test_sdk_and_cli(
    api: Api, shop: tuple[str, str, str], sdk: tuple[DeputyClient, httpx.BaseTransport]
) -> None:
    agent_id, baseline, candidate = shop
    client, transport = sdk
    made = client.proposals.create(
        agent_id,
        2,
        "Offer exchanges",
        rationale="Customers ask for exchanges.",
        sandbox_run_id=candidate,
        baseline_run_id=baseline,
    )
    ok(
        call(api, "POST", f"/v1/agents/{agent_id}/versions", json={"spec": spec(tools=[REFUND])}),
        201,
    )
    widening = client.proposals.create(agent_id, 3, "Refunds", base_version=1)
    assert made.gate == "passed" and widening.widens_permissions
    assert [p.id for p in client.proposals.iter_all(agent_id, page_size=1)] == [
        widening.id,
        made.id,
    ]
    assert client.proposals.list(status="open", limit=1).next_cursor is not None
    client.proposals.comment(made.id, "Looks right.")

    def run(*args: str) -> tuple[int, str]:
        state = CliState(
            url="http://deputy.test",
            api_key=api.owner_key,
            transport=transport,
            retry=RetryPolicy(max_retries=0),
        )
        outcome = CliRunner().invoke(cli_app, list(args), obj=state)
        return outcome.exit_code, outcome.stdout

    code, listed = run("proposals", "list", "--agent", "shop", "--status", "open", "--json")
    assert code == 0 and {p["id"] for p in json.loads(listed)["data"]} == {made.id, widening.id}
    code, shown = run("proposals", "show", made.id)
    assert code == 0
    for expected in (
        "Offer exchanges",
        "status: open",
        "gate: passed: No scenario regressed against version 1",
        "policies[offer_exchanges]",
        "pass^1 0.750",
        "A/B against run",
        "improvements: exchange",
        "cost per conversation: $0.0020 before, $0.0030 after",
    ):
        assert expected in shown, expected
    code, shown = run("proposals", "show", widening.id)
    assert "! adds the irreversible tool `refund_order`" in shown
    assert shown.index("Widens permissions") < shown.index("changes:")
    assert run("proposals", "list", "--status", "nope")[0] == 2
    code, said = run("proposals", "approve", made.id, "-m", "Ship it.")
    assert code == 0 and f"Approved {made.id}" in said and "it is approved" in said
    assert run("proposals", "reject", made.id)[0] == 1  # already decided: a conflict
    code, said = run("proposals", "request-changes", widening.id, "-m", "Cap the amount lower.")
    assert code == 0 and "it is changes_requested" in said
    kinds = [r.kind for r in client.proposals.iter_reviews(made.id)]
    assert kinds == ["approve", "comment"]
    assert client.proposals.get(made.id).decided_by is not None

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(
            "http://deputy.test", api.owner_key, transport=transport
        ) as aclient:
            assert [p.id async for p in aclient.proposals.iter_all(status="approved")] == [made.id]
            await aclient.proposals.comment(widening.id, "Which cap?")
            await aclient.proposals.reject(widening.id, "Not now.")
            assert (await aclient.proposals.get(widening.id)).status == "rejected"
            page = await aclient.proposals.reviews(widening.id)
            assert [r.kind for r in page.data] == ["reject", "comment", "request_changes"]

    asyncio.run(scenario())
    bot = ok(call(api, "POST", "/v1/keys", json={"name": "bot", "kind": "service"}), 201)["secret"]
    state = CliState(url="http://deputy.test", api_key=bot, transport=transport)
    denied = CliRunner().invoke(cli_app, ["proposals", "approve", widening.id], obj=state)
    assert denied.exit_code == 3 and "needs a person" in denied.output
