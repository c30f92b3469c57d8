"""Every endpoint, called with another workspace's key, neither reveals nor changes this
workspace's data. New routes fail this test until they are covered here."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from deputy.services.alerts import open_alert
from deputy.testing import FunctionModel, reply
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

SPEC = {
    "name": "Support",
    "goal": "Answer order questions.",
    "channels": {"openai": {"enabled": True}},  # reachable over the OpenAI endpoint, for A
}
SANDBOX_MODEL = "openai:isolation-test"
SUITE = {
    "name": "Secret A suite",
    "scenarios": [
        {
            "id": "hello",
            "title": "Secret A scenario",
            "customer": {"persona": "A customer.", "goal": "Say hello."},
            "script": ["Hello"],
        }
    ],
}
PLAN = {
    "name": "Secret A plan",
    "currency": "USD",
    "models": ["outcome_based"],
    "components": [{"component": "resolved_outcome", "unit_price": "0.99"}],
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/agents/{agent_id}/versions"): {"spec": {**SPEC, "goal": "Hijacked"}},
    ("PATCH", "/v1/members/{member_id}"): {"role": "viewer"},
    ("PATCH", "/v1/workspace"): {"name": "renamed by B"},
    ("POST", "/v1/agents"): {"name": "b-agent"},
    ("POST", "/v1/members"): {"email": "b@example.com", "name": "B", "role": "viewer"},
    ("POST", "/v1/keys"): {"name": "b-key", "kind": "service"},
    ("POST", "/v1/workspaces"): {"name": "X", "owner_email": "x@example.com", "owner_name": "X"},
    ("PATCH", "/v1/agents/{agent_id}"): {"model": "local:smollm2-135m"},
    ("POST", "/v1/agents/{agent_id}/knowledge/documents"): {"text": "by B", "title": "b-doc"},
    ("POST", "/v1/agents/{agent_id}/knowledge/search"): {"query": "secret"},
    ("POST", "/v1/model-endpoints"): {"name": "b-ep", "base_url": "http://127.0.0.1:9"},
    ("POST", "/v1/tool-sources"): {"name": "b_hooks", "kind": "http"},
    ("PATCH", "/v1/tool-sources/{source_id}"): {"description": "hijacked by B"},
    ("POST", "/v1/tool-sources/{source_id}/spec-tools"): {},
    ("POST", "/v1/conversations"): {"agent_id": "{agent_id}"},
    ("POST", "/v1/conversations/{conversation_id}/messages"): {"text": "hijacked by B"},
    ("POST", "/v1/conversations/{conversation_id}/close"): {"outcome": "abandoned"},
    ("POST", "/v1/conversations/{conversation_id}/feedback"): {"rating": 1},
    ("POST", "/v1/conversations/{conversation_id}/human-replies"): {"text": "by B"},
    ("POST", "/v1/builds"): {"goal": "by B", "material_ids": ["{material_id}"], "model": "none"},
    ("POST", "/v1/builds/{build_id}/changes"): {"text": "hijacked by B"},
    ("POST", "/v1/builds/{build_id}/agent"): {"name": "b-agent"},
    ("POST", "/v1/proposals"): {"agent_id": "{agent_id}", "version": 1, "title": "by B"},
    ("POST", "/v1/proposals/{proposal_id}/reviews"): {"kind": "approve", "body": "by B"},
    ("POST", "/v1/agents/{agent_id}/deployments"): {"version": 1},
    ("POST", "/v1/deployments/{deployment_id}/rollback"): {"reason": "by B"},
    ("POST", "/v1/improvement/runs"): {"agent_id": "{agent_id}", "model": SANDBOX_MODEL},
    ("POST", "/v1/sandbox/runs"): {
        "agent_id": "{agent_id}",
        "suite": SUITE,
        "model": SANDBOX_MODEL,
    },
    ("POST", "/v1/channel-connections"): {
        "agent_id": "{agent_id}",
        "kind": "email",
        "name": "b-mailbox",
        "config": {"address": "b@example.com", "smtp_host": "127.0.0.1"},
    },
    ("PATCH", "/v1/channel-connections/{connection_id}"): {"enabled": False},
    ("POST", "/v1/probes"): {
        "agent_id": "{agent_id}",
        "name": "b-probe",
        "scenario": {"script": ["hijacked by B"]},
    },
    ("PATCH", "/v1/probes/{probe_id}"): {"enabled": True, "name": "hijacked by B"},
    ("PUT", "/v1/billing/plan"): {**PLAN, "name": "B plan"},
    ("PUT", "/v1/billing/plans/{agent_id}"): {**PLAN, "name": "B plan"},
    ("PUT", "/v1/billing/budget"): {"amount": "5", "currency": "USD"},
    ("PUT", "/v1/billing/budgets/{agent_id}"): {"amount": "5", "currency": "USD"},
    ("POST", "/v1/billing/invoices"): {"period": "2020-01", "agent_id": "{agent_id}"},
    ("POST", "/v1/billing/disputes"): {"conversation_id": "{disputed_id}", "reason": "by B"},
    ("POST", "/v1/billing/disputes/{dispute_id}/accept"): {"note": "by B"},
    ("POST", "/v1/billing/disputes/{dispute_id}/reject"): {"note": "by B"},
    ("POST", "/v1/alert-targets"): {
        "name": "b-hook",
        "kind": "webhook",
        "config": {"url": "http://127.0.0.1:9/b"},
        "secret": "whsec-b-0123456789abcdef",
    },
    ("PATCH", "/v1/alert-targets/{target_id}"): {"enabled": False},
    ("POST", "/v1/alerts/test"): {"target_id": "{target_id}"},
    ("POST", "/v1/alerts/{alert_id}/silence"): {"minutes": 5, "reason": "by B"},
    ("POST", "/v1/alerts/{alert_id}/resolve"): {"reason": "by B"},
    ("POST", "/v1/chat/completions"): {
        "model": "deputy/{agent_id}",
        "messages": [{"role": "user", "content": "hijacked by B"}],
    },
    ("POST", "/v1/openai/chat/completions"): {
        "model": "deputy/a-agent",
        "messages": [{"role": "user", "content": "hijacked by B"}],
    },
}
# Routes that take a multipart upload instead of a JSON body.
FILES: dict[tuple[str, str], dict[str, tuple[str, bytes, str]]] = {
    ("POST", "/v1/conversations/{conversation_id}/attachments"): {
        "file": ("b.txt", b"by B", "text/plain")
    },
}
# Routes no API key opens: each authenticates its caller by a platform's signature or token
# tied to one connection, so another workspace's key gets nothing more than no key would. B
# calls them on A's own connection, unsigned: refused, never processed.
SIGNED_BY_THE_PLATFORM: dict[tuple[str, str], str] = {
    ("POST", "/v1/channels/{connection_id}/webhook"): (
        "Slack's signing secret (X-Slack-Signature), Telegram's X-Telegram-Bot-Api-Secret-Token, "
        "WhatsApp's X-Hub-Signature-256 (app secret), Twilio's X-Twilio-Signature (auth token)"
    ),
    ("GET", "/v1/channels/{connection_id}/webhook"): "WhatsApp's hub.verify_token handshake",
    ("POST", "/v1/channels/{connection_id}/voice"): "Twilio's X-Twilio-Signature (auth token)",
}

# Routes whose path parameter names none of A's resources: a line of the caller's own preview.
CALLERS_OWN: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/v1/billing/invoices/preview/lines/{number}/events")}
)


def fill(value: Any, ids: dict[str, str]) -> Any:
    """A body value with the ids of workspace A put in (in strings, and in lists of them)."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


def routes(api: Api) -> list[tuple[str, str]]:
    openapi = api.client.get("/openapi.json").json()["paths"]
    found = [
        (m, p)
        for p in openapi
        for m in ("GET", "POST", "PATCH", "DELETE", "PUT")
        if m.lower() in openapi[p]
    ]
    return [(m, p) for m, p in found if p.startswith("/v1")]


def snapshot(api: Api, key: str) -> str:
    """Everything workspace A can see, to compare before and after B's attempts."""
    parts = [api.client.get("/v1/workspace", headers=api.headers(key)).text]
    for listing in (
        "/v1/members",
        "/v1/keys",
        "/v1/materials",
        "/v1/agents",
        "/v1/model-endpoints",
        "/v1/tool-sources",
        "/v1/conversations",
        "/v1/queue",
        "/v1/builds",
        "/v1/sandbox/runs",
        "/v1/proposals",
        "/v1/audit",
        "/v1/improvement/runs",
        "/v1/channel-connections",
        "/v1/probes",
        "/v1/alert-targets",
        "/v1/alerts",
        "/v1/billing/plan",
        "/v1/billing/plans",
        "/v1/billing/budget",
        "/v1/billing/invoices",
        "/v1/billing/disputes",
        "/v1/usage/events",
    ):
        parts.append(
            re.sub(
                r'"last_used_at":"[^"]*"',
                "",
                api.client.get(listing, headers=api.headers(key)).text,
            )
        )
    return "\n".join(parts)


def test_another_workspace_key_reaches_nothing(api: Api) -> None:
    a = api.headers()
    agent = api.client.post("/v1/agents", json={"name": "a-agent"}, headers=a).json()
    api.client.post(f"/v1/agents/{agent['id']}/versions", json={"spec": SPEC}, headers=a)
    member = api.client.post(
        "/v1/members", json={"email": "m@example.com", "name": "M", "role": "builder"}, headers=a
    ).json()
    key = api.client.post(
        "/v1/keys", json={"name": "a-service", "kind": "service"}, headers=a
    ).json()["key"]
    material = api.client.post(
        "/v1/materials", files={"file": ("a.md", b"# secret A")}, headers=a
    ).json()
    knowledge = api.client.post(
        f"/v1/agents/{agent['id']}/knowledge/documents",
        json={"material_id": material["id"], "title": "a-knowledge"},
        headers=a,
    ).json()["document"]
    api.client.post(
        "/v1/model-endpoints",
        json={"name": "a-vllm", "base_url": "http://10.0.0.5:8000/v1", "api_key": "sk-a-secret"},
        headers=a,
    )
    tool_source = api.client.post(
        "/v1/tool-sources",
        json={
            "name": "a_shop",
            "kind": "openapi",
            "document": {
                "openapi": "3.1.0",
                "info": {"title": "A shop", "version": "1"},
                "paths": {"/orders": {"get": {"operationId": "listOrders"}}},
            },
            "base_url": "http://10.0.0.6:9000",
            "auth": {"type": "bearer", "token": "tok-a-secret"},
        },
        headers=a,
    ).json()
    proposal = api.client.post(
        "/v1/proposals",
        json={"agent_id": agent["id"], "version": 1, "title": "Secret A proposal"},
        headers=a,
    ).json()
    deployment = api.client.post(
        f"/v1/agents/{agent['id']}/deployments", json={"version": 1}, headers=a
    ).json()
    conversation = api.client.post(
        "/v1/conversations", json={"agent_id": agent["id"]}, headers=a
    ).json()
    connection = api.client.post(
        "/v1/channel-connections",
        json={
            "agent_id": agent["id"],
            "kind": "telegram",
            "name": "a-telegram",
            "config": {},
            "secrets": {"bot_token": "tok-a-chn-secret", "secret_token": "hook-a-secret"},
        },
        headers=a,
    ).json()
    probe = api.client.post(
        "/v1/probes",
        json={
            "agent_id": agent["id"],
            "name": "Secret A probe",
            "scenario": {"script": ["Secret A script"]},
            "enabled": False,
        },
        headers=a,
    ).json()
    for path in ("/v1/billing/plan", f"/v1/billing/plans/{agent['id']}"):
        assert api.client.put(path, json=PLAN, headers=a).status_code == 200
    for path in ("/v1/billing/budget", f"/v1/billing/budgets/{agent['id']}"):
        budget = {"amount": "123.45", "currency": "USD"}
        assert api.client.put(path, json=budget, headers=a).status_code == 200
    disputed = api.client.post(
        "/v1/conversations", json={"agent_id": agent["id"]}, headers=a
    ).json()
    api.client.post(
        f"/v1/conversations/{disputed['id']}/close", json={"outcome": "resolved"}, headers=a
    )
    dispute = api.client.post(
        "/v1/billing/disputes",
        json={"conversation_id": disputed["id"], "reason": "Secret A dispute"},
        headers=a,
    ).json()
    invoice = api.client.post(
        "/v1/billing/invoices", json={"period": "2020-01", "agent_id": agent["id"]}, headers=a
    ).json()
    target = api.client.post(
        "/v1/alert-targets",
        json={
            "name": "a-hook",
            "kind": "webhook",
            "config": {"url": "http://10.0.0.7/hook"},
            "secret": "whsec-a-secret-0123456789",
        },
        headers=a,
    ).json()
    with api.platform.db.tenant_session(agent["workspace_id"]) as session:
        alert_id = open_alert(
            session,
            agent["workspace_id"],
            key=f"probe:{agent['id']}",
            kind="probe",
            severity="page",
            title="Secret A alert",
            details={},
            agent_id=agent["id"],
        )[0].id
    build = api.client.post(
        "/v1/builds",
        json={"goal": "Secret A goal", "material_ids": [material["id"]], "model": "none"},
        headers=a,
    ).json()
    serve_model(api, SANDBOX_MODEL, FunctionModel(lambda _: reply("Hello!"), name=SANDBOX_MODEL))
    run = api.client.post(
        "/v1/sandbox/runs",
        json={"agent_id": agent["id"], "suite": SUITE, "model": SANDBOX_MODEL},
        headers=a,
    ).json()
    improvement = api.client.post(
        "/v1/improvement/runs", json={"agent_id": agent["id"], "model": SANDBOX_MODEL}, headers=a
    ).json()
    deadline = time.monotonic() + 120
    for path in (
        f"/v1/builds/{build['id']}",
        f"/v1/sandbox/runs/{run['id']}",
        f"/v1/improvement/runs/{improvement['id']}",
    ):
        while api.client.get(path, headers=a).json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"A's {path} did not finish"
            time.sleep(0.05)
    ids = {
        "build_id": build["id"],
        "run_id": run["id"],
        "conversation_id": conversation["id"],
        "source_id": tool_source["id"],
        "name": "a-vllm",
        "agent_id": agent["id"],
        "member_id": member["id"],
        "key_id": key["id"],
        "material_id": material["id"],
        "document_id": knowledge["id"],
        "number": "1",
        "proposal_id": proposal["id"],
        "deployment_id": deployment["id"],
        "improvement_run_id": improvement["id"],
        "connection_id": connection["id"],
        "probe_id": probe["id"],
        "target_id": target["id"],
        "dispute_id": dispute["id"],
        "disputed_id": disputed["id"],
        "invoice_id": invoice["id"],
        "alert_id": alert_id,
        "model": "deputy/a-agent",
        # Any id: B cannot see A's conversation, so no attachment of it is reachable.
        "attachment_id": "att_01ARZ3NDEKTSV4RRFFQ69G5FAV",
    }
    _, b_key = api.new_workspace("Bee")
    before = snapshot(api, api.owner_key)

    covered = 0
    for method, path in routes(api):
        url = path.format(**ids)
        body = BODIES.get((method, path))
        if body is not None:
            body = {k: fill(v, ids) for k, v in body.items()}
        if (method, path) in FILES:
            response = api.client.request(
                method, url, files=FILES[(method, path)], headers=api.headers(b_key)
            )
        else:
            response = api.client.request(method, url, json=body, headers=api.headers(b_key))
        covered += 1
        text = response.text
        private = (
            agent["id"],
            member["id"],
            key["id"],
            material["id"],
            material["sha256"],
            "secret A",
            knowledge["id"],
            "a-knowledge",
            "a-agent",
            "m@example.com",
            "a-vllm",
            "sk-a-secret",
            "10.0.0.5",
            tool_source["id"],
            "a_shop",
            "tok-a-secret",
            "10.0.0.6",
            conversation["id"],
            build["id"],
            "Secret A goal",
            run["id"],
            "Secret A suite",
            "Secret A scenario",
            proposal["id"],
            "Secret A proposal",
            deployment["id"],
            improvement["id"],
            connection["id"],
            "a-telegram",
            "tok-a-chn-secret",
            "hook-a-secret",
            probe["id"],
            "Secret A probe",
            "Secret A script",
            target["id"],
            "a-hook",
            "10.0.0.7",
            "whsec-a-secret",
            alert_id,
            "Secret A alert",
            "Secret A plan",
            "123.45",
            dispute["id"],
            "Secret A dispute",
            disputed["id"],
            invoice["id"],
        )
        sent = url + json.dumps(body)  # echoing what the caller sent reveals nothing
        for secret_value in (value for value in private if value not in sent):
            assert secret_value not in text, f"{method} {path} leaked {secret_value}: {text}"
        if (method, path) in SIGNED_BY_THE_PLATFORM:
            assert response.status_code in (401, 403, 404), f"{method} {path}: {text}"
        elif "{" in path and (method, path) not in CALLERS_OWN:
            assert response.status_code == 404, f"{method} {path}: {response.status_code} {text}"
        else:
            assert response.status_code < 500, f"{method} {path}: {response.status_code} {text}"
            if method == "POST" and path == "/v1/workspaces":
                assert response.status_code == 403

    assert covered >= 18
    assert set(SIGNED_BY_THE_PLATFORM) <= set(routes(api))

    # Key-authenticated front doors outside /v1 (A2A) and the OpenAI endpoint reach nothing of A.
    b = api.headers(b_key)
    rpc = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": {"kind": "message", "messageId": "b-1", "role": "user",
                               "parts": [{"kind": "text", "text": "hijacked by B"}]}},
    }  # fmt: skip
    for response in (
        api.client.get(f"/a2a/{agent['id']}/.well-known/agent-card.json", headers=b),
        api.client.post(f"/a2a/{agent['id']}", json=rpc, headers=b),
        api.client.get("/v1/openai/models/deputy/a-agent", headers=b),
        api.client.post(
            "/v1/chat/completions",
            json=BODIES[("POST", "/v1/chat/completions")] | {"model": f"deputy/{agent['id']}"},
            headers=b,
        ),
    ):
        assert response.status_code == 404, response.text
        assert "Answer order questions" not in response.text  # the card's description
    assert api.client.get("/v1/openai/models", headers=b).json()["data"] == []
    assert (
        api.client.get(f"/a2a/{agent['id']}/.well-known/agent-card.json", headers=a).json()["name"]
        == "a-agent"
    )
    assert snapshot(api, api.owner_key) == before
    assert (
        api.client.get(f"/v1/materials/{material['id']}/content", headers=a).content
        == b"# secret A"
    )
    kept = api.client.get(
        f"/v1/agents/{agent['id']}/knowledge/documents/{knowledge['id']}", headers=a
    ).json()
    assert (kept["revision"], kept["chunk_count"], kept["title"]) == (1, 1, "a-knowledge")
