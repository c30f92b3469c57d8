"""Indexing the knowledge sources a spec version names: each material under its source's title,
a report per source, failures reported with their reason without stopping the others; through the
API, the SDK and the CLI."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from deputy.cli.main import app as cli_app
from deputy.cli.state import CliState
from deputy.sdk import DeputyClient, RetryPolicy
from deputy.sdk.testing import SyncASGITransport
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

RETURNS = b"# Returns\n\n## Deadline\n\nDelivered items can be returned within 30 days.\n"


def upload(api: Api, name: str, data: bytes) -> str:
    response = api.client.post("/v1/materials", files={"file": (name, data)}, headers=api.headers())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def spec(sources: list[dict[str, str]]) -> dict[str, object]:
    return {"name": "support", "goal": "Answer questions.", "knowledge": {"sources": sources}}


def test_a_versions_sources_are_indexed_and_failures_reported(api: Api) -> None:
    agent = api.client.post("/v1/agents", json={"name": "support"}, headers=api.headers()).json()
    policy = upload(api, "returns.md", RETURNS)
    broken = upload(api, "scan.pdf", b"%PDF-1.7\n% not really a pdf\n")
    sources = [
        {"id": "returns", "material": policy, "title": "Returns policy"},
        {"id": "scan", "material": broken, "title": "Scanned leaflet"},
        {"id": "missing", "material": "mat_01JNOSUCHMATERIAL00000000", "title": "Gone"},
        {"id": "faq", "title": "FAQ (to be written)"},
    ]
    created = api.client.post(
        f"/v1/agents/{agent['id']}/versions", json={"spec": spec(sources)}, headers=api.headers()
    )
    assert created.status_code == 201, created.text
    url = f"/v1/agents/{agent['id']}/versions/1/knowledge/index"

    report = api.client.post(url, headers=api.headers())
    assert report.status_code == 200, report.text
    outcomes = {s["source_id"]: s for s in report.json()["sources"]}
    assert outcomes["returns"]["outcome"] == "created"
    assert outcomes["returns"]["document"]["title"] == "Returns policy"
    assert outcomes["scan"]["outcome"] == "failed" and outcomes["scan"]["reason"]
    assert (
        outcomes["missing"]["outcome"] == "failed" and "not found" in outcomes["missing"]["reason"]
    )
    assert outcomes["faq"]["outcome"] == "skipped"

    search = api.client.post(
        f"/v1/agents/{agent['id']}/knowledge/search",
        json={"query": "how long do I have to send something back?"},
        headers=api.headers(),
    ).json()
    assert search["hits"][0]["citation"]["title"] == "Returns policy"

    # Again: nothing changed, nothing re-embedded; only the indexed document exists.
    again = api.client.post(url, headers=api.headers()).json()
    assert {s["source_id"]: s["outcome"] for s in again["sources"]}["returns"] == "unchanged"
    listed = api.client.get(
        f"/v1/agents/{agent['id']}/knowledge/documents", headers=api.headers()
    ).json()
    assert [d["title"] for d in listed["data"]] == ["Returns policy"]

    assert (
        api.client.post(
            f"/v1/agents/{agent['id']}/versions/9/knowledge/index", headers=api.headers()
        ).status_code
        == 404
    )

    # The SDK and the CLI say the same; the CLI exits 1 because a source failed.
    with SyncASGITransport(api.client.app) as transport:
        state = CliState(
            url="http://deputy.test",
            api_key=api.owner_key,
            # in front, so the command closing its client leaves the app up
            transport=httpx.MockTransport(transport.handle_request),
            retry=RetryPolicy(max_retries=1, backoff=0.0, jitter=False),
        )
        result = CliRunner().invoke(
            cli_app, ["knowledge", "index", agent["id"], "--version", "1", "--json"], obj=state
        )
        with DeputyClient("http://deputy.test", api.owner_key, transport=transport) as sdk:
            report_sdk = sdk.knowledge.index_version(agent["id"], 1)
        assert [s.outcome for s in report_sdk.sources] == [
            "unchanged",
            "failed",
            "failed",
            "skipped",
        ]
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["sources"][0]["outcome"] == "unchanged"
