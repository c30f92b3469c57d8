"""An agent whose failures a test controls, on an API without its lifespan (no SLO evaluator,
alert sender or improvement schedule runs behind the test's back): the echo agent of
`channel_agent`, whose model crashes on a message saying "fail", reports a model error on
"oops" and is unavailable on "down"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from deputy.api.app import create_app
from deputy.config import load_settings
from deputy.llm.errors import ModelError, ModelUnavailable
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.services.startup import prepare
from deputy.testing import FunctionModel
from tests.integration.channel_agent import ECHO_MODEL, echo_agent, echo_answer
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model

PUBLIC_URL = "https://deputy.test"


@pytest.fixture
def quiet_api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        database_url=database_url, data_dir=tmp_path / "data", public_url=PUBLIC_URL
    )
    platform, boot = prepare(settings)
    assert boot.created is not None
    client = TestClient(create_app(platform), raise_server_exceptions=False)
    yield Api(client=client, platform=platform, owner_key=boot.created.owner_key.secret)
    platform.close()


def breakable_echo(request: ModelRequest) -> ModelResponse:
    said = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    if "fail" in said:
        raise RuntimeError("the model crashed")
    if "oops" in said:
        raise ModelError("the model answered nonsense")
    if "down" in said:
        raise ModelUnavailable("the model is down")
    return echo_answer(request)


def breakable_agent(api: Api, **spec_changes: object) -> str:
    """Deploy the echo agent with the breakable model; its id."""
    agent_id = echo_agent(api, **spec_changes)
    serve_model(api, ECHO_MODEL, FunctionModel(breakable_echo, name=ECHO_MODEL))
    return agent_id


class Traffic:
    """One conversation with the agent; `send` posts good ("hello") and crashing ("please
    fail") messages."""

    def __init__(self, api: Api, agent_id: str) -> None:
        self.api = api
        response = api.client.post(
            "/v1/conversations", json={"agent_id": agent_id}, headers=api.headers()
        )
        assert response.status_code == 201, response.text
        self.id: str = response.json()["id"]

    def say(self, text: str, status: int = 200) -> None:
        response = self.api.client.post(
            f"/v1/conversations/{self.id}/messages", json={"text": text}, headers=self.api.headers()
        )
        assert response.status_code == status, response.text

    def send(self, good: int = 0, bad: int = 0) -> None:
        for _ in range(good):
            self.say("hello")
        for _ in range(bad):
            self.say("please fail", 503)
