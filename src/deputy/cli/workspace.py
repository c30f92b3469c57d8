"""`deputy workspaces`, `deputy workspace` and `deputy members`."""

from __future__ import annotations

from typing import Annotated

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
from deputy.domain.resources import Member
from deputy.domain.tenancy import Role

workspaces_app = typer.Typer(
    help="Create workspaces (the platform operator's key).", no_args_is_help=True
)
workspace_app = typer.Typer(help="The workspace of your key.", no_args_is_help=True)
members_app = typer.Typer(help="People in your workspace and their roles.", no_args_is_help=True)

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

MEMBER_COLUMNS: list[Column[Member]] = [
    ("ID", lambda m: m.id),
    ("EMAIL", lambda m: m.email),
    ("NAME", lambda m: m.name),
    ("ROLE", lambda m: m.role),
    ("CREATED", lambda m: when(m.created_at)),
]


@workspaces_app.command("create")
def create_workspace(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The workspace's name.")],
    owner_email: Annotated[str, typer.Option("--owner-email", help="Its first owner's email.")],
    owner_name: Annotated[str, typer.Option("--owner-name", help="Its first owner's name.")],
    as_json: AsJson = False,
) -> None:
    """Create a workspace with its owner; prints the owner's key once."""
    created = client(ctx).workspaces.create(name, owner_email, owner_name)
    if as_json:
        print_json(created)
        return
    out().print(
        f"Created workspace {created.workspace.name!r} ({created.workspace.id}) with "
        f"owner {created.owner.email} ({created.owner.id}).",
        markup=False,
    )
    print_secret("The owner's API key", created.owner_key.secret)


@workspace_app.command("show")
def show_workspace(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Show your workspace."""
    print_fields(client(ctx).workspace.get(), as_json=as_json)


@workspace_app.command("rename")
def rename_workspace(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new name.")],
    as_json: AsJson = False,
) -> None:
    """Rename your workspace."""
    print_fields(client(ctx).workspace.rename(name), as_json=as_json)


@workspace_app.command("set-model")
def set_workspace_model(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="`provider:model`, e.g. local:qwen2.5-coder-1.5b (see `models list`).",
        ),
    ] = None,
    platform_default: Annotated[
        bool, typer.Option("--platform-default", help="Return to the platform's default model.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Set the model your workspace's agents use (unless an agent sets its own)."""
    if (model is None) == (not platform_default):
        raise fail("give a model NAME or --platform-default (one of them)", EXIT_USAGE)
    workspace = client(ctx).workspace.update(default_model=None if platform_default else model)
    if as_json:
        print_json(workspace)
        return
    chosen = workspace.default_model or "the platform default model"
    out().print(f"Workspace {workspace.name!r} now uses {chosen}.", markup=False)


@members_app.command("add")
def add_member(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The new member's email.")],
    name: Annotated[str, typer.Option("--name", help="Their name.")],
    role: Annotated[Role, typer.Option("--role", help="What they may do.")] = "viewer",
    as_json: AsJson = False,
) -> None:
    """Add a member to your workspace."""
    print_fields(client(ctx).members.add(email, name, role), as_json=as_json)


@members_app.command("list")
def list_members(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the members of your workspace."""
    api = client(ctx).members
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_page(page, MEMBER_COLUMNS, as_json=as_json, noun="members")


@members_app.command("show")
def show_member(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's id (mem_…).")],
    as_json: AsJson = False,
) -> None:
    """Show one member."""
    print_fields(client(ctx).members.get(member_id), as_json=as_json)


@members_app.command("update")
def update_member(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's id (mem_…).")],
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    role: Annotated[Role | None, typer.Option("--role", help="A new role.")] = None,
    as_json: AsJson = False,
) -> None:
    """Change a member's name or role."""
    if name is None and role is None:
        raise fail("nothing to change: give --name and/or --role", 2)
    print_fields(client(ctx).members.update(member_id, name=name, role=role), as_json=as_json)


@members_app.command("remove")
def remove_member(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's id (mem_…).")],
    yes: Yes = False,
) -> None:
    """Remove a member; their keys are revoked."""
    if not yes:
        typer.confirm(f"Remove member {member_id} and revoke their keys?", abort=True)
    client(ctx).members.remove(member_id)
    out().print(f"Removed member {member_id}.", markup=False)
