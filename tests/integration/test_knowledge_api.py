"""The knowledge API end to end on the real app, database and bundled embedder: add from a
material or text, replace, unchanged, list, get, search with citations, delete; errors and
scopes; and the same through the SDK and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from deputy.cli.main import app as cli_app
from deputy.cli.state import CliState
from deputy.sdk import DeputyClient, NotFoundError, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from tests.integration.conftest import Api
from tests.knowledge_files import make_pdf

pytestmark = pytest.mark.integration

POLICY = b"""# Store policy

## Returns

Delivered items can be returned within 30 days. The refund goes to the original payment
method or to an existing gift card.

## Shipping

Orders ship within two business days from our warehouse in Lyon.
"""


def agent(api: Api, name: str = "support") -> str:
    response = api.client.post("/v1/agents", json={"name": name}, headers=api.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def upload(api: Api, name: str, data: bytes) -> dict[str, str]:
    response = api.client.post("/v1/materials", files={"file": (name, data)}, headers=api.headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_documents_are_added_replaced_searched_and_removed(api: Api) -> None:
    agent_id = agent(api)
    base = f"/v1/agents/{agent_id}/knowledge"
    material = upload(api, "policy.md", POLICY)
    created = api.client.post(
        f"{base}/documents", json={"material_id": material["id"]}, headers=api.headers()
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["outcome"] == "created"
    document = body["document"]
    assert document["title"] == "policy.md"
    assert document["material_id"] == material["id"]
    assert document["chunk_count"] == 2 and document["revision"] == 1
    assert document["embedding_model"] == "local:multilingual-e5-small"
    assert document["sha256"] == material["sha256"]

    again = api.client.post(
        f"{base}/documents", json={"material_id": material["id"]}, headers=api.headers()
    )
    assert again.status_code == 200 and again.json()["outcome"] == "unchanged"

    question = "When will my order be shipped from the warehouse?"
    search = api.client.post(
        f"{base}/search", json={"query": question, "k": 1}, headers=api.headers()
    )
    assert search.status_code == 200, search.text
    (hit,) = search.json()["hits"]
    assert search.json()["mode"] == "hybrid"
    assert hit["text"].startswith("## Shipping")
    citation = hit["citation"]
    assert citation["document_id"] == document["id"]
    assert citation["title"] == "policy.md" and citation["material_id"] == material["id"]
    assert citation["heading_path"] == ["Store policy", "Shipping"]
    assert citation["locator"] == {"kind": "lines", "start": 8, "end": 10, "label": "lines 8-10"}
    assert POLICY.decode()[citation["char_start"] : citation["char_end"]] == hit["text"]

    replaced = api.client.post(
        f"{base}/documents",
        json={"text": POLICY.decode().replace("Lyon", "Porto"), "title": "policy.md"},
        headers=api.headers(),
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["outcome"] == "replaced"
    assert replaced.json()["document"]["revision"] == 2
    assert replaced.json()["document"]["id"] == document["id"]
    assert replaced.json()["document"]["material_id"] is None
    hits = api.client.post(
        f"{base}/search", json={"query": "warehouse", "mode": "bm25"}, headers=api.headers()
    ).json()["hits"]
    assert ["Porto" in h["text"] for h in hits] == [True]

    listed = api.client.get(f"{base}/documents", headers=api.headers()).json()
    assert [d["id"] for d in listed["data"]] == [document["id"]]
    got = api.client.get(f"{base}/documents/{document['id']}", headers=api.headers())
    assert got.status_code == 200 and got.json()["revision"] == 2

    deleted = api.client.delete(f"{base}/documents/{document['id']}", headers=api.headers())
    assert deleted.status_code == 204
    assert (
        api.client.get(f"{base}/documents/{document['id']}", headers=api.headers()).status_code
        == 404
    )
    assert (
        api.client.delete(f"{base}/documents/{document['id']}", headers=api.headers()).status_code
        == 404
    )
    empty = api.client.post(f"{base}/search", json={"query": "warehouse"}, headers=api.headers())
    assert empty.json()["hits"] == []
    # the material itself is untouched
    assert (
        api.client.get(f"/v1/materials/{material['id']}", headers=api.headers()).status_code == 200
    )


def test_bad_requests_and_unreadable_files(api: Api) -> None:
    agent_id = agent(api)
    base = f"/v1/agents/{agent_id}/knowledge"

    def add(body: object) -> tuple[int, dict[str, object]]:
        response = api.client.post(f"{base}/documents", json=body, headers=api.headers())
        return response.status_code, response.json()

    assert add({"material_id": "mat_x", "text": "x", "title": "t"})[0] == 422
    assert add({"text": "no title"})[0] == 422
    assert add({"text": "x", "title": "   "})[0] == 422
    status, body = add({"material_id": "mat_missing"})
    assert status == 404 and body["error"]["details"]["kind"] == "material"  # type: ignore[index]
    broken = upload(api, "broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    status, body = add({"material_id": broken["id"]})
    assert status == 422
    assert body["error"]["code"] == "validation_error"  # type: ignore[index]
    assert body["error"]["details"]["reason"] == "damaged"  # type: ignore[index]
    sound = upload(api, "beep.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
    assert add({"material_id": sound["id"]})[0] == 415
    pdf = upload(api, "guide.pdf", make_pdf([[(18, "Guide"), (11, "Exchanges are free.")]]))
    status, body = add({"material_id": pdf["id"], "title": "Exchange guide"})
    assert status == 201 and body["document"]["title"] == "Exchange guide"  # type: ignore[index]

    for search in ({"query": ""}, {"query": "x", "k": 0}, {"query": "x", "k": 51},
                   {"query": "x", "mode": "fuzzy"}):  # fmt: skip
        response = api.client.post(f"{base}/search", json=search, headers=api.headers())
        assert response.status_code == 422, search
    missing = api.client.post(
        "/v1/agents/agt_missing/knowledge/search", json={"query": "x"}, headers=api.headers()
    )
    assert missing.status_code == 404


def test_viewers_search_builders_change(api: Api) -> None:
    agent_id = agent(api)
    base = f"/v1/agents/{agent_id}/knowledge"
    member = api.client.post(
        "/v1/members", json={"email": "v@example.com", "name": "Vi", "role": "viewer"},
        headers=api.headers(),
    ).json()  # fmt: skip
    viewer = api.client.post(
        "/v1/keys", json={"name": "vi", "member_id": member["id"]}, headers=api.headers()
    ).json()["secret"]
    added = api.client.post(
        f"{base}/documents",
        json={"text": POLICY.decode(), "title": "Policy"},
        headers=api.headers(),
    ).json()["document"]
    denied = api.client.post(
        f"{base}/documents", json={"text": "x", "title": "y"}, headers=api.headers(viewer)
    )
    assert denied.status_code == 403
    assert (
        api.client.delete(
            f"{base}/documents/{added['id']}", headers=api.headers(viewer)
        ).status_code
        == 403
    )
    found = api.client.post(f"{base}/search", json={"query": "refund"}, headers=api.headers(viewer))
    assert found.status_code == 200 and found.json()["hits"]
    assert api.client.get(f"{base}/documents", headers=api.headers(viewer)).status_code == 200


def test_sdk_and_cli(api: Api, tmp_path: Path) -> None:
    agent_id = agent(api)
    with SyncASGITransport(api.client.app) as transport:
        client = DeputyClient("http://deputy.test", api.owner_key, transport=transport)
        written = client.knowledge.add(agent_id, text=POLICY.decode(), title="Policy")
        assert written.outcome == "created"
        result = client.knowledge.search(agent_id, "gift card refund", k=2, mode="vector")
        assert result.mode == "vector" and result.hits[0].citation.title == "Policy"
        assert [d.id for d in client.knowledge.iter_all(agent_id)] == [written.document.id]
        assert client.knowledge.get(agent_id, written.document.id).chunk_count == 2
        client.knowledge.delete(agent_id, written.document.id)
        with pytest.raises(NotFoundError):
            client.knowledge.get(agent_id, written.document.id)
        with pytest.raises(ValueError, match="exactly one"):
            client.knowledge.add(agent_id, title="nothing")

        def run(*args: str) -> str:
            state = CliState(
                url="http://deputy.test",
                api_key=api.owner_key,
                # in front, so each command closing its client leaves the app up
                transport=httpx.MockTransport(transport.handle_request),
                retry=RetryPolicy(max_retries=1, backoff=0.0, jitter=False),
            )
            outcome = CliRunner().invoke(cli_app, list(args), obj=state)
            assert outcome.exit_code == 0, outcome.output
            return outcome.stdout

        path = tmp_path / "shipping.md"
        path.write_bytes(POLICY)
        assert "Added kdoc_" in run("knowledge", "add", agent_id, "--file", str(path))
        assert "Unchanged:" in run("knowledge", "add", agent_id, "--file", str(path))
        listed = json.loads(run("knowledge", "list", agent_id, "--json"))
        (document,) = listed["data"]
        assert document["title"] == "shipping.md"
        found = json.loads(run("knowledge", "search", agent_id, "warehouse", "--k", "1", "--json"))
        assert found["hits"][0]["citation"]["locator"]["label"] == "lines 8-10"
        table = run("knowledge", "search", agent_id, "warehouse", "--mode", "bm25")
        assert "shipping.md, lines 8-10" in table
        assert "Removed" in run("knowledge", "remove", agent_id, document["id"], "--yes")
        client.close()
