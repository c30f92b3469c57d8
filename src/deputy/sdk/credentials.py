"""Where a client finds its server and key: explicit arguments, then the `DEPUTY_URL` /
`DEPUTY_API_KEY` environment variables, then the file `deputy login` writes
(`$XDG_CONFIG_HOME/deputy/credentials.json`, mode 0600)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deputy.sdk.errors import MissingCredentials

DEFAULT_URL = "http://127.0.0.1:8750"
URL_ENV = "DEPUTY_URL"
KEY_ENV = "DEPUTY_API_KEY"

Source = Literal["argument", "environment", "credentials file", "default"]


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str


@dataclass(frozen=True)
class ResolvedCredentials:
    url: str
    api_key: str
    url_source: Source
    key_source: Source


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "deputy"


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "credentials.json"


def load_credentials(path: Path | None = None) -> Credentials | None:
    """The saved login, or None when there is none (or it is unreadable)."""
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, key = data.get("url"), data.get("api_key")
    if not isinstance(url, str) or not isinstance(key, str) or not url or not key:
        return None
    return Credentials(url=url, api_key=key)


def save_credentials(credentials: Credentials, path: Path | None = None) -> Path:
    """Write the login atomically, readable by its owner only (0600, directory 0700)."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = json.dumps({"url": credentials.url, "api_key": credentials.api_key}, indent=2) + "\n"
    fd, temp_name = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    return path


def delete_credentials(path: Path | None = None) -> bool:
    """Forget the saved login; False when there was none."""
    path = path or credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def normalize_url(url: str) -> str:
    """`http://host:8750/`, `http://host:8750/v1` → `http://host:8750`."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url


def resolve_credentials(
    url: str | None = None,
    api_key: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
    require_key: bool = True,
) -> ResolvedCredentials:
    """Pick the server and key: arguments, then environment, then the saved login."""
    env = os.environ if env is None else env
    # Read the saved login only when an argument or the environment leaves something open.
    needs_saved = not (url or env.get(URL_ENV)) or not (api_key or env.get(KEY_ENV))
    saved = load_credentials(path or credentials_path(env)) if needs_saved else None
    url_source: Source
    key_source: Source
    if url:
        url_source = "argument"
    elif env.get(URL_ENV):
        url, url_source = env[URL_ENV], "environment"
    elif saved is not None:
        url, url_source = saved.url, "credentials file"
    else:
        url, url_source = DEFAULT_URL, "default"
    if api_key:
        key_source = "argument"
    elif env.get(KEY_ENV):
        api_key, key_source = env[KEY_ENV], "environment"
    elif saved is not None and normalize_url(saved.url) == normalize_url(url):
        # A saved key is only sent to the server it was saved for.
        api_key, key_source = saved.api_key, "credentials file"
    else:
        api_key, key_source = "", "default"
    if require_key and not api_key:
        raise MissingCredentials(
            f"no API key: pass one, set {KEY_ENV}, or run `deputy login --url URL --key KEY`"
        )
    return ResolvedCredentials(
        url=normalize_url(url), api_key=api_key, url_source=url_source, key_source=key_source
    )
