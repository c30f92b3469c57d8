"""Structured logs: one JSON object per line, carrying the request id and the workspace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from deputy.observability.logging import JsonFormatter
from tests.integration.conftest import Api


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("deputy")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_access_lines_carry_request_and_workspace_ids(api: Api, log_lines: io.StringIO) -> None:
    response = api.client.get("/v1/workspace", headers={**api.headers(), "X-Request-ID": "abc-1"})
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "deputy.access"]
    assert access, entries
    assert access[-1]["request_id"] == "abc-1"
    assert access[-1]["status"] == 200
    assert access[-1]["route"] == "/v1/workspace"
    assert access[-1]["workspace_id"] == response.json()["id"]
    assert api.owner_key not in log_lines.getvalue()
