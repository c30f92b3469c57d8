"""`deputy tools`: tool sources (OpenAPI documents, MCP servers, webhook credentials), their
operations, AgentSpec tool entries generated from them, and an agent's recorded tool calls.

Secrets are never given on the command line (shell history, `ps`): options name the environment
variable that holds them (`--api-key-env SHOP_KEY`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from deputy.cli import listing
from deputy.cli.output import EXIT_USAGE, AsJson, Column, fail, out, print_fields, print_json, when
from deputy.cli.output import print_page as print_listing
from deputy.cli.state import client
from deputy.domain.resources import ToolCallInfo, ToolSource
from deputy.sdk import DeputyClient

tools_app = typer.Typer(
    help="Tools: sources (OpenAPI, MCP, webhooks), their operations, recorded calls.",
    no_args_is_help=True,
)
sources_app = typer.Typer(help="The workspace's tool sources.", no_args_is_help=True)
tools_app.add_typer(sources_app, name="sources")

SourceArg = Annotated[str, typer.Argument(metavar="SOURCE", help="The source's id or name.")]
AuthKind = Annotated[
    str | None,
    typer.Option("--auth", help="none | api_key | bearer | oauth2 (default: from the options)."),
]
ApiKeyEnv = Annotated[
    str | None, typer.Option("--api-key-env", help="Env variable holding the API key.")
]
ApiKeyName = Annotated[
    str, typer.Option("--api-key-name", help="Header or query parameter of the API key.")
]
ApiKeyIn = Annotated[str, typer.Option("--api-key-in", help="header | query")]
BearerEnv = Annotated[
    str | None, typer.Option("--bearer-env", help="Env variable holding the bearer token.")
]
OAuth2 = Annotated[bool, typer.Option("--oauth2", help="OAuth2 client credentials.")]
TokenUrl = Annotated[str | None, typer.Option("--token-url", help="OAuth2 token endpoint.")]
ClientId = Annotated[str | None, typer.Option("--client-id", help="OAuth2 client id.")]
ClientSecretEnv = Annotated[
    str | None,
    typer.Option("--client-secret-env", help="Env variable holding the OAuth2 client secret."),
]
Scopes = Annotated[list[str] | None, typer.Option("--scope", help="OAuth2 scope (repeatable).")]
Honours = Annotated[
    bool | None,
    typer.Option(
        "--honours-idempotency-keys/--no-idempotency-keys",
        help="Whether the API deduplicates requests by Idempotency-Key (default: the document's "
        "x-idempotency).",
    ),
]
Description = Annotated[str | None, typer.Option("--description", help="What the source is.")]

SOURCE_COLUMNS: list[Column[ToolSource]] = [
    ("ID", lambda s: s.id),
    ("NAME", lambda s: s.name),
    ("KIND", lambda s: s.kind),
    ("AUTH", lambda s: s.auth.type if s.auth.configured else "none"),
    ("BASE URL", lambda s: s.base_url or "-"),
    ("UPDATED", lambda s: when(s.updated_at)),
]
CALL_COLUMNS: list[Column[ToolCallInfo]] = [
    ("ID", lambda c: c.id),
    ("CONVERSATION", lambda c: c.conversation_id),
    ("STEP", lambda c: c.step_key),
    ("TOOL", lambda c: c.tool),
    ("STATUS", lambda c: c.status + (f" ({c.code})" if c.code else "")),
    ("ATTEMPTS", lambda c: str(c.attempts)),
    ("MS", lambda c: "-" if c.duration_ms is None else str(c.duration_ms)),
    ("STARTED", lambda c: when(c.started_at)),
]


def _secret(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise fail(f"the environment variable {variable} is not set", EXIT_USAGE)
    return value


def auth_options(
    kind: str | None,
    api_key_env: str | None,
    api_key_name: str,
    api_key_in: str,
    bearer_env: str | None,
    oauth2: bool,
    token_url: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    scopes: list[str] | None,
) -> dict[str, Any] | None:
    """The `auth` object from the options (None: none given)."""
    chosen = [
        name
        for name, given in (("api_key", api_key_env), ("bearer", bearer_env), ("oauth2", oauth2))
        if given
    ]
    if len(chosen) > 1:
        raise fail(f"choose one kind of credentials, not {' and '.join(chosen)}", EXIT_USAGE)
    inferred = chosen[0] if chosen else None
    kind = kind or inferred
    if kind is not None and inferred is not None and kind != inferred:
        raise fail(f"--auth {kind} does not match the options given ({inferred})", EXIT_USAGE)
    if kind is None:
        return None
    if kind == "none":
        return {"type": "none"}
    if kind == "api_key":
        if not api_key_env:
            raise fail("--auth api_key needs --api-key-env VAR", EXIT_USAGE)
        if api_key_in not in ("header", "query"):
            raise fail("--api-key-in is header or query", EXIT_USAGE)
        value = _secret(api_key_env)
        return {"type": "api_key", "name": api_key_name, "location": api_key_in, "value": value}
    if kind == "bearer":
        if not bearer_env:
            raise fail("--auth bearer needs --bearer-env VAR", EXIT_USAGE)
        return {"type": "bearer", "token": _secret(bearer_env)}
    if kind == "oauth2":
        if not (token_url and client_id and client_secret_env):
            raise fail(
                "--oauth2 needs --token-url, --client-id and --client-secret-env", EXIT_USAGE
            )
        return {
            "type": "oauth2_client_credentials",
            "token_url": token_url,
            "client_id": client_id,
            "client_secret": _secret(client_secret_env),
            "scopes": list(scopes or []),
        }
    raise fail(f"unknown --auth {kind!r}: none, api_key, bearer or oauth2", EXIT_USAGE)


def read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise fail(f"cannot read an OpenAPI document from {path}: {exc}", EXIT_USAGE) from exc
    if not isinstance(document, dict):
        raise fail(f"{path} must hold an OpenAPI document (a mapping)", EXIT_USAGE)
    return document


def resolve_source(sdk: DeputyClient, source: str) -> str:
    """A source id from an id or a name."""
    if source.startswith("tsrc_"):
        return source
    for item in sdk.tool_sources.iter_all():
        if item.name == source:
            return item.id
    raise fail(f"no tool source named {source!r}", 4)


def show_source(source: ToolSource, as_json: bool) -> None:
    if as_json:
        print_json(source)
        return
    print_fields(source, as_json=False, skip=("config", "auth"))
    configured = "configured" if source.auth.configured else "not configured"
    out().print(f"auth        {source.auth.type} ({configured})", markup=False)
    out().print(yaml.safe_dump(source.config, sort_keys=False).rstrip(), markup=False)


@sources_app.command("add-openapi")
def add_openapi(
    ctx: typer.Context,
    document: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="The OpenAPI document (JSON or YAML).", exists=True),
    ],
    name: Annotated[str, typer.Option("--name", help="snake_case name the spec binds.")],
    base_url: Annotated[str, typer.Option("--base-url", help="Where the API is called.")],
    auth: AuthKind = None,
    api_key_env: ApiKeyEnv = None,
    api_key_name: ApiKeyName = "X-API-Key",
    api_key_in: ApiKeyIn = "header",
    bearer_env: BearerEnv = None,
    oauth2: OAuth2 = False,
    token_url: TokenUrl = None,
    client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None,
    scope: Scopes = None,
    honours: Honours = None,
    description: Description = None,
    as_json: AsJson = False,
) -> None:
    """Register an OpenAPI document as a tool source."""
    credentials = auth_options(
        auth, api_key_env, api_key_name, api_key_in, bearer_env, oauth2, token_url, client_id,
        client_secret_env, scope,
    )  # fmt: skip
    source = client(ctx).tool_sources.create(
        name,
        "openapi",
        document=read_document(document),
        base_url=base_url,
        auth=credentials,
        honours_idempotency_keys=honours,
        description=description,
    )
    show_source(source, as_json)


@sources_app.command("add-mcp")
def add_mcp(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="snake_case name the spec binds.")],
    command: Annotated[
        str | None, typer.Option("--command", help="stdio: the server command (operator-allowed).")
    ] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="stdio: an argument.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="stdio: NAME=VALUE.")] = None,
    secret_env: Annotated[
        list[str] | None,
        typer.Option("--secret-env", help="stdio: NAME=VAR, the value read from $VAR."),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="http: the server's URL.")] = None,
    header_env: Annotated[
        list[str] | None,
        typer.Option("--header-env", help="http: Header=VAR, the value read from $VAR."),
    ] = None,
    bearer_env: BearerEnv = None,
    honours: Honours = None,
    description: Description = None,
    as_json: AsJson = False,
) -> None:
    """Register an MCP server (stdio or HTTP) as a tool source."""
    if (command is None) == (url is None):
        raise fail("give --command (stdio) or --url (http), one of them", EXIT_USAGE)

    def pairs(items: list[str] | None, secret: bool) -> dict[str, str]:
        found: dict[str, str] = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise fail(f"{item!r} is not NAME=VALUE", EXIT_USAGE)
            found[key] = _secret(value) if secret else value
        return found

    server: dict[str, Any]
    if command is not None:
        server = {"type": "stdio", "command": command, "args": list(arg or [])}
        server |= {"env": pairs(env, False), "secret_env": pairs(secret_env, True)}
    else:
        server = {"type": "http", "url": url, "headers": pairs(header_env, True)}
    credentials = {"type": "bearer", "token": _secret(bearer_env)} if bearer_env else None
    source = client(ctx).tool_sources.create(
        name,
        "mcp",
        mcp=server,
        auth=credentials,
        honours_idempotency_keys=honours,
        description=description,
    )
    show_source(source, as_json)


@sources_app.command("list")
def list_sources(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's tool sources."""
    api = client(ctx).tool_sources
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_listing(page, SOURCE_COLUMNS, as_json=as_json, noun="tool sources")


@sources_app.command("show")
def show(ctx: typer.Context, source: SourceArg, as_json: AsJson = False) -> None:
    """Show one source (its credentials only as type and whether they are set)."""
    sdk = client(ctx)
    show_source(sdk.tool_sources.get(resolve_source(sdk, source)), as_json)


@sources_app.command("rotate")
def rotate(
    ctx: typer.Context,
    source: SourceArg,
    auth: AuthKind = None,
    api_key_env: ApiKeyEnv = None,
    api_key_name: ApiKeyName = "X-API-Key",
    api_key_in: ApiKeyIn = "header",
    bearer_env: BearerEnv = None,
    oauth2: OAuth2 = False,
    token_url: TokenUrl = None,
    client_id: ClientId = None,
    client_secret_env: ClientSecretEnv = None,
    scope: Scopes = None,
    as_json: AsJson = False,
) -> None:
    """Replace a source's credentials."""
    credentials = auth_options(
        auth, api_key_env, api_key_name, api_key_in, bearer_env, oauth2, token_url, client_id,
        client_secret_env, scope,
    )  # fmt: skip
    if credentials is None:
        raise fail("give the new credentials (--api-key-env, --bearer-env, --oauth2 ...)", 2)
    sdk = client(ctx)
    show_source(sdk.tool_sources.update(resolve_source(sdk, source), auth=credentials), as_json)


@sources_app.command("delete")
def delete(ctx: typer.Context, source: SourceArg) -> None:
    """Delete a source (specs binding it can no longer call its tools)."""
    sdk = client(ctx)
    source_id = resolve_source(sdk, source)
    sdk.tool_sources.delete(source_id)
    out().print(f"Deleted tool source {source_id}.", markup=False)


@tools_app.command("operations")
def operations(ctx: typer.Context, source: SourceArg, as_json: AsJson = False) -> None:
    """The operations a source offers: name, effect, description."""
    sdk = client(ctx)
    found = sdk.tool_sources.operations(resolve_source(sdk, source))
    if as_json:
        print_json(found)
        return
    for op in found.operations:
        line = op.description.strip().splitlines()[0] if op.description.strip() else ""
        out().print(f"{op.operation:<40} {op.effect:<13} {line}", markup=False)
    for skipped in found.skipped:
        out().print(f"skipped {skipped.method} {skipped.path}: {skipped.reason}", markup=False)


@tools_app.command("spec")
def spec(
    ctx: typer.Context,
    source: SourceArg,
    ops: Annotated[
        list[str] | None, typer.Argument(metavar="[OPS...]", help="Operations (default: all).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Print AgentSpec `tools` entries (YAML) for a source's operations, ready to paste."""
    sdk = client(ctx)
    result = sdk.tool_sources.spec_tools(resolve_source(sdk, source), ops or None)
    # Defaults left out, except the binding's `kind` (its discriminator). `effect` has no
    # default, so it is always shown: a reviewer confirms it.
    entries = [
        {
            **tool.model_dump(mode="json", exclude_defaults=True),
            "binding": tool.binding.model_dump(mode="json", exclude_none=True),
        }
        for tool in result.tools
    ]
    if as_json:
        print_json(entries)
        return
    typer.echo(yaml.safe_dump({"tools": entries}, sort_keys=False, allow_unicode=True), nl=False)


@tools_app.command("calls")
def calls(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(metavar="AGENT_ID", help="The agent (agt_…).")],
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Only this conversation's calls.")
    ] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """An agent's recorded tool calls, newest first."""
    api = client(ctx).tool_calls
    page = listing.fetch(
        lambda n, c: api.list(agent_id, conversation_id=conversation, limit=n, cursor=c),
        limit,
        cursor,
        all_pages,
    )
    print_listing(page, CALL_COLUMNS, as_json=as_json, noun="tool calls")
