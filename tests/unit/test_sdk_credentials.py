"""Where clients find their server and key: arguments, environment, then the saved login."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from deputy.domain.errors import Unauthenticated
from deputy.sdk import AsyncDeputyClient, DeputyClient, MissingCredentials
from deputy.sdk.credentials import (
    DEFAULT_URL,
    Credentials,
    credentials_path,
    delete_credentials,
    load_credentials,
    normalize_url,
    resolve_credentials,
    save_credentials,
)


@pytest.fixture(autouse=True)
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_saved_login_is_private_and_round_trips(config_home: Path) -> None:
    path = save_credentials(Credentials(url="http://deputy.example:8750", api_key="dpy_secret"))
    assert path == config_home / "deputy" / "credentials.json" == credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_credentials() == Credentials(url="http://deputy.example:8750", api_key="dpy_secret")
    save_credentials(Credentials(url="http://other:1", api_key="dpy_new"))  # replaced in place
    assert load_credentials() == Credentials(url="http://other:1", api_key="dpy_new")
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
    assert delete_credentials() is True
    assert load_credentials() is None
    assert delete_credentials() is False


def test_an_unreadable_login_file_counts_as_none(config_home: Path) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert load_credentials() is None
    path.write_text('{"url": "http://x"}')
    assert load_credentials() is None


def test_arguments_then_environment_then_saved_login(monkeypatch: pytest.MonkeyPatch) -> None:
    save_credentials(Credentials(url="http://saved:8750", api_key="dpy_saved"))
    resolved = resolve_credentials()
    assert (resolved.url, resolved.api_key) == ("http://saved:8750", "dpy_saved")
    assert (resolved.url_source, resolved.key_source) == ("credentials file", "credentials file")

    monkeypatch.setenv("DEPUTY_URL", "http://env:9000/")
    monkeypatch.setenv("DEPUTY_API_KEY", "dpy_env")
    resolved = resolve_credentials()
    assert (resolved.url, resolved.api_key, resolved.key_source) == (
        "http://env:9000",
        "dpy_env",
        "environment",
    )

    resolved = resolve_credentials("http://arg:1/v1", "dpy_arg")
    assert (resolved.url, resolved.api_key, resolved.url_source) == (
        "http://arg:1",
        "dpy_arg",
        "argument",
    )


def test_a_saved_key_is_only_sent_to_its_own_server() -> None:
    save_credentials(Credentials(url="http://saved:8750", api_key="dpy_saved"))
    with pytest.raises(MissingCredentials):
        resolve_credentials("http://elsewhere:8750")
    assert resolve_credentials("http://saved:8750/").api_key == "dpy_saved"


def test_no_key_anywhere_is_an_authentication_error() -> None:
    with pytest.raises(Unauthenticated, match="deputy login"):
        DeputyClient()
    with pytest.raises(MissingCredentials):
        AsyncDeputyClient()
    anonymous = DeputyClient(require_key=False)
    assert anonymous.base_url == DEFAULT_URL
    anonymous.close()


def test_client_from_env_sends_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPUTY_URL", "http://env-server:8750")
    monkeypatch.setenv("DEPUTY_API_KEY", "dpy_from_env")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with DeputyClient.from_env(transport=httpx.MockTransport(handler)) as client:
        assert client.health().status == "ok"
    assert str(seen[0].url) == "http://env-server:8750/healthz"
    assert seen[0].headers["Authorization"] == "Bearer dpy_from_env"
    assert seen[0].headers["User-Agent"].startswith("deputy-sdk/")


@pytest.mark.parametrize(
    ("given", "normal"),
    [("http://h:1/", "http://h:1"), ("https://h/v1", "https://h"), ("h:8750", "http://h:8750")],
)
def test_normalize_url(given: str, normal: str) -> None:
    assert normalize_url(given) == normal
