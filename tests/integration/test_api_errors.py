"""Bad input gets a clear, uniform error; every response carries a request id."""

from __future__ import annotations

from tests.integration.conftest import Api


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_missing_and_bad_keys_are_unauthenticated(api: Api) -> None:
    assert_error(api.client.get("/v1/agents"), 401, "unauthenticated")
    assert_error(
        api.client.get("/v1/agents", headers={"Authorization": "Bearer nope"}),
        401,
        "unauthenticated",
    )
    forged = api.owner_key[:-4] + "AAAA"
    assert_error(api.client.get("/v1/agents", headers=api.headers(forged)), 401, "unauthenticated")


def test_malformed_json_is_invalid_request(api: Api) -> None:
    response = api.client.post(
        "/v1/agents",
        content=b'{"name": "x",',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")


def test_wrong_types_are_validation_errors_with_locations(api: Api) -> None:
    response = api.client.post(
        "/v1/agents", json={"name": 42, "surprise": True}, headers=api.headers()
    )
    error = assert_error(response, 422, "validation_error")
    locations = {problem["loc"] for problem in error["details"]["errors"]}
    assert "body.name" in locations and "body.surprise" in locations


def test_unknown_ids_routes_and_methods(api: Api) -> None:
    assert_error(api.client.get("/v1/agents/agt_missing", headers=api.headers()), 404, "not_found")
    assert_error(api.client.get("/v1/nothing-here", headers=api.headers()), 404, "not_found")
    assert_error(api.client.put("/v1/agents", headers=api.headers()), 405, "method_not_allowed")
    assert_error(
        api.client.get("/v1/agents?limit=0", headers=api.headers()), 422, "validation_error"
    )


def test_huge_json_body_is_refused_without_being_read(api: Api) -> None:
    huge = b'{"name": "' + b"a" * (200 * 1024) + b'"}'
    response = api.client.post(
        "/v1/agents", content=huge, headers={**api.headers(), "Content-Type": "application/json"}
    )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["limit"] == 64 * 1024
    assert api.client.get("/v1/agents", headers=api.headers()).json()["data"] == []


def test_streamed_body_without_length_is_counted(api: Api) -> None:
    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = api.client.post(
        "/v1/agents",
        content=chunks(),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


def test_request_id_is_echoed_or_generated(api: Api) -> None:
    mine = api.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert mine.headers["x-request-id"] == "trace-123"
    generated = api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"].startswith("req_")


def test_probes_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["checks"]["database"] == "ok"
    assert_error(api.client.get("/metrics"), 401, "unauthenticated")
    api.client.get("/v1/agents/agt_missing", headers=api.headers())
    text = api.client.get("/metrics", headers=api.headers()).text
    assert (
        'deputy_http_requests_total{method="GET",route="/v1/agents/{agent_id}",status="404"}'
        in text
    )
    assert 'deputy_http_errors_total{code="not_found"}' in text
