"""Materials, agents and spec versions, keys and members through the API on a real database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from deputy.store import tables as t
from tests.integration.conftest import Api

SPEC = {
    "name": "Retail support",
    "goal": "Help customers with orders, returns and exchanges.",
    "procedures": [
        {
            "id": "return_item",
            "title": "Return an item",
            "when": "The customer wants to return a delivered item.",
            "slots": [{"id": "order_id"}],
            "steps": [
                {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Which order?"},
                {
                    "id": "confirm_return",
                    "kind": "confirm",
                    "text": "Return order {order_id}?",
                    "on_decline": "kept",
                },
                {
                    "id": "do_return",
                    "kind": "call_tool",
                    "tool": "return_items",
                    "arguments": {"order_id": "{order_id}"},
                },
                {"id": "returned", "kind": "end", "exit": "returned", "text": "Done."},
                {"id": "kept", "kind": "end", "exit": "kept", "text": "Nothing changed."},
            ],
            "exits": [
                {"id": "returned", "outcome": "resolved"},
                {"id": "kept", "outcome": "resolved"},
            ],
        }
    ],
    "tools": [
        {
            "name": "return_items",
            "effect": "irreversible",
            "binding": {"kind": "openapi", "source": "retail", "operation": "return_items"},
        }
    ],
}


def test_material_upload_roundtrip_and_delete(api: Api) -> None:
    content = b"# Returns\nItems can be returned within 30 days.\n"
    response = api.client.post(
        "/v1/materials",
        files={"file": ("returns.md", content, "application/octet-stream")},
        headers=api.headers(),
    )
    assert response.status_code == 201, response.text
    material = response.json()
    assert material["media_type"] == "text/markdown"
    assert material["sha256"] == hashlib.sha256(content).hexdigest()
    assert material["size_bytes"] == len(content)
    download = api.client.get(f"/v1/materials/{material['id']}/content", headers=api.headers())
    assert download.content == content
    assert download.headers["etag"] == f'"{material["sha256"]}"'
    assert (
        api.client.delete(f"/v1/materials/{material['id']}", headers=api.headers()).status_code
        == 204
    )
    assert (
        api.client.get(f"/v1/materials/{material['id']}", headers=api.headers()).status_code == 404
    )
    assert not api.platform.blobs.exists(material["workspace_id"], material["id"])


def test_material_types_are_sniffed_not_trusted(api: Api) -> None:
    def upload(name: str, data: bytes):
        return api.client.post("/v1/materials", files={"file": (name, data)}, headers=api.headers())

    assert (
        upload("policy.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n").json()["media_type"]
        == "application/pdf"
    )
    fake_pdf = upload("policy.pdf", b"just text pretending")
    assert (
        fake_pdf.status_code == 415 and fake_pdf.json()["error"]["code"] == "unsupported_media_type"
    )
    assert (
        upload("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff").status_code == 415
    )
    assert upload("archive.zip", b"PK\x03\x04" + b"\x00" * 30).status_code == 415
    assert upload("empty.txt", b"").json()["error"]["code"] == "invalid_request"
    too_big = upload("big.txt", b"a" * (300 * 1024))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    listed = api.client.get("/v1/materials", headers=api.headers()).json()["data"]
    assert [m["filename"] for m in listed] == ["policy.pdf"]


def test_oversized_file_inside_the_request_limit_is_refused(api: Api) -> None:
    """The request limit leaves room for multipart overhead; the file limit is still exact."""
    data = b"b" * (256 * 1024 + 10)
    response = api.client.post(
        "/v1/materials", files={"file": ("big.txt", data)}, headers=api.headers()
    )
    assert response.status_code == 413
    assert api.client.get("/v1/materials", headers=api.headers()).json()["data"] == []


def test_agent_versions_are_validated_immutable_and_numbered(api: Api) -> None:
    agent = api.client.post("/v1/agents", json={"name": "retail"}, headers=api.headers()).json()
    url = f"/v1/agents/{agent['id']}/versions"
    v1 = api.client.post(url, json={"spec": SPEC, "note": "first"}, headers=api.headers())
    assert v1.status_code == 201, v1.text
    assert v1.json()["number"] == 1
    assert v1.json()["spec"]["format"] == "deputy.agentspec/v1"
    same = api.client.post(url, json={"spec": SPEC}, headers=api.headers())
    assert same.status_code == 409 and same.json()["error"]["details"]["version"] == 1
    bad = api.client.post(
        url,
        json={"spec": {**SPEC, "tools": [{**SPEC["tools"][0], "effect": "nuke"}]}},
        headers=api.headers(),
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["loc"] == "tools.0.effect"
    v2 = api.client.post(
        url, json={"spec": {**SPEC, "goal": "Help with returns only."}}, headers=api.headers()
    )
    assert v2.json()["number"] == 2
    assert api.client.get(f"{url}/1", headers=api.headers()).json()["spec"]["goal"] == SPEC["goal"]
    assert (
        api.client.get(f"/v1/agents/{agent['id']}", headers=api.headers()).json()["latest_version"]
        == 2
    )
    assert api.client.get(f"{url}/3", headers=api.headers()).status_code == 404
    duplicate = api.client.post("/v1/agents", json={"name": "retail"}, headers=api.headers())
    assert duplicate.status_code == 409


def test_cursor_pagination_walks_every_item_once(api: Api) -> None:
    names = [f"agent-{i}" for i in range(7)]
    for name in names:
        api.client.post("/v1/agents", json={"name": name}, headers=api.headers())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/v1/agents", params=params, headers=api.headers()).json()
        seen += [a["name"] for a in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(names))
    bad = api.client.get("/v1/agents", params={"cursor": "not-a-cursor"}, headers=api.headers())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_keys_are_shown_once_hashed_and_revocable(api: Api) -> None:
    created = api.client.post(
        "/v1/keys",
        json={"name": "ci", "kind": "service", "scopes": ["agents:read"]},
        headers=api.headers(),
    ).json()
    secret = created["secret"]
    assert secret.startswith("dpy_key_")
    listed = api.client.get("/v1/keys", headers=api.headers()).text
    key_part = f"dpy_{created['key']['id']}_"
    assert secret.startswith(key_part)
    assert secret not in listed and secret.removeprefix(key_part) not in listed
    assert api.client.get("/v1/agents", headers=api.headers(secret)).status_code == 200
    assert (
        api.client.post("/v1/agents", json={"name": "x"}, headers=api.headers(secret)).status_code
        == 403
    )
    info = api.client.get(f"/v1/keys/{created['key']['id']}", headers=api.headers()).json()
    assert info["last_used_at"] is not None
    revoked = api.client.post(
        f"/v1/keys/{created['key']['id']}/revoke", headers=api.headers()
    ).json()
    assert revoked["revoked_at"] is not None
    assert api.client.get("/v1/agents", headers=api.headers(secret)).status_code == 401


def test_roles_bound_what_keys_can_do(api: Api) -> None:
    viewer = api.client.post(
        "/v1/members",
        json={"email": "v@example.com", "name": "Vi", "role": "viewer"},
        headers=api.headers(),
    ).json()
    key = api.client.post(
        "/v1/keys", json={"name": "vi", "member_id": viewer["id"]}, headers=api.headers()
    ).json()
    assert set(key["key"]["scopes"]) == {s for s in key["key"]["scopes"] if s.endswith(":read")}
    viewer_key = key["secret"]
    assert api.client.get("/v1/members", headers=api.headers(viewer_key)).status_code == 200
    denied = api.client.post("/v1/agents", json={"name": "x"}, headers=api.headers(viewer_key))
    assert (
        denied.status_code == 403
        and denied.json()["error"]["details"]["required_scope"] == "agents:write"
    )
    escalate = api.client.post(
        "/v1/keys",
        json={"name": "more", "scopes": ["agents:write"]},
        headers=api.headers(viewer_key),
    )
    assert escalate.status_code == 403
    # a key never exceeds the scopes it was created with, even after a promotion;
    # removing the member revokes it
    api.client.patch(f"/v1/members/{viewer['id']}", json={"role": "builder"}, headers=api.headers())
    assert (
        api.client.post(
            "/v1/agents", json={"name": "x"}, headers=api.headers(viewer_key)
        ).status_code
        == 403
    )
    api.client.delete(f"/v1/members/{viewer['id']}", headers=api.headers())
    assert api.client.get("/v1/agents", headers=api.headers(viewer_key)).status_code == 401


def test_a_workspace_keeps_an_owner(api: Api) -> None:
    me = api.client.get("/v1/members", headers=api.headers()).json()["data"][0]
    demote = api.client.patch(
        f"/v1/members/{me['id']}", json={"role": "viewer"}, headers=api.headers()
    )
    assert demote.status_code == 409
    assert api.client.delete(f"/v1/members/{me['id']}", headers=api.headers()).status_code == 409


def test_only_the_operator_creates_workspaces(api: Api) -> None:
    _, other_owner_key = api.new_workspace("Acme")
    body = {"name": "Nested", "owner_email": "n@example.com", "owner_name": "N"}
    assert (
        api.client.post(
            "/v1/workspaces", json=body, headers=api.headers(other_owner_key)
        ).status_code
        == 403
    )
    assert (
        api.client.get("/v1/workspace", headers=api.headers(other_owner_key)).json()["name"]
        == "Acme"
    )


def test_expired_keys_stop_working(api: Api) -> None:
    past = api.client.post(
        "/v1/keys",
        json={"name": "old", "kind": "service", "expires_at": "2020-01-01T00:00:00Z"},
        headers=api.headers(),
    )
    assert past.status_code == 400
    created = api.client.post(
        "/v1/keys",
        json={"name": "soon", "kind": "service", "expires_at": "2999-01-01T00:00:00Z"},
        headers=api.headers(),
    ).json()
    assert api.client.get("/v1/agents", headers=api.headers(created["secret"])).status_code == 200
    with api.platform.db.session() as session:
        session.execute(
            update(t.ApiKey)
            .where(t.ApiKey.id == created["key"]["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = api.client.get("/v1/agents", headers=api.headers(created["secret"]))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
