"""An API on a real database (SQLite file or PostgreSQL, per DEPUTY_TEST_BACKEND), in process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.services.platform import Platform
from deputy.services.startup import prepare


@dataclass
class Api:
    client: TestClient
    platform: Platform
    owner_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.owner_key}"}

    def new_workspace(self, name: str = "Other") -> tuple[str, str]:
        """Create a second workspace; returns (workspace id, its owner's key)."""
        response = self.client.post(
            "/v1/workspaces",
            json={"name": name, "owner_email": f"{name.lower()}@example.com", "owner_name": name},
            headers=self.headers(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["workspace"]["id"], body["owner_key"]["secret"]


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        max_upload_bytes=256 * 1024,
        max_json_body_bytes=64 * 1024,
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    app = create_app(platform)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()
