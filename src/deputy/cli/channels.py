"""`deputy channels`: connect an agent to a mailbox, a Slack app, a Telegram bot, a WhatsApp
number or a Twilio number (SMS or voice); list, show, update and remove connections.

Settings come from `--config FILE` (JSON or YAML) and/or `--set KEY=VALUE` (a JSON value, else
text). Secrets come from `--secret NAME=VALUE`, `--secret NAME=@FILE` (the file's content),
`--secret NAME=env:VAR`, or `--secret NAME` alone (the `DEPUTY_SECRET_<NAME>` variable, else a
hidden prompt). Secrets are never printed: a connection shows only which are set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
import yaml

from deputy.cli.output import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_fields,
    print_page,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.channels import ChannelConnection, ChannelKind
from deputy.domain.ids import is_id
from deputy.sdk import DeputyClient

channels_app = typer.Typer(
    help="Connect agents to email, Slack, Telegram, WhatsApp, SMS and phone numbers.",
    no_args_is_help=True,
)

KINDS = get_args(ChannelKind)
SECRET_ENV_PREFIX = "DEPUTY_SECRET_"  # noqa: S105 - a variable name prefix, not a secret

Agent = Annotated[str, typer.Argument(metavar="AGENT", help="The agent: its name or id.")]
Connection = Annotated[
    str, typer.Argument(metavar="CONNECTION", help="The connection: its name or id (chn_…).")
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", exists=True, dir_okay=False, help="Settings as a JSON or YAML file."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="One setting (repeatable); JSON or text."),
]
Secrets = Annotated[
    list[str] | None,
    typer.Option(
        "--secret",
        metavar="NAME[=VALUE|=@FILE|=env:VAR]",
        help="One secret (repeatable). NAME alone: $DEPUTY_SECRET_<NAME>, else a prompt.",
    ),
]

COLUMNS: list[Column[ChannelConnection]] = [
    ("ID", lambda c: c.id),
    ("NAME", lambda c: c.name),
    ("KIND", lambda c: c.kind),
    ("AGENT", lambda c: c.agent_id),
    ("ENABLED", lambda c: "yes" if c.enabled else "no"),
    ("SECRETS", lambda c: ", ".join(c.secrets_set) or "-"),
    ("INBOUND", lambda c: c.inbound_path),
    ("UPDATED", lambda c: when(c.updated_at)),
]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pair(item: str, option: str) -> tuple[str, str | None]:
    name, equals, value = item.partition("=")
    name = name.strip()
    if not name:
        raise fail(f"{option} needs NAME=VALUE, got {item!r}", EXIT_USAGE)
    return name, value if equals else None


def read_config(path: Path | None, sets: list[str] | None, base: dict[str, Any]) -> dict[str, Any]:
    """`base`, then the file's settings, then each `--set`."""
    config = dict(base)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise fail(f"cannot read {path}: {exc}", EXIT_USAGE) from None
        if not isinstance(loaded, dict):
            raise fail(f"{path} must hold a mapping of settings", EXIT_USAGE)
        config.update(loaded)
    for item in sets or []:
        key, value = _pair(item, "--set")
        if value is None:
            raise fail(f"--set needs KEY=VALUE, got {item!r}", EXIT_USAGE)
        config[key] = _value(value)
    return config


def _secret(name: str, value: str | None) -> str:
    if value is None:
        env = os.environ.get(SECRET_ENV_PREFIX + name.upper())
        if env is not None:
            return env
        prompted: str = typer.prompt(f"{name}", hide_input=True)
        return prompted
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read the secret {name} from {path}: {exc}", EXIT_USAGE) from None
    if value.startswith("env:"):
        variable = value[4:]
        if variable not in os.environ:
            raise fail(f"the secret {name}: ${variable} is not set", EXIT_USAGE)
        return os.environ[variable]
    return value


def read_secrets(items: list[str] | None, removed: list[str] | None = None) -> dict[str, str]:
    """The secrets given (never echoed); each removed one as an empty string."""
    secrets: dict[str, str] = {}
    for item in items or []:
        name, value = _pair(item, "--secret")
        secrets[name] = _secret(name, value)
    for name in removed or []:
        secrets[name] = ""
    return secrets


def connection_id_of(sdk: DeputyClient, connection: str) -> str:
    """A connection id as given, or the id of the connection named `connection`."""
    if is_id(connection, "chn"):
        return connection
    for found in sdk.channels.iter_all():
        if found.name == connection:
            return found.id
    raise fail(f"no channel connection is named {connection!r}", EXIT_NOT_FOUND)


def _print(sdk: DeputyClient, connection: ChannelConnection, as_json: bool) -> None:
    print_fields(connection, as_json=as_json, title=f"Channel connection {connection.name}")
    if not as_json:
        where = f"{sdk.base_url.rstrip('/')}{connection.inbound_path}"
        out().print(f"Its platform posts to {where} (behind your public URL).", markup=False)


@channels_app.command("add")
def add(
    ctx: typer.Context,
    agent: Agent,
    kind: Annotated[str, typer.Argument(metavar="KIND", help=f"One of: {', '.join(KINDS)}.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the connection.")],
    config: ConfigFile = None,
    sets: Sets = None,
    secrets: Secrets = None,
    as_json: AsJson = False,
) -> None:
    """Connect an agent to a channel account."""
    if kind not in KINDS:
        raise fail(f"unknown kind {kind!r}: one of {', '.join(KINDS)}", EXIT_USAGE)
    settings = read_config(config, sets, {})
    given = read_secrets(secrets)
    sdk = client(ctx)
    created = sdk.channels.create(
        agent_id_of(sdk, agent),
        kind,  # type: ignore[arg-type]  # checked against KINDS above
        name,
        settings,
        secrets=given,
    )
    _print(sdk, created, as_json)


@channels_app.command("list")
def list_connections(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's only.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor")] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace's channel connections."""
    sdk = client(ctx)
    agent_id = agent_id_of(sdk, agent) if agent else None
    page = sdk.channels.list(agent_id=agent_id, limit=limit, cursor=cursor)
    print_page(page, COLUMNS, as_json=as_json, noun="channel connections")


@channels_app.command("show")
def show(ctx: typer.Context, connection: Connection, as_json: AsJson = False) -> None:
    """One connection: its settings, which secrets are set, where its platform posts."""
    sdk = client(ctx)
    _print(sdk, sdk.channels.get(connection_id_of(sdk, connection)), as_json)


@channels_app.command("update")
def update(
    ctx: typer.Context,
    connection: Connection,
    config: ConfigFile = None,
    sets: Sets = None,
    secrets: Secrets = None,
    remove_secret: Annotated[
        list[str] | None, typer.Option("--remove-secret", metavar="NAME", help="Unset a secret.")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Take or refuse deliveries.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change settings (`--set` changes one, keeping the others; `--config` replaces them),
    set or remove secrets, enable or disable."""
    sdk = client(ctx)
    connection_id = connection_id_of(sdk, connection)
    new_config = None
    if config is not None or sets:
        base = {} if config is not None else dict(sdk.channels.get(connection_id).config)
        new_config = read_config(config, sets, base)
    given = read_secrets(secrets, remove_secret)
    if new_config is None and not given and enabled is None:
        raise fail("nothing to change: give --config, --set, --secret or --enable", EXIT_USAGE)
    updated = sdk.channels.update(connection_id, config=new_config, secrets=given, enabled=enabled)
    _print(sdk, updated, as_json)


@channels_app.command("remove")
def remove(
    ctx: typer.Context,
    connection: Connection,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a connection (its conversations stay)."""
    sdk = client(ctx)
    connection_id = connection_id_of(sdk, connection)
    if not yes:
        typer.confirm(f"Remove channel connection {connection}?", abort=True)
    sdk.channels.delete(connection_id)
    out().print(f"Removed {connection_id}.", markup=False)
