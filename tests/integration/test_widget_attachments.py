"""Conversation attachments through the real app: a customer's file is stored and announced as
a message the agent answers; types and sizes are checked from the bytes; uploads need the spec's
consent; members download, the customer's token does not."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

from tests.integration.channel_agent import ECHO_PREFIX, echo_agent
from tests.integration.conftest import Api
from tests.integration.test_widget_sessions import start_session, widget_key

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))


def upload(api: Api, token: str, cid: str, name: str, content: bytes, **form: str) -> Any:
    return api.client.post(
        f"/v1/conversations/{cid}/attachments",
        files={"file": (name, io.BytesIO(content), "application/octet-stream")},
        data=form,
        headers=api.headers(token),
    )


@pytest.fixture
def session(api: Api) -> dict[str, Any]:
    agent = echo_agent(api, channels={"chat": {"allow_uploads": True}})
    started = start_session(api, widget_key(api, agent))
    assert started["allow_uploads"] is True
    assert "image/png" in started["upload_types"]
    return started


def test_an_upload_is_stored_and_announced_to_the_agent(api: Api, session: dict[str, Any]) -> None:
    cid, token = session["conversation_id"], session["token"]
    sent = upload(api, token, cid, "receipt.png", PNG, text="Here is my receipt")
    assert sent.status_code == 201, sent.text
    attachment, turn = sent.json()["attachment"], sent.json()["turn"]
    assert attachment["media_type"] == "image/png"
    assert attachment["size_bytes"] == len(PNG)
    assert attachment["sha256"] == hashlib.sha256(PNG).hexdigest()
    line = f"[attachment: receipt.png (image/png, {len(PNG)} bytes)]"
    message = turn["entries"][0]
    assert message["kind"] == "customer_message"
    assert message["text"] == f"Here is my receipt\n{line}"
    assert turn["reply"]["text"] == ECHO_PREFIX + f"Here is my receipt\n{line}"

    # Members download it as stored, as a download; the customer's token cannot.
    path = f"/v1/conversations/{cid}/attachments/{attachment['id']}"
    got = api.client.get(path, headers=api.headers())
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert api.client.get(path, headers=api.headers(token)).status_code == 403
    # Not under another conversation, nor an unknown id.
    other = api.client.post(
        "/v1/conversations", json={"agent_id": session["agent_id"]}, headers=api.headers()
    ).json()["id"]
    wrong = f"/v1/conversations/{other}/attachments/{attachment['id']}"
    assert api.client.get(wrong, headers=api.headers()).status_code == 404
    unknown = f"/v1/conversations/{cid}/attachments/att_{'0' * 32}"
    assert api.client.get(unknown, headers=api.headers()).status_code == 404


def test_text_and_pdf_are_accepted(api: Api, session: dict[str, Any]) -> None:
    cid, token = session["conversation_id"], session["token"]
    for name, content, media_type in (
        ("notes.txt", "Order #123 arrived broken \u2013 photo follows".encode(), "text/plain"),
        ("orders.csv", b"id,total\n1,20\n", "text/csv"),
        ("invoice.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf"),
    ):
        sent = upload(api, token, cid, name, content)
        assert sent.status_code == 201, sent.text
        assert sent.json()["attachment"]["media_type"] == media_type


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("setup.exe", b"MZ\x90\x00\x03\x00\x00\x00", 415),
        ("photo.png", b"MZ\x90\x00\x03\x00\x00\x00", 415),  # a program named as a picture
        ("tool", b"\x7fELF\x02\x01\x01\x00", 415),
        ("run.sh", b"#!/bin/sh\nrm -rf /\n", 415),
        ("page.html", b"<html><script>alert(1)</script></html>", 415),
        ("photo.png", b"%PDF-1.4\n", 415),  # the name promises another type than the bytes
        ("blob.bin", bytes(range(256)), 415),
        ("empty.txt", b"", 400),
    ],
)
def test_dangerous_unknown_and_empty_files_are_refused(
    api: Api, session: dict[str, Any], name: str, content: bytes, status: int
) -> None:
    cid = session["conversation_id"]
    refused = upload(api, session["token"], cid, name, content)
    assert refused.status_code == status, refused.text
    transcript = api.client.get(f"/v1/conversations/{cid}/transcript", headers=api.headers()).json()
    assert all(e["kind"] != "customer_message" for e in transcript["entries"])
    assert not any(api.platform.blobs.root.glob("*/att_*"))


def test_a_file_over_the_limit_is_refused(api: Api, session: dict[str, Any]) -> None:
    too_big = b"a" * (api.platform.settings.max_upload_bytes + 1)
    refused = upload(api, session["token"], session["conversation_id"], "big.txt", too_big)
    assert refused.status_code == 413
    assert not any(api.platform.blobs.root.glob("*/att_*"))


def test_uploads_need_the_specs_consent_and_an_open_conversation(api: Api) -> None:
    agent = echo_agent(api, name="no-files")
    session = start_session(api, widget_key(api, agent))
    assert session["allow_uploads"] is False
    refused = upload(api, session["token"], session["conversation_id"], "a.png", PNG)
    assert refused.status_code == 403
    assert "allow_uploads" in refused.json()["error"]["message"]

    allowing = echo_agent(api, name="files", channels={"chat": {"allow_uploads": True}})
    conversation = api.client.post(
        "/v1/conversations", json={"agent_id": allowing}, headers=api.headers()
    ).json()
    closed = api.client.post(
        f"/v1/conversations/{conversation['id']}/close", json={}, headers=api.headers()
    )
    assert closed.status_code == 200
    late = upload(api, api.owner_key, conversation["id"], "a.png", PNG)
    assert late.status_code == 409
    assert not any(api.platform.blobs.root.glob("*/att_*"))


def test_the_service_keeps_to_its_own_limit_within_the_body_limit(
    api: Api, session: dict[str, Any]
) -> None:
    from dataclasses import replace

    from deputy.config import load_settings
    from deputy.domain.errors import PayloadTooLarge
    from deputy.domain.tenancy import Principal
    from deputy.services.conversation_attachments import _store

    small = replace(
        api.platform,
        settings=load_settings(data_dir=api.platform.settings.data_dir, max_upload_bytes=2048),
    )
    workspace = api.client.get("/v1/workspace", headers=api.headers()).json()["id"]
    principal = Principal(
        workspace_id=workspace, key_id="key_x", key_kind="service", scopes=frozenset()
    )
    cid = session["conversation_id"]
    with pytest.raises(PayloadTooLarge):
        _store(small, principal, cid, io.BytesIO(b"a" * 2049), "big.txt")
    kept = _store(small, principal, cid, io.BytesIO(b"a" * 2048), "fits.txt")
    assert kept.size_bytes == 2048
    assert sorted(p.name for p in api.platform.blobs.root.glob("*/att_*")) == sorted(
        [kept.id, f"{kept.id}.json"]
    )
