"""The quickstart's web chat: after deploying, it makes a widget key (only `widget:sessions`)
and prints the chat page and the script tag, after the owner key (which scripts read first)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from deputy.cli import quickstart
from deputy.config import load_settings
from deputy.services.workspaces import Bootstrap
from tests.unit.test_cli_server import _created

URL = "http://127.0.0.1:8750"
AGENT = "agt_01J00000000000000000000000"


class FakeClient:
    """What `_deploy` asks of the API."""

    def __init__(self) -> None:
        self.keys_made: list[dict[str, Any]] = []
        self.deployments = SimpleNamespace(deploy=self._deploy)
        self.keys = SimpleNamespace(create=self._create_key)

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def _deploy(self, agent_id: str, version: int, *, proposal_id: str) -> Any:
        return SimpleNamespace(live_version=version, channel="all", id="dep_1")

    def _create_key(self, name: str, **fields: Any) -> Any:
        self.keys_made.append({"name": name, **fields})
        return SimpleNamespace(secret="dpy_key_2_widgetsecret")


def test_deploying_makes_a_widget_key_and_the_chat_is_printed_after_the_owner_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient()
    run = quickstart.QuickstartRun(settings=load_settings(), url=URL, approve=True)
    run.agent_id, run.version, run.proposal_id = AGENT, 1, "prp_1"
    monkeypatch.setattr(quickstart.QuickstartRun, "client", lambda _self: fake)
    quickstart._deploy(run)
    assert fake.keys_made == [
        {
            "name": "web chat widget",
            "kind": "channel",
            "agent_id": AGENT,
            "scopes": ["widget:sessions"],
        }
    ]
    run.bootstrap = Bootstrap(created=_created())
    quickstart.print_access(run)
    printed = capsys.readouterr().out
    assert f"{URL}/chat/{AGENT}#key=dpy_key_2_widgetsecret" in printed
    tag = f'<script src="{URL}/widget.js" data-agent="{AGENT}" data-key="dpy_key_2_widgetsecret">'
    assert tag in printed
    assert printed.index("dpy_key_1_secret") < printed.index("dpy_key_2_widgetsecret")


def test_without_a_deployment_no_chat_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    run = quickstart.QuickstartRun(settings=load_settings(), url=URL)
    run.bootstrap = Bootstrap(created=None)
    quickstart.print_access(run)
    printed = capsys.readouterr().out
    assert "/chat/" not in printed and "widget.js" not in printed
