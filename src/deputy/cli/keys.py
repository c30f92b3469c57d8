"""`deputy keys`: create, list, show and revoke API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, cast

import typer

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    print_secret,
    when,
)
from deputy.cli.state import client
from deputy.domain.resources import ApiKeyInfo
from deputy.domain.tenancy import ALL_SCOPES, KeyKind, Scope

keys_app = typer.Typer(help="API keys: for members, services and channels.", no_args_is_help=True)


def status(key: ApiKeyInfo) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


KEY_COLUMNS: list[Column[ApiKeyInfo]] = [
    ("ID", lambda k: k.id),
    ("NAME", lambda k: k.name),
    ("KIND", lambda k: k.kind),
    ("FOR", lambda k: k.member_id or k.agent_id or "-"),
    ("STATUS", status),
    ("LAST USED", lambda k: when(k.last_used_at)),
    ("CREATED", lambda k: when(k.created_at)),
]


def parse_expiry(value: str | None) -> datetime | None:
    """An ISO 8601 time; without a zone it is taken as local time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(
            f"--expires-at {value!r} is not an ISO 8601 time (e.g. 2030-01-31T18:00:00+00:00)",
            EXIT_USAGE,
        ) from exc
    return moment if moment.tzinfo is not None else moment.astimezone()


def check_scopes(values: list[str] | None) -> list[str] | None:
    unknown = sorted(set(values or ()) - ALL_SCOPES)
    if unknown:
        raise typer.BadParameter(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(ALL_SCOPES))}"
        )
    return values


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is for.")],
    kind: Annotated[KeyKind, typer.Option("--kind", help="member, service or channel.")] = "member",
    member_id: Annotated[
        str | None, typer.Option("--member-id", help="Member keys: whose (default: yours).")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option("--agent-id", help="Channel keys: the agent it talks to.")
    ] = None,
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="Limit the key to this scope (repeat for more; default: all allowed).",
            callback=check_scopes,
        ),
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="When the key stops working (ISO 8601).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key. Its secret is printed once."""
    created = client(ctx).keys.create(
        name,
        kind=kind,
        member_id=member_id,
        agent_id=agent_id,
        scopes=[cast(Scope, s) for s in scopes] if scopes else None,
        expires_at=parse_expiry(expires_at),
    )
    if as_json:
        print_json(created)
        return
    out().print(
        f"Created {created.key.kind} key {created.key.name!r} ({created.key.id}).", markup=False
    )
    print_secret("Its secret", created.secret)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's keys (never their secrets)."""
    api = client(ctx).keys
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_page(page, KEY_COLUMNS, as_json=as_json, noun="keys")


@keys_app.command("show")
def show_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_…).")],
    as_json: AsJson = False,
) -> None:
    """Show one key."""
    print_fields(client(ctx).keys.get(key_id), as_json=as_json)


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_…).")],
    as_json: AsJson = False,
) -> None:
    """Revoke a key at once."""
    key = client(ctx).keys.revoke(key_id)
    if as_json:
        print_json(key)
        return
    out().print(f"Revoked key {key.name!r} ({key.id}) at {when(key.revoked_at)}.", markup=False)
