"""The audit log through the HTTP API, the SDK and the CLI on a real database: permission
changes (keys created and revoked, members added, promoted and removed) are recorded with who
did them; each workspace has its own chain; listing filters and pages; and a log changed or
cut behind the platform's back fails verification at the entry where it was touched, through
`GET /v1/audit/verify` and `deputy audit verify`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from deputy.cli.main import app as cli_app
from deputy.cli.state import CliState
from deputy.sdk import AsyncDeputyClient, DeputyClient, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from deputy.store import tables as t
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


def call(api: Api, method: str, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
    return api.client.request(method, path, headers=api.headers(key), **kw)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def entries(api: Api, key: str | None = None, **params: str) -> list[dict[str, Any]]:
    """Every entry (all pages), oldest first."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = ok(call(api, "GET", "/v1/audit", key, params=query))
        found += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return sorted(found, key=lambda e: e["seq"])


def owner_key_id(api: Api) -> str:
    keys = ok(call(api, "GET", "/v1/keys"))["data"]
    return next(k["id"] for k in keys if k["name"].startswith("owner key"))


def test_permission_changes_are_recorded_with_who_made_them(api: Api) -> None:
    owner = owner_key_id(api)
    bot = ok(call(api, "POST", "/v1/keys", json={"name": "bot", "kind": "service"}), 201)
    ok(call(api, "POST", f"/v1/keys/{bot['key']['id']}/revoke"))
    ok(call(api, "POST", f"/v1/keys/{bot['key']['id']}/revoke"))  # already revoked: no entry
    member = ok(
        call(
            api,
            "POST",
            "/v1/members",
            json={"email": "Rita@Example.com", "name": "Rita", "role": "viewer"},
        ),
        201,
    )
    rita = ok(
        call(
            api,
            "POST",
            "/v1/keys",
            json={"name": "rita", "kind": "member", "member_id": member["id"]},
        ),
        201,
    )
    ok(call(api, "PATCH", f"/v1/members/{member['id']}", json={"role": "reviewer"}))
    ok(call(api, "PATCH", f"/v1/members/{member['id']}", json={"name": "Rita R."}))  # no entry
    assert call(api, "DELETE", f"/v1/members/{member['id']}").status_code == 204

    log = entries(api)
    assert [(e["seq"], e["action"], e["subject_id"]) for e in log] == [
        (1, "key.created", bot["key"]["id"]),
        (2, "key.revoked", bot["key"]["id"]),
        (3, "member.added", member["id"]),
        (4, "key.created", rita["key"]["id"]),
        (5, "member.role_changed", member["id"]),
        (6, "key.revoked", rita["key"]["id"]),
        (7, "member.removed", member["id"]),
    ]
    assert {(e["actor"], e["actor_kind"]) for e in log} == {(owner, "member")}
    assert log[0]["data"]["kind"] == "service" and "agents:write" in log[0]["data"]["scopes"]
    assert log[2]["data"] == {"email": "rita@example.com", "role": "viewer"}
    assert log[4]["data"] == {"email": "rita@example.com", "from": "viewer", "to": "reviewer"}
    assert log[5]["data"]["member_removed"] is True
    assert log[6]["data"] == {"email": "rita@example.com", "role": "reviewer", "keys_revoked": 1}
    assert [e["prev_hash"] for e in log[1:]] == [e["hash"] for e in log[:-1]]
    created = ok(call(api, "GET", "/v1/audit", params={"action": "key.created"}))["data"]
    assert [e["seq"] for e in created] == [4, 1]  # newest first
    only_bot = ok(call(api, "GET", "/v1/audit", params={"subject_id": bot["key"]["id"]}))["data"]
    assert {e["action"] for e in only_bot} == {"key.created", "key.revoked"}
    assert call(api, "GET", "/v1/audit", params={"action": "nope"}).status_code == 422
    verified = ok(call(api, "GET", "/v1/audit/verify"))
    assert verified == {
        "ok": True,
        "entries": 7,
        "head_hash": log[-1]["hash"],
        "first_bad_seq": None,
        "problem": None,
    }


def test_every_role_reads_the_log_channel_keys_do_not_and_workspaces_keep_their_own(
    api: Api,
) -> None:
    member = ok(
        call(
            api,
            "POST",
            "/v1/members",
            json={"email": "vic@example.com", "name": "Vic", "role": "viewer"},
        ),
        201,
    )
    body = {"name": "vic", "kind": "member", "member_id": member["id"]}
    viewer = ok(call(api, "POST", "/v1/keys", json=body), 201)["secret"]
    assert [e["action"] for e in entries(api, viewer)] == ["member.added", "key.created"]
    agent = ok(call(api, "POST", "/v1/agents", json={"name": "support"}), 201)
    channel = ok(
        call(
            api,
            "POST",
            "/v1/keys",
            json={"name": "widget", "kind": "channel", "agent_id": agent["id"]},
        ),
        201,
    )["secret"]
    assert call(api, "GET", "/v1/audit", channel).status_code == 403
    assert call(api, "GET", "/v1/audit/verify", channel).status_code == 403

    _, other = api.new_workspace("Other")
    ok(call(api, "POST", "/v1/keys", other, json={"name": "b-bot", "kind": "service"}), 201)
    theirs = entries(api, other)
    assert [(e["seq"], e["data"]["name"]) for e in theirs] == [(1, "b-bot")]
    assert ok(call(api, "GET", "/v1/audit/verify", other))["entries"] == 1
    ours = entries(api)
    assert [e["seq"] for e in ours] == [1, 2, 3]
    assert ok(call(api, "GET", "/v1/audit/verify"))["ok"] is True


@pytest.fixture
def cli(api: Api) -> Iterator[Any]:
    """`deputy …` against the app, with the owner's key; returns (exit code, stdout)."""
    with SyncASGITransport(api.client.app) as transport:
        proxy = httpx.MockTransport(transport.handle_request)

        def run(*args: str) -> tuple[int, str]:
            state = CliState(
                url="http://deputy.test",
                api_key=api.owner_key,
                transport=proxy,
                retry=RetryPolicy(max_retries=0),
            )
            outcome = CliRunner().invoke(cli_app, list(args), obj=state)
            return outcome.exit_code, outcome.stdout

        yield run


def tamper(api: Api, workspace_id: str, seq: int, **values: Any) -> None:
    """Change a stored entry with plain SQL, as someone with database access could."""
    with api.platform.db.session() as session:
        session.execute(
            update(t.AuditEntryRow)
            .where(t.AuditEntryRow.workspace_id == workspace_id, t.AuditEntryRow.seq == seq)
            .values(**values)
        )


def test_a_tampered_log_fails_verification(api: Api, cli: Any) -> None:
    for name in ("one", "two", "three"):
        ok(call(api, "POST", "/v1/keys", json={"name": name, "kind": "service"}), 201)
    workspace_id = ok(call(api, "GET", "/v1/workspace"))["id"]
    head = ok(call(api, "GET", "/v1/audit/verify"))["head_hash"]
    code, said = cli("audit", "verify")
    assert code == 0 and said.strip() == f"ok: 3 entries, head {head}"
    code, listed = cli("audit", "list", "--action", "key.created", "--json")
    assert code == 0 and [e["data"]["name"] for e in json.loads(listed)["data"]] == [
        "three",
        "two",
        "one",
    ]
    code, table = cli("audit", "list", "--subject", entries(api)[0]["subject_id"])
    assert code == 0 and table.count("key.created") == 1

    second = entries(api)[1]
    tamper(api, workspace_id, 2, data={**second["data"], "scopes": ["agents:read"]})
    verified = ok(call(api, "GET", "/v1/audit/verify"))
    assert (verified["ok"], verified["first_bad_seq"]) == (False, 2)
    assert verified["problem"] == "entry 2 was changed after it was written"
    code, said = cli("audit", "verify")
    assert code == 1 and "not ok: entry 2: entry 2 was changed after it was written" in said
    code, _ = cli("audit", "verify", "--json")
    assert code == 1

    tamper(api, workspace_id, 2, data=second["data"])  # put back: intact again
    assert ok(call(api, "GET", "/v1/audit/verify"))["ok"] is True
    with api.platform.db.session() as session:  # cut an entry out
        session.execute(
            delete(t.AuditEntryRow).where(
                t.AuditEntryRow.workspace_id == workspace_id, t.AuditEntryRow.seq == 2
            )
        )
    verified = ok(call(api, "GET", "/v1/audit/verify"))
    assert (verified["ok"], verified["first_bad_seq"]) == (False, 3)
    assert verified["problem"] == "entry 2 is missing (found 3)"


def test_sdk(api: Api) -> None:
    with SyncASGITransport(api.client.app) as transport:
        client = DeputyClient("http://deputy.test", api.owner_key, transport=transport)
        key_ids = [client.keys.create(name, kind="service").key.id for name in ("a", "b", "c")]
        assert [e.seq for e in client.audit.iter_all(page_size=2)] == [3, 2, 1]
        page = client.audit.list("key.created", limit=1)
        assert len(page.data) == 1 and page.next_cursor is not None
        assert client.audit.list(subject_id="key_none").data == []
        check = client.audit.verify()
        assert check.ok and check.entries == 3 and check.head_hash
        client.close()

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(
            "http://deputy.test", api.owner_key, transport=transport
        ) as aclient:
            seqs = [entry.seq async for entry in aclient.audit.iter_all("key.created", page_size=2)]
            assert seqs == [3, 2, 1]
            page = await aclient.audit.list(subject_id=key_ids[0])
            assert [e.action for e in page.data] == ["key.created"]
            assert (await aclient.audit.verify()).head_hash == check.head_hash

    asyncio.run(scenario())
