"""The server commands' pieces that need no running server: the jobs hook, the URL shown,
what is printed about the owner key, and the quickstart's sequence of steps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from deputy.cli import quickstart, server
from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.services.workspaces import Bootstrap


def _created() -> r.CreatedWorkspace:
    now = datetime.now(UTC)
    workspace = r.Workspace(id="ws_1", name="Default workspace", created_at=now)
    owner = r.Member(
        id="mem_1",
        workspace_id="ws_1",
        email="o@example.com",
        name="O",
        role="owner",
        created_at=now,
    )
    key = r.ApiKeyInfo(
        id="key_1",
        workspace_id="ws_1",
        kind="member",
        name="owner key",
        member_id="mem_1",
        agent_id=None,
        scopes=["workspace:read"],
        created_at=now,
        last_used_at=None,
        expires_at=None,
        revoked_at=None,
    )
    return r.CreatedWorkspace(
        workspace=workspace,
        owner=owner,
        owner_key=r.CreatedApiKey(key=key, secret="dpy_key_1_secret"),
    )


def test_jobs_can_be_left_to_separate_workers(tmp_path: Path) -> None:
    from deputy.services.platform import Platform

    platform = Platform.open(load_settings(jobs_enabled=False, data_dir=tmp_path / "d"))
    try:
        assert server.build_jobs(platform) is None
    finally:
        platform.close()


@pytest.mark.parametrize(
    ("overrides", "url"),
    [
        ({}, "http://127.0.0.1:8750"),
        ({"host": "0.0.0.0", "port": 9000}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"host": "::1"}, "http://[::1]:8750"),
        ({"public_url": "https://deputy.example.com/"}, "https://deputy.example.com"),
    ],
)
def test_public_url(overrides: dict[str, object], url: str) -> None:
    assert server.public_url(load_settings(**overrides)) == url


def test_first_start_prints_the_owner_key_and_how_to_log_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.print_bootstrap(Bootstrap(created=_created()), "http://127.0.0.1:8750")
    printed = capsys.readouterr().out
    assert "dpy_key_1_secret" in printed
    assert "will NOT be shown again" in printed
    assert "deputy login --url http://127.0.0.1:8750 --key dpy_key_1_secret" in printed


def test_later_starts_say_where_the_key_went(capsys: pytest.CaptureFixture[str]) -> None:
    server.print_bootstrap(Bootstrap(created=None), "http://127.0.0.1:8750")
    printed = capsys.readouterr().out
    assert "shown on first start" in printed
    assert "deputy keys create" in printed
    assert "dpy_" not in printed


def test_quickstart_is_a_sequence_of_named_steps() -> None:
    titles = [title for title, _ in quickstart.QUICKSTART_STEPS]
    assert titles[0].startswith("Prepare") and "Start the API server" in titles
    assert all(callable(step) for _, step in quickstart.QUICKSTART_STEPS)


def test_invalid_configuration_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPUTY_ENVIRONMENT", "production")  # without a secret key
    with pytest.raises(typer.Exit) as caught:
        server.load_server_settings(None, None)
    assert caught.value.exit_code == 2
