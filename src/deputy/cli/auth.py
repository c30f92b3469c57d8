"""`deputy login`, `logout` and `whoami`: the saved login every other command uses."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

import typer

from deputy.cli.output import AsJson, err, out, print_json
from deputy.cli.state import state
from deputy.domain.resources import ApiKeyInfo
from deputy.sdk.credentials import (
    DEFAULT_URL,
    KEY_ENV,
    URL_ENV,
    Credentials,
    credentials_path,
    delete_credentials,
    normalize_url,
    resolve_credentials,
    save_credentials,
)
from deputy.sdk.errors import NotFoundError, PermissionDeniedError

# `dpy_<key id>_<secret>`; the key id is `key_` and 26 Crockford base32 characters.
_TOKEN = re.compile(r"^dpy_(key_[0-9A-HJKMNP-TV-Z]{26})_")


def key_id_of(api_key: str) -> str | None:
    match = _TOKEN.match(api_key)
    return match.group(1) if match else None


def login(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help=f"The server (default: ${URL_ENV} or {DEFAULT_URL})."),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="The API key (asked for, hidden, when omitted).")
    ] = None,
) -> None:
    """Check an API key against the server and save both for later commands."""
    cli = state(ctx)
    server = normalize_url(url or cli.url or os.environ.get(URL_ENV) or DEFAULT_URL)
    secret = key or typer.prompt("API key", hide_input=True)
    with cli.client(url=server, api_key=secret) as client:
        workspace = client.workspace.get()
    path = save_credentials(Credentials(url=server, api_key=secret))
    out().print(
        f"Logged in to {server}: workspace {workspace.name!r} ({workspace.id}).", markup=False
    )
    out().print(f"Credentials saved to {path} (readable by you only).", markup=False)
    for name in (URL_ENV, KEY_ENV):
        if os.environ.get(name):
            err().print(
                f"note: {name} is set and takes precedence over the saved login.",
                markup=False,
                style="yellow",
            )


def logout() -> None:
    """Forget the saved login (the key itself stays valid; revoke it with `deputy keys revoke`)."""
    path = credentials_path()
    if delete_credentials(path):
        out().print(f"Logged out: removed {path}.", markup=False)
    else:
        out().print("Not logged in: nothing to remove.", markup=False)


def whoami(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Which server, workspace and key the CLI acts as."""
    cli = state(ctx)
    resolved = resolve_credentials(cli.url, cli.api_key)
    with cli.client(url=resolved.url, api_key=resolved.api_key) as client:
        workspace = client.workspace.get()
        key_info: ApiKeyInfo | None = None
        key_id = key_id_of(resolved.api_key)
        if key_id is not None:
            try:
                key_info = client.keys.get(key_id)
            except (PermissionDeniedError, NotFoundError):
                key_info = None  # a key without keys:read can still say where it belongs
    if as_json:
        payload: dict[str, Any] = {
            "url": resolved.url,
            "url_source": resolved.url_source,
            "key_source": resolved.key_source,
            "workspace": workspace,
            "key": key_info,
            "key_id": key_id,
        }
        print_json(payload)
        return
    console = out()
    console.print(f"server:     {resolved.url}  (from {resolved.url_source})", markup=False)
    console.print(f"workspace:  {workspace.name} ({workspace.id})", markup=False)
    if key_info is not None:
        console.print(
            f"key:        {key_info.name} ({key_info.id}, {key_info.kind} key, "
            f"from {resolved.key_source})",
            markup=False,
        )
        console.print(f"scopes:     {', '.join(key_info.scopes) or '-'}", markup=False)
    else:
        console.print(
            f"key:        {key_id or 'unknown id'} (from {resolved.key_source})", markup=False
        )
