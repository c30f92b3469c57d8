"""The synchronous SDK against the real app, in process (no network, no server)."""

from __future__ import annotations

import hashlib
import io
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
from deputy.sdk import (
    AuthenticationError,
    ConflictError,
    DeputyAPIError,
    DeputyClient,
    IntegrityMismatch,
    InvalidCursorError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    UnavailableError,
    UnexpectedResponse,
    ValidationFailedError,
)
from deputy.sdk.errors import ERROR_CLASSES, InternalServerError, error_from_response
from deputy.sdk.testing import SyncASGITransport
from deputy.services.startup import prepare

BASE = "http://deputy.test"
FAST = RetryPolicy(max_retries=3, backoff=0.0, jitter=False)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[ASGIApp, str]]:
    """The real app on a fresh platform (SQLite in the test's data dir) and its owner key."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    platform, bootstrap = prepare(load_settings())
    assert bootstrap.created is not None
    try:
        yield create_app(platform), bootstrap.created.owner_key.secret
    finally:
        platform.close()


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
