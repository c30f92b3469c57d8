"""`deputy agents` and `deputy agents versions`: agents and their immutable spec versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.syntax import Syntax

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    err,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    when,
)
from deputy.cli.state import client
from deputy.domain.errors import ValidationFailed
from deputy.domain.resources import Agent, AgentVersion
from deputy.domain.spec.io import parse_spec_text

agents_app = typer.Typer(
    help="Agents: each is a series of versioned AgentSpecs.", no_args_is_help=True
)
versions_app = typer.Typer(help="An agent's spec versions (immutable).", no_args_is_help=True)
agents_app.add_typer(versions_app, name="versions")

AgentId = Annotated[str, typer.Argument(metavar="AGENT_ID", help="The agent's id (agt_…).")]

AGENT_COLUMNS: list[Column[Agent]] = [
    ("ID", lambda a: a.id),
    ("NAME", lambda a: a.name),
    ("LATEST", lambda a: str(a.latest_version) if a.latest_version else "-"),
    (
        "DESCRIPTION",
        lambda a: a.description if len(a.description) <= 60 else a.description[:59] + "…",
    ),
    ("CREATED", lambda a: when(a.created_at)),
]
VERSION_COLUMNS: list[Column[AgentVersion]] = [
    ("NUMBER", lambda v: str(v.number)),
    ("ID", lambda v: v.id),
    ("SHA256", lambda v: v.spec_sha256[:12]),
    ("NOTE", lambda v: v.note or "-"),
    ("CREATED", lambda v: when(v.created_at)),
]


def read_spec(path: Path) -> dict[str, Any]:
    """An AgentSpec from a YAML or JSON file (JSON by its `.json` suffix, YAML otherwise), read
    as `deputy spec lint` reads it; the server validates it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}", EXIT_USAGE) from exc
    try:
        return parse_spec_text(text, "json" if path.suffix.lower() == ".json" else "yaml")
    except ValidationFailed as exc:
        where = "; ".join(
            f"{problem['loc']}: {problem['message']}" if problem["loc"] else problem["message"]
            for problem in exc.details["errors"]
        )
        raise fail(f"{path}: {exc.message}: {where}", EXIT_USAGE) from exc


@agents_app.command("create")
def create_agent(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The agent's name.")],
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    as_json: AsJson = False,
) -> None:
    """Create an agent (without versions yet)."""
    print_fields(client(ctx).agents.create(name, description), as_json=as_json)


@agents_app.command("list")
def list_agents(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's agents."""
    api = client(ctx).agents
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_page(page, AGENT_COLUMNS, as_json=as_json, noun="agents")


@agents_app.command("show")
def show_agent(ctx: typer.Context, agent_id: AgentId, as_json: AsJson = False) -> None:
    """Show one agent."""
    print_fields(client(ctx).agents.get(agent_id), as_json=as_json)


@agents_app.command("set-model")
def set_agent_model(
    ctx: typer.Context,
    agent_id: AgentId,
    model: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="`provider:model` (see `deputy models list`)."),
    ] = None,
    workspace_default: Annotated[
        bool, typer.Option("--workspace-default", help="Return to the workspace's model.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Set the model one agent uses, instead of the workspace's."""
    if (model is None) == (not workspace_default):
        raise fail("give a model NAME or --workspace-default (one of them)", EXIT_USAGE)
    agent = client(ctx).agents.update(agent_id, model=None if workspace_default else model)
    if as_json:
        print_json(agent)
        return
    chosen = agent.model or "the workspace's model"
    out().print(f"Agent {agent.name} ({agent.id}) now uses {chosen}.", markup=False)


@versions_app.command("create")
def create_version(
    ctx: typer.Context,
    agent_id: AgentId,
    spec_file: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC_FILE",
            help="The AgentSpec, YAML or JSON.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="What changed and why.")] = "",
    as_json: AsJson = False,
) -> None:
    """Validate a spec and store it as the agent's next version."""
    version = client(ctx).agents.versions.create(agent_id, read_spec(spec_file), note)
    if as_json:
        print_json(version)
        return
    out().print(
        f"Created version {version.number} of {agent_id} ({version.id}, sha256 "
        f"{version.spec_sha256[:12]}).",
        markup=False,
    )
    for finding in version.lint:
        err().print(
            f"warning [{finding.code}] {finding.path}: {finding.message}",
            markup=False,
            style="yellow",
            soft_wrap=True,
        )


@versions_app.command("list")
def list_versions(
    ctx: typer.Context,
    agent_id: AgentId,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List an agent's versions, newest first."""
    api = client(ctx).agents.versions
    page = listing.fetch(
        lambda n, c: api.list(agent_id, limit=n, cursor=c), limit, cursor, all_pages
    )
    print_page(page, VERSION_COLUMNS, as_json=as_json, noun="versions")


@versions_app.command("show")
def show_version(
    ctx: typer.Context,
    agent_id: AgentId,
    number: Annotated[int, typer.Argument(metavar="NUMBER", help="The version number.", min=1)],
    as_json: AsJson = False,
) -> None:
    """Show one version with its spec (as YAML)."""
    version = client(ctx).agents.versions.get(agent_id, number)
    if as_json:
        print_json(version)
        return
    print_fields(version, as_json=False, skip=("spec",))
    out().print(
        Syntax(
            yaml.safe_dump(version.spec, sort_keys=False, allow_unicode=True),
            "yaml",
            background_color="default",
        )
    )
