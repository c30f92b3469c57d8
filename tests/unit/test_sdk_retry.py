"""Retries and idempotency: faults injected between the SDK and the real in-process app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.sdk import (
    NO_RETRIES,
    DeputyClient,
    DeputyConnectionError,
    DeputyTimeoutError,
    IdempotencyKeyReusedError,
    InternalServerError,
    NotFoundError,
    RetryPolicy,
    UnavailableError,
    ValidationFailedError,
)
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare

BASE = "http://deputy.test"
FAST = RetryPolicy(max_retries=3, backoff=0.0, jitter=False)
Handler = Callable[[httpx.Request], httpx.Response]


class Faults:
    """Forwards requests to the app and lets a test break chosen attempts."""

    def __init__(self, app_transport: SyncASGITransport) -> None:
        self.app = app_transport
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def forward(self, request: httpx.Request) -> httpx.Response:
        response = self.app.handle_request(request)
        self.responses.append(response)
        return response

    def transport(self, handler: Handler) -> httpx.MockTransport:
        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        return httpx.MockTransport(record)

    def attempts(self, method: str, path_prefix: str) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and r.url.path.startswith(path_prefix)
        ]


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Faults, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        with SyncASGITransport(create_app(platform)) as app_transport:
            yield Faults(app_transport), bootstrap.created.owner_key.secret
    finally:
        platform.close()


def client(faults: Faults, key: str, handler: Handler, retry: RetryPolicy = FAST) -> DeputyClient:
    return DeputyClient(BASE, key, transport=faults.transport(handler), retry=retry)


def plain(faults: Faults, key: str) -> DeputyClient:
    """A client straight to the app, for checking state (closing it leaves the app open)."""
    return DeputyClient(
        BASE, key, transport=httpx.MockTransport(faults.app.handle_request), retry=NO_RETRIES
    )


def test_post_retried_after_the_answer_was_lost_creates_one_resource(
    setup: tuple[Faults, str],
) -> None:
    faults, key = setup

    def lose_first_answer(request: httpx.Request) -> httpx.Response:
        response = faults.forward(request)  # the server acts, then the answer is lost
        if request.method == "POST" and len(faults.attempts("POST", "/v1/agents")) == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    with client(faults, key, lose_first_answer) as sdk:
        agent = sdk.agents.create("refunds")
    posts = faults.attempts("POST", "/v1/agents")
    assert len(posts) == 2
    keys = {request.headers["Idempotency-Key"] for request in posts}
    assert len(keys) == 1  # the retry carried the same key
    assert faults.responses[-1].headers.get("idempotent-replayed") == "true"
    with plain(faults, key) as sdk:
        assert [a.id for a in sdk.agents.iter_all()] == [agent.id]


def test_without_the_idempotency_key_the_same_fault_would_duplicate(
    setup: tuple[Faults, str],
) -> None:
    """The control for the upload test below: the key is what prevents the duplicate."""
    faults, key = setup

    def strip_key_and_lose_first_answer(request: httpx.Request) -> httpx.Response:
        del request.headers["Idempotency-Key"]
        response = faults.forward(request)
        if len(faults.attempts("POST", "/v1/materials")) == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    with client(faults, key, strip_key_and_lose_first_answer) as sdk:
        sdk.materials.upload(b"twice?\n", filename="a.txt")
    with plain(faults, key) as sdk:
        assert len(list(sdk.materials.iter_all())) == 2


def test_upload_retried_after_a_lost_answer_stores_one_material(
    setup: tuple[Faults, str], tmp_path: Path
) -> None:
    faults, key = setup
    source = tmp_path / "policy.md"
    source.write_bytes(b"# Policy\n" * 10_000)

    def lose_first_answer(request: httpx.Request) -> httpx.Response:
        response = faults.forward(request)
        if len(faults.attempts("POST", "/v1/materials")) == 1:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return response

    progress: list[int] = []
    with client(faults, key, lose_first_answer) as sdk:
        material = sdk.materials.upload(source, progress=lambda done, _t: progress.append(done))
    assert len(faults.attempts("POST", "/v1/materials")) == 2
    assert progress.count(source.stat().st_size) == 2  # sent in full twice, counted from 0 again
    with plain(faults, key) as sdk:
        assert [m.id for m in sdk.materials.iter_all()] == [material.id]
        assert sdk.materials.read(material.id) == source.read_bytes()


def test_connection_refused_then_success(setup: tuple[Faults, str]) -> None:
    faults, key = setup

    def refuse_twice(request: httpx.Request) -> httpx.Response:
        if len(faults.requests) <= 2:
            raise httpx.ConnectError("connection refused", request=request)
        return faults.forward(request)

    with client(faults, key, refuse_twice) as sdk:
        assert sdk.members.add("a@example.com", "A", "viewer").email == "a@example.com"
    assert len(faults.requests) == 3


def test_503_is_retried_for_reads_and_writes(setup: tuple[Faults, str]) -> None:
    faults, key = setup

    def unavailable_every_other(request: httpx.Request) -> httpx.Response:
        if len(faults.requests) % 2 == 1:
            return httpx.Response(
                503,
                json={
                    "error": {
                        "code": "unavailable",
                        "message": "busy",
                        "request_id": "req_x",
                        "details": {},
                    }
                },
            )
        return faults.forward(request)

    with client(faults, key, unavailable_every_other) as sdk:
        assert sdk.workspace.get().name == "Default workspace"
        agent = sdk.agents.create("after-503")
    assert len(faults.requests) == 4
    with plain(faults, key) as sdk:
        assert [a.id for a in sdk.agents.iter_all()] == [agent.id]


def test_idempotency_in_progress_is_retried(setup: tuple[Faults, str]) -> None:
    faults, key = setup

    def busy_first(request: httpx.Request) -> httpx.Response:
        if len(faults.requests) == 1:
            return httpx.Response(
                409,
                headers={"X-Error-Code": "idempotency_in_progress"},
                json={
                    "error": {
                        "code": "idempotency_in_progress",
                        "message": "still running",
                        "details": {},
                    }
                },
            )
        return faults.forward(request)

    with client(faults, key, busy_first) as sdk:
        assert sdk.agents.create("eventually").name == "eventually"
    assert len(faults.requests) == 2


def test_retries_are_bounded(setup: tuple[Faults, str]) -> None:
    faults, key = setup

    def always_down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        client(faults, key, always_down) as sdk,
        pytest.raises(DeputyConnectionError, match="cannot reach Deputy"),
    ):
        sdk.agents.list()
    assert len(faults.requests) == 4  # the first attempt and 3 retries

    faults.requests.clear()

    def always_503(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, json={"error": {"code": "unavailable", "message": "down", "details": {}}}
        )

    with client(faults, key, always_503) as sdk, pytest.raises(UnavailableError):
        sdk.agents.create("never")
    assert len(faults.requests) == 4


def test_timeouts_are_retried_then_reported(setup: tuple[Faults, str]) -> None:
    faults, key = setup

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with (
        client(faults, key, slow, RetryPolicy(max_retries=1, backoff=0)) as sdk,
        pytest.raises(DeputyTimeoutError),
    ):
        sdk.agents.create("slow")
    assert len(faults.requests) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFoundError), (422, ValidationFailedError), (500, InternalServerError)],
)
def test_other_errors_are_never_retried(
    setup: tuple[Faults, str], status: int, error: type[Exception]
) -> None:
    faults, key = setup
    codes = {404: "not_found", 422: "validation_error", 500: "internal_error"}

    def fail(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"code": codes[status], "message": "no", "details": {}}}
        )

    with client(faults, key, fail) as sdk, pytest.raises(error):
        sdk.agents.create("x")
    assert len(faults.requests) == 1


def test_a_real_404_is_not_retried(setup: tuple[Faults, str]) -> None:
    faults, key = setup
    with client(faults, key, faults.forward) as sdk, pytest.raises(NotFoundError):
        sdk.materials.get("mat_missing")
    assert len(faults.requests) == 1


def test_delete_whose_answer_was_lost_counts_as_done(setup: tuple[Faults, str]) -> None:
    faults, key = setup
    with plain(faults, key) as sdk:
        material = sdk.materials.upload(b"bye\n", filename="bye.txt")

    def lose_first_delete_answer(request: httpx.Request) -> httpx.Response:
        response = faults.forward(request)
        if request.method == "DELETE" and len(faults.attempts("DELETE", "/v1/materials")) == 1:
            raise httpx.ReadError("connection reset", request=request)
        return response

    with client(faults, key, lose_first_delete_answer) as sdk:
        sdk.materials.delete(material.id)  # the retry finds it gone: that is success
        assert len(faults.attempts("DELETE", "/v1/materials")) == 2
        with pytest.raises(NotFoundError):
            sdk.materials.delete(material.id)  # but deleting what never existed is an error


def test_a_caller_chosen_idempotency_key_replays_and_guards(setup: tuple[Faults, str]) -> None:
    faults, key = setup
    with plain(faults, key) as sdk:
        first = sdk.agents.create("once", idempotency_key="create-once")
        again = sdk.agents.create("once", idempotency_key="create-once")
        assert again == first
        with pytest.raises(IdempotencyKeyReusedError):
            sdk.agents.create("other", idempotency_key="create-once")
        assert len(list(sdk.agents.iter_all())) == 1


def test_backoff_policy() -> None:
    policy = RetryPolicy(max_retries=5, backoff=0.5, max_delay=4.0, jitter=False)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(0, retry_after=3) == 3
    assert policy.delay(0, retry_after=60) == 4.0  # Retry-After is capped
    jittered = RetryPolicy(backoff=1.0, jitter=True)
    assert all(0.5 <= jittered.delay(0) <= 1.0 for _ in range(50))
    request = httpx.Request("GET", BASE)
    busy = httpx.Response(429, headers={"Retry-After": "2"}, request=request)
    assert policy.retry_response(busy, 0) == 2.0
    assert policy.retry_response(busy, 5) is None  # retries spent
    assert policy.retry_response(httpx.Response(400, request=request), 0) is None
