"""`Idempotency-Key` on POSTs: one effect per key, a clear refusal when a key is misused."""

from __future__ import annotations

from tests.integration.conftest import Api

SPEC = {"spec": {"name": "Support", "goal": "Help customers with orders."}}


def test_repeated_post_replays_the_first_response(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "create-support-agent"}
    first = api.client.post("/v1/agents", json={"name": "support"}, headers=headers)
    second = api.client.post("/v1/agents", json={"name": "support"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    agents = api.client.get("/v1/agents", headers=api.headers()).json()["data"]
    assert [a["name"] for a in agents] == ["support"]


def test_key_reused_with_a_different_body_is_refused(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "k1"}
    assert api.client.post("/v1/agents", json={"name": "a"}, headers=headers).status_code == 201
    response = api.client.post("/v1/agents", json={"name": "b"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    names = [a["name"] for a in api.client.get("/v1/agents", headers=api.headers()).json()["data"]]
    assert names == ["a"]


def test_client_errors_are_replayed_too(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "k-missing"}
    first = api.client.post("/v1/agents/agt_nope/versions", json=SPEC, headers=headers)
    second = api.client.post("/v1/agents/agt_nope/versions", json=SPEC, headers=headers)
    assert first.status_code == second.status_code == 404
    assert second.headers["idempotent-replayed"] == "true"


def test_keys_are_scoped_to_the_credential(api: Api) -> None:
    _, other_key = api.new_workspace("Other")
    for key in (api.owner_key, other_key):
        headers = {**api.headers(key), "Idempotency-Key": "same-key"}
        assert (
            api.client.post("/v1/agents", json={"name": "bot"}, headers=headers).status_code == 201
        )
        assert "idempotent-replayed" not in api.client.get("/v1/agents", headers=headers).headers


def test_uploads_are_idempotent(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "upload-1"}
    files = {"file": ("refunds.md", b"# Refunds\nWithin 30 days.\n", "text/markdown")}
    first = api.client.post("/v1/materials", files=files, headers=headers)
    second = api.client.post("/v1/materials", files=files, headers=headers)
    assert first.status_code == 201 and first.json() == second.json()
    assert len(api.client.get("/v1/materials", headers=api.headers()).json()["data"]) == 1


def test_invalid_idempotency_key_is_refused(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "x" * 300}
    response = api.client.post("/v1/agents", json={"name": "a"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_key_reused_for_another_file_is_refused(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "upload-2"}
    first = api.client.post("/v1/materials", files={"file": ("a.md", b"# A\n")}, headers=headers)
    assert first.status_code == 201
    other = api.client.post(
        "/v1/materials", files={"file": ("b.md", b"# A much longer file\n")}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
