"""`deputy knowledge`: index documents into an agent's knowledge, list, search, remove."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_USAGE,
    AsJson,
    Column,
    fail,
    out,
    print_json,
    print_page,
    size,
    when,
)
from deputy.cli.state import client
from deputy.domain.resources import KnowledgeDocument, KnowledgeMode

knowledge_app = typer.Typer(
    help="An agent's knowledge: documents it answers from, searched with citations.",
    no_args_is_help=True,
)

AgentId = Annotated[str, typer.Argument(metavar="AGENT_ID", help="The agent's id (agt_…).")]
DocumentId = Annotated[
    str, typer.Argument(metavar="DOCUMENT_ID", help="The knowledge document's id (kdoc_…).")
]

_MODES: dict[str, KnowledgeMode] = {"bm25": "bm25", "vector": "vector", "hybrid": "hybrid"}

DOCUMENT_COLUMNS: list[Column[KnowledgeDocument]] = [
    ("ID", lambda d: d.id),
    ("TITLE", lambda d: d.title),
    ("TYPE", lambda d: d.media_type),
    ("SIZE", lambda d: size(d.size_bytes)),
    ("CHUNKS", lambda d: str(d.chunk_count)),
    ("REV", lambda d: str(d.revision)),
    ("UPDATED", lambda d: when(d.updated_at)),
]


@knowledge_app.command("add")
def add(
    ctx: typer.Context,
    agent_id: AgentId,
    material: Annotated[
        str | None, typer.Option("--material", help="An uploaded material's id (mat_…).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A local file: uploaded as a material, then indexed."),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(
            "--title",
            help="Name in the agent's knowledge (default: the file name); adding "
            "under an existing title replaces that document.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Index a document (Markdown, text, HTML, PDF, DOCX) into the agent's knowledge."""
    if (material is None) == (file is None):
        raise fail("give exactly one of --material and --file", EXIT_USAGE)
    sdk = client(ctx)
    if file is not None:
        if not file.is_file():
            raise fail(f"{file}: not a readable file", EXIT_USAGE)
        material = sdk.materials.upload(file).id
    result = sdk.knowledge.add(agent_id, material_id=material, title=title)
    if as_json:
        print_json(result)
        return
    document = result.document
    verb = {"created": "Added", "replaced": "Replaced", "unchanged": "Unchanged:"}[result.outcome]
    out().print(
        f"{verb} {document.id} {document.title!r} ({document.chunk_count} passages, "
        f"revision {document.revision}).",
        markup=False,
    )


@knowledge_app.command("list")
def list_documents(
    ctx: typer.Context,
    agent_id: AgentId,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the agent's knowledge documents, newest first."""
    api = client(ctx).knowledge
    page = listing.fetch(
        lambda n, c: api.list(agent_id, limit=n, cursor=c), limit, cursor, all_pages
    )
    print_page(page, DOCUMENT_COLUMNS, as_json=as_json, noun="knowledge documents")


@knowledge_app.command("search")
def search(
    ctx: typer.Context,
    agent_id: AgentId,
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="Passages to return.")] = 5,
    mode: Annotated[
        str, typer.Option("--mode", help="bm25 (words), vector (meaning) or hybrid (both).")
    ] = "hybrid",
    as_json: AsJson = False,
) -> None:
    """The agent's best passages for QUERY, with where each comes from."""
    chosen = _MODES.get(mode)
    if chosen is None:
        raise fail("--mode must be bm25, vector or hybrid", EXIT_USAGE)
    result = client(ctx).knowledge.search(agent_id, query, k=k, mode=chosen)
    if as_json:
        print_json(result)
        return
    if not result.hits:
        out().print("No passages.")
        return
    grid = Table()
    for header in ("#", "SCORE", "SOURCE", "SECTION", "PASSAGE"):
        grid.add_column(header, overflow="fold")
    for rank, hit in enumerate(result.hits, 1):
        citation = hit.citation
        snippet = " ".join(hit.text.split())
        grid.add_row(
            str(rank),
            f"{hit.score:.4f}",
            f"{citation.title}, {citation.locator.label}",
            " > ".join(citation.heading_path) or "-",
            snippet[:240] + ("..." if len(snippet) > 240 else ""),
        )
    out().print(grid)


@knowledge_app.command("index")
def index(
    ctx: typer.Context,
    agent_id: AgentId,
    version: Annotated[int, typer.Option("--version", min=1, help="The spec version.")],
    as_json: AsJson = False,
) -> None:
    """Index the knowledge sources a spec version names; exits 1 if any failed."""
    report = client(ctx).knowledge.index_version(agent_id, version)
    if as_json:
        print_json(report)
    else:
        grid = Table()
        for header in ("SOURCE", "OUTCOME", "DOCUMENT", "CHUNKS", "REASON"):
            grid.add_column(header, overflow="fold")
        for item in report.sources:
            document = item.document
            grid.add_row(
                item.source_id,
                item.outcome,
                document.id if document else "-",
                str(document.chunk_count) if document else "-",
                item.reason or "",
            )
        out().print(grid)
    if any(item.outcome == "failed" for item in report.sources):
        raise typer.Exit(1)


@knowledge_app.command("remove")
def remove(
    ctx: typer.Context,
    agent_id: AgentId,
    document_id: DocumentId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a document and its passages from the agent's knowledge (the material stays)."""
    if not yes:
        typer.confirm(f"Remove {document_id} from {agent_id}'s knowledge?", abort=True)
    client(ctx).knowledge.delete(agent_id, document_id)
    out().print(f"Removed {document_id}.", markup=False)
