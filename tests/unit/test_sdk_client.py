"""The synchronous SDK against the real app, in process (no network, no server)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import httpx
import pytest
from starlette.types import ASGIApp

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.domain.errors import (
    Conflict,
    DeputyError,
    ErrorCode,
    InvalidCursor,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from deputy.llm.errors import ModelOutputInvalid, ModelUnavailable
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Usage
from deputy.sdk import (
    UNSET,
    AuthenticationError,
    ConflictError,
    DeputyAPIError,
    DeputyClient,
    IntegrityMismatch,
    InvalidCursorError,
    InvalidRequestError,
    ModelFailedError,
    ModelOutputInvalidError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    UnavailableError,
    UnexpectedResponse,
    ValidationFailedError,
)
from deputy.sdk import _calls as calls
from deputy.sdk.errors import ERROR_CLASSES, InternalServerError, error_from_response
from deputy.sdk.testing import SyncASGITransport
from deputy.services.model_hub import DatabaseUsageSink
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.testing import ScriptedModel, reply, structured

BASE = "http://deputy.test"
FAST = RetryPolicy(max_retries=3, backoff=0.0, jitter=False)


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Platform, str]]:
    """A fresh platform (SQLite in the test's data dir) and its owner key."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    deployed, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        yield deployed, bootstrap.created.owner_key.secret
    finally:
        deployed.close()


@pytest.fixture
def server(platform: tuple[Platform, str]) -> tuple[ASGIApp, str]:
    """The real app on that platform, and its owner key."""
    return create_app(platform[0]), platform[1]


@pytest.fixture
def transport(server: tuple[ASGIApp, str]) -> Iterator[SyncASGITransport]:
    with SyncASGITransport(server[0]) as in_process:
        yield in_process


@pytest.fixture
def client(server: tuple[ASGIApp, str], transport: SyncASGITransport) -> Iterator[DeputyClient]:
    with DeputyClient(BASE, server[1], transport=transport, retry=FAST) as sdk:
        yield sdk


def test_probes(client: DeputyClient) -> None:
    assert client.health().status == "ok"
    readiness = client.ready()
    assert readiness.ready
    assert readiness.checks["database"] == "ok"


def test_workspace_get_and_rename(client: DeputyClient) -> None:
    workspace = client.workspace.get()
    assert workspace.name == "Default workspace"
    renamed = client.workspace.rename("Acme support")
    assert (renamed.id, renamed.name) == (workspace.id, "Acme support")
    assert client.workspace.get().name == "Acme support"


def test_members_lifecycle(client: DeputyClient) -> None:
    member = client.members.add("ada@example.com", "Ada", "builder")
    assert (member.email, member.role) == ("ada@example.com", "builder")
    assert client.members.get(member.id) == member
    updated = client.members.update(member.id, role="reviewer")
    assert (updated.role, updated.name) == ("reviewer", "Ada")
    assert {m.email for m in client.members.iter_all()} == {
        "owner@localhost.localdomain",
        "ada@example.com",
    }
    client.members.remove(member.id)
    with pytest.raises(NotFoundError):
        client.members.get(member.id)


def test_workspaces_create_returns_the_owner_key_once(
    client: DeputyClient, transport: SyncASGITransport
) -> None:
    created = client.workspaces.create("Second", "boss@example.com", "Boss")
    assert created.owner.email == "boss@example.com"
    with DeputyClient(BASE, created.owner_key.secret, transport=transport) as other:
        assert other.workspace.get().id == created.workspace.id
        assert [a.id for a in other.agents.iter_all()] == []


def test_keys_create_list_revoke(client: DeputyClient, transport: SyncASGITransport) -> None:
    created = client.keys.create("ci", scopes=["agents:read", "workspace:read"])
    assert created.secret.startswith("dpy_")
    assert created.key.scopes == ["agents:read", "workspace:read"]
    assert created.key.id in {k.id for k in client.keys.iter_all()}
    with DeputyClient(BASE, created.secret, transport=transport) as ci:
        assert ci.workspace.get().name == "Default workspace"
        with pytest.raises(PermissionDeniedError):
            ci.agents.create("not-allowed")
        revoked = client.keys.revoke(created.key.id)
        assert revoked.revoked_at is not None
        assert client.keys.get(created.key.id).revoked_at is not None
        with pytest.raises(AuthenticationError, match="revoked") as caught:
            ci.workspace.get()
    assert caught.value.status == 401


def test_materials_upload_list_download_delete(client: DeputyClient, tmp_path: Path) -> None:
    source = tmp_path / "refund-policy.md"
    content = b"# Refunds\n\nRefunds are possible within 30 days.\n" * 500
    source.write_bytes(content)
    seen: list[tuple[int, int | None]] = []
    material = client.materials.upload(
        source, progress=lambda done, total: seen.append((done, total))
    )
    assert (material.filename, material.size_bytes) == ("refund-policy.md", len(content))
    assert material.sha256 == hashlib.sha256(content).hexdigest()
    assert seen[-1] == (len(content), len(content))
    assert all(total == len(content) for _, total in seen)

    from_bytes = client.materials.upload(b"a,b\n1,2\n", filename="table.csv")
    assert from_bytes.media_type == "text/csv"
    assert [m.id for m in client.materials.iter_all()] == [from_bytes.id, material.id]
    assert client.materials.get(material.id) == material

    target = tmp_path / "out" / "copy.md"
    target.parent.mkdir()
    progress: list[int] = []
    written = client.materials.download(
        material.id, target, progress=lambda done, _total: progress.append(done)
    )
    assert written == len(content) and target.read_bytes() == content
    assert progress[0] == 0 and progress[-1] == len(content)
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    assert client.materials.read(from_bytes.id) == b"a,b\n1,2\n"

    client.materials.delete(material.id)
    with pytest.raises(NotFoundError):
        client.materials.get(material.id)


def test_upload_of_an_unnamed_file_object_needs_a_filename(client: DeputyClient) -> None:
    with pytest.raises(ValueError, match="filename"):
        client.materials.upload(io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="filename"):
        client.materials.upload(b"x")


def test_agents_and_versions(client: DeputyClient) -> None:
    agent = client.agents.create("refunds", "Refund desk")
    assert agent.latest_version == 0
    spec = {"name": "refunds", "goal": "Refund orders within policy."}
    first = client.agents.versions.create(agent.id, spec, "first")
    second = client.agents.versions.create(agent.id, {**spec, "goal": "Refund faster."})
    assert (first.number, second.number) == (1, 2)
    assert client.agents.get(agent.id).latest_version == 2
    assert client.agents.versions.get(agent.id, 1).spec["goal"] == "Refund orders within policy."
    assert [v.number for v in client.agents.versions.iter_all(agent.id, page_size=1)] == [2, 1]


def test_iter_all_follows_every_page(client: DeputyClient) -> None:
    created = [client.agents.create(f"agent-{n}").id for n in range(7)]
    first = client.agents.list(limit=3)
    assert len(first.data) == 3 and first.next_cursor is not None
    pages = list(client.agents.iter_pages(page_size=3))
    assert [len(page.data) for page in pages] == [3, 3, 1]
    assert pages[-1].next_cursor is None
    everything = [agent.id for agent in client.agents.iter_all(page_size=3)]
    assert everything == list(reversed(created))  # newest first, each exactly once
    assert [a.id for a in client.agents.iter_all()] == everything


@pytest.mark.parametrize("code", get_args(ErrorCode))
def test_every_stable_code_has_an_error_class(code: str) -> None:
    cls = ERROR_CLASSES[code]
    assert issubclass(cls, DeputyAPIError) and issubclass(cls, DeputyError)
    assert cls.code == code


def test_errors_carry_code_status_request_id_and_details(
    client: DeputyClient, transport: SyncASGITransport
) -> None:
    with pytest.raises(NotFound) as not_found:  # the domain class catches the SDK error
        client.agents.get("agt_missing")
    error = not_found.value
    assert isinstance(error, NotFoundError)
    assert (error.code, error.status) == ("not_found", 404)
    assert error.details == {"kind": "agent", "id": "agt_missing"}
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.request_id in str(error)

    with pytest.raises(ValidationFailedError) as invalid:
        client.agents.create("no/slashes")
    assert isinstance(invalid.value, ValidationFailed)
    assert invalid.value.status == 422
    assert invalid.value.details["errors"][0]["loc"].endswith("name")

    with pytest.raises(InvalidCursorError) as bad_cursor:
        client.agents.list(cursor="not-a-cursor")
    assert isinstance(bad_cursor.value, InvalidCursor) and bad_cursor.value.status == 400

    client.members.add("dup@example.com", "Dup", "viewer")
    with pytest.raises(ConflictError) as conflict:
        client.members.add("dup@example.com", "Dup", "viewer")
    assert isinstance(conflict.value, Conflict) and conflict.value.status == 409

    with (
        DeputyClient(BASE, "dpy_key_nope_secret", transport=transport) as stranger,
        pytest.raises(Unauthenticated) as unauthenticated,
    ):
        stranger.workspace.get()
    assert isinstance(unauthenticated.value, AuthenticationError)
    assert unauthenticated.value.status == 401


def test_permission_denied_for_a_viewer(client: DeputyClient, transport: SyncASGITransport) -> None:
    viewer = client.members.add("viewer@example.com", "Vi", "viewer")
    key = client.keys.create("viewer key", member_id=viewer.id)
    with DeputyClient(BASE, key.secret, transport=transport) as as_viewer:
        assert as_viewer.agents.list().data == []
        with pytest.raises(PermissionDenied) as denied:
            as_viewer.materials.upload(b"text", filename="a.txt")
    assert isinstance(denied.value, PermissionDeniedError) and denied.value.status == 403


def test_error_without_a_deputy_body_is_mapped_by_status() -> None:
    request = httpx.Request("GET", f"{BASE}/v1/agents")
    gateway = error_from_response(
        httpx.Response(502, text="<html>bad gateway</html>", request=request)
    )
    assert isinstance(gateway, UnavailableError) and gateway.status == 502
    teapot = error_from_response(
        httpx.Response(
            500,
            json={"error": {"code": "brand_new_code", "message": "new", "details": {}}},
            request=request,
        )
    )
    assert isinstance(teapot, InternalServerError)
    assert teapot.reported_code == "brand_new_code" and teapot.message == "new"


def test_a_non_deputy_answer_is_reported_as_unexpected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>welcome to nginx</html>")

    with (
        DeputyClient(BASE, "dpy_x", transport=httpx.MockTransport(handler)) as sdk,
        pytest.raises(UnexpectedResponse, match="Deputy server"),
    ):
        sdk.workspace.get()


def test_download_verifies_the_checksum(
    client: DeputyClient, server: tuple[ASGIApp, str], tmp_path: Path
) -> None:
    material = client.materials.upload(b"genuine bytes\n", filename="a.txt")
    inner = SyncASGITransport(server[0])

    def tamper(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        if request.url.path.endswith("/content"):
            return httpx.Response(200, headers=response.headers, content=b"tampered byte\n")
        return response

    target = tmp_path / "downloads" / "a.txt"
    target.parent.mkdir()
    try:
        with (
            DeputyClient(BASE, server[1], transport=httpx.MockTransport(tamper)) as sdk,
            pytest.raises(IntegrityMismatch),
        ):
            sdk.materials.download(material.id, target)
    finally:
        inner.close()
    assert list(target.parent.iterdir()) == []  # neither the file nor a partial one


def test_ids_cannot_change_the_route(client: DeputyClient) -> None:
    agent = client.agents.create("safe")
    with pytest.raises(NotFoundError):
        client.agents.get(f"../agents/{agent.id}")
    with pytest.raises(ValueError, match="empty"):
        client.agents.get("")


# ---- models ------------------------------------------------------------------------------


async def _no_wait(_seconds: float) -> None:
    return None


def serve_fake(platform: Platform, model: ScriptedModel) -> ScriptedModel:
    """Serve `model` under its name behind the real registry stack (metering included)."""
    hub = platform.models
    hub.root = ModelRegistry(
        hub.base_settings,
        local=hub.local,
        usage_sink=DatabaseUsageSink(platform.db),
        served={model.name: model},
        sleep=_no_wait,
    )
    return model


class Recorder:
    """Forwards to the app and keeps every request the SDK sent."""

    def __init__(self, inner: SyncASGITransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def test_update_calls_tell_not_given_from_null() -> None:
    assert repr(UNSET) == "UNSET"
    assert calls.update_workspace(None, UNSET).json == {}
    assert calls.update_workspace("Acme", UNSET).json == {"name": "Acme"}
    assert calls.update_workspace(None, None).json == {"default_model": None}
    assert calls.update_agent("agt_1", "desk", UNSET).json == {"description": "desk"}
    assert calls.update_agent("agt_1", None, None).json == {"model": None}
    run = calls.run_model("hi", None, None, None, 256, None, 90.0, None)
    assert (run.method, run.path, run.json) == (
        "POST",
        "/v1/models/try",
        {
            "prompt": "hi",
            "max_tokens": 256,
        },
    )
    assert run.idempotent and run.idempotency_key and run.timeout == 90.0
    assert {"unavailable", "model_error", "model_output_invalid"} <= run.final_codes


def test_models_list(client: DeputyClient) -> None:
    catalog = client.models.list()
    assert catalog.default_model == catalog.platform_default == "local:qwen2.5-coder-1.5b"
    names = {m.name: m for m in catalog.local}
    assert {"local:qwen2.5-coder-1.5b", "local:smollm2-135m"} <= set(names)
    assert names["local:qwen2.5-coder-1.5b"].is_default
    assert not names["local:smollm2-135m"].is_default
    assert catalog.endpoints == []
    assert catalog.hosted == {"openai": False, "anthropic": False}


def test_models_run_on_a_fake_model(
    platform: tuple[Platform, str], transport: SyncASGITransport
) -> None:
    fake = serve_fake(
        platform[0],
        ScriptedModel(
            [reply("hi", usage=Usage(12, 3)), structured({"order_id": "W2378156"})],
            name="openai:gpt-test",
        ),
    )
    recorder = Recorder(transport)
    with DeputyClient(
        BASE, platform[1], transport=httpx.MockTransport(recorder), retry=FAST, timeout=5.0
    ) as client:
        result = client.models.run(
            "Say hi", model="openai:gpt-test", system="Be brief.", max_tokens=32, temperature=0
        )
        assert (result.model, result.text, result.parsed) == ("openai:gpt-test", "hi", None)
        assert (result.input_tokens, result.output_tokens) == (12, 3)
        assert result.latency_seconds >= 0 and result.finish_reason
        sent = fake.last_request
        assert [m.role for m in sent.messages] == ["system", "user"]
        assert (sent.max_tokens, sent.temperature) == (32, 0)

        schema = {"type": "object", "properties": {"order_id": {"type": "string"}}}
        parsed = client.models.run(
            "Order id?", model="openai:gpt-test", response_schema=schema, timeout=None
        )
        assert parsed.parsed == {"order_id": "W2378156"}
        sent_schema = fake.last_request.response_schema
        assert sent_schema is not None and "order_id" in sent_schema["properties"]
    fake.assert_all_used()

    first, second = recorder.sent("POST", "/v1/models/try")
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    assert json.loads(first.content) == {
        "prompt": "Say hi",
        "max_tokens": 32,
        "model": "openai:gpt-test",
        "system": "Be brief.",
        "temperature": 0,
    }
    assert json.loads(second.content)["response_schema"] == schema
    # A model may take a minute: the call waits longer than the client's 5 s, unless told.
    assert first.extensions["timeout"]["read"] == 180.0
    assert second.extensions["timeout"]["read"] == 5.0


def test_models_run_after_a_lost_answer_replays_it(
    platform: tuple[Platform, str], transport: SyncASGITransport
) -> None:
    fake = serve_fake(platform[0], ScriptedModel(["only once"], name="openai:gpt-test"))
    posts: list[httpx.Request] = []

    def lose_first_answer(request: httpx.Request) -> httpx.Response:
        response = transport.handle_request(request)
        if request.method == "POST":
            posts.append(request)
            if len(posts) == 1:
                raise httpx.ReadError("connection reset by peer", request=request)
        return response

    with DeputyClient(
        BASE, platform[1], transport=httpx.MockTransport(lose_first_answer), retry=FAST
    ) as client:
        result = client.models.run("hi", model="openai:gpt-test")
    assert result.text == "only once"
    assert (
        len(posts) == 2
        and posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    )
    fake.assert_all_used()  # the model ran (and was paid for) once


def test_model_failures_are_typed_and_not_retried(
    platform: tuple[Platform, str], transport: SyncASGITransport
) -> None:
    # The server tries an unavailable model 3 times; the SDK must not multiply that.
    fake = serve_fake(
        platform[0],
        ScriptedModel(
            [*[ModelUnavailable("provider down")] * 3, ModelOutputInvalid("no JSON")],
            name="openai:gpt-test",
        ),
    )
    recorder = Recorder(transport)
    with DeputyClient(
        BASE, platform[1], transport=httpx.MockTransport(recorder), retry=FAST
    ) as client:
        with pytest.raises(UnavailableError) as unavailable:
            client.models.run("hi", model="openai:gpt-test")
        assert unavailable.value.status == 503 and unavailable.value.code == "unavailable"
        assert "provider down" in unavailable.value.message
        assert unavailable.value.request_id

        with pytest.raises(ModelFailedError) as invalid:
            client.models.run("hi", model="openai:gpt-test")
        assert isinstance(invalid.value, ModelOutputInvalidError)
        assert (invalid.value.status, invalid.value.code) == (502, "model_output_invalid")

        with pytest.raises(InvalidRequestError, match="local:gpt-9") as unknown:
            client.models.run("hi", model="local:gpt-9")
        assert unknown.value.status == 400
        with pytest.raises(ValidationFailedError):
            client.models.run("hi", model="gpt-4")  # not `provider:model`
    fake.assert_all_used()
    assert len(recorder.sent("POST", "/v1/models/try")) == 4


def test_model_endpoints_create_list_delete(client: DeputyClient) -> None:
    endpoint = client.model_endpoints.create(
        "ollama", "http://127.0.0.1:11434/v1/", api_key="sk-very-secret"
    )
    assert (endpoint.name, endpoint.base_url) == ("ollama", "http://127.0.0.1:11434/v1")
    assert endpoint.has_api_key and "sk-very-secret" not in endpoint.model_dump_json()
    keyless = client.model_endpoints.create("vllm", "http://127.0.0.1:8000/v1")
    assert not keyless.has_api_key
    assert client.model_endpoints.list() == [endpoint, keyless]
    assert client.models.list().endpoints == ["ollama", "vllm"]
    with pytest.raises(ConflictError):
        client.model_endpoints.create("ollama", "http://127.0.0.1:1/v1")
    with pytest.raises(ValidationFailedError):
        client.model_endpoints.create("Bad Name", "http://127.0.0.1:1/v1")

    client.model_endpoints.delete("ollama")
    assert [e.name for e in client.model_endpoints.list()] == ["vllm"]
    with pytest.raises(NotFoundError):
        client.model_endpoints.delete("ollama")


def test_workspace_default_model_set_kept_and_reset(client: DeputyClient) -> None:
    assert client.workspace.get().default_model is None
    chosen = client.workspace.update(default_model="local:smollm2-135m")
    assert chosen.default_model == "local:smollm2-135m"
    assert client.models.list().default_model == "local:smollm2-135m"
    renamed = client.workspace.update(name="Acme")  # default_model not given: kept
    assert (renamed.name, renamed.default_model) == ("Acme", "local:smollm2-135m")
    assert client.workspace.rename("Acme 2").default_model == "local:smollm2-135m"

    reset = client.workspace.update(default_model=None)
    assert (reset.name, reset.default_model) == ("Acme 2", None)
    catalog = client.models.list()
    assert catalog.default_model == catalog.platform_default
    with pytest.raises(ValidationFailedError):
        client.workspace.update(default_model="not a model")


def test_agent_model_set_kept_and_reset(client: DeputyClient) -> None:
    agent = client.agents.create("refunds", "Refund desk")
    assert agent.model is None
    chosen = client.agents.update(agent.id, model="openai:gpt-4.1-mini")
    assert (chosen.model, chosen.description) == ("openai:gpt-4.1-mini", "Refund desk")
    described = client.agents.update(agent.id, description="Refunds and returns")
    assert (described.model, described.description) == (
        "openai:gpt-4.1-mini",
        "Refunds and returns",
    )
    reset = client.agents.update(agent.id, model=None)
    assert (reset.model, reset.description) == (None, "Refunds and returns")
    assert client.agents.get(agent.id).model is None
    with pytest.raises(NotFoundError):
        client.agents.update("agt_missing", model=None)
