"""`deputy materials`: upload source material (with progress), list, show, download, delete."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_ERROR,
    EXIT_USAGE,
    AsJson,
    Column,
    err,
    error_lines,
    exit_code_for,
    fail,
    out,
    print_fields,
    print_json,
    print_page,
    size,
    table,
    when,
)
from deputy.cli.state import client
from deputy.domain.errors import DeputyError
from deputy.domain.resources import Material

materials_app = typer.Typer(
    help="Source material: SOPs, policies, transcripts, recordings.", no_args_is_help=True
)

MaterialId = Annotated[
    str, typer.Argument(metavar="MATERIAL_ID", help="The material's id (mat_…).")
]

MATERIAL_COLUMNS: list[Column[Material]] = [
    ("ID", lambda m: m.id),
    ("FILENAME", lambda m: m.filename),
    ("TYPE", lambda m: m.media_type),
    ("SIZE", lambda m: size(m.size_bytes)),
    ("SHA256", lambda m: m.sha256[:12]),
    ("CREATED", lambda m: when(m.created_at)),
]


def _progress() -> Progress:
    console = err()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _failure(path: Path, error: DeputyError | OSError) -> dict[str, Any]:
    if isinstance(error, DeputyError):
        return {
            "file": str(path),
            "code": getattr(error, "reported_code", error.code),
            "message": error.message,
            "request_id": getattr(error, "request_id", None),
            "details": error.details,
        }
    return {
        "file": str(path),
        "code": "local_file_error",
        "message": str(error),
        "request_id": None,
        "details": {},
    }


@materials_app.command("upload")
def upload(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Files to upload.", show_default=False)
    ],
    as_json: AsJson = False,
) -> None:
    """Upload one or more files. A file that fails is reported and the others go on; the exit
    code is non-zero when any failed."""
    api = client(ctx).materials
    uploaded: list[Material] = []
    failures: list[dict[str, Any]] = []
    exit_codes: set[int] = set()
    with _progress() as progress:
        for path in files:
            task = progress.add_task(path.name, total=None)
            try:
                if not path.is_file():
                    raise FileNotFoundError("not a readable file")
                progress.update(task, total=path.stat().st_size)

                def advance(done: int, total: int | None, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                uploaded.append(api.upload(path, progress=advance))
            except (DeputyError, OSError) as error:
                failures.append(_failure(path, error))
                exit_codes.add(
                    exit_code_for(error) if isinstance(error, DeputyError) else EXIT_USAGE
                )
                lines = (
                    error_lines(error) if isinstance(error, DeputyError) else [f"error: {error}"]
                )
                progress.console.print(
                    f"{path}: " + "\n    ".join(lines), markup=False, style="red"
                )
                progress.remove_task(task)
    if as_json:
        print_json({"uploaded": uploaded, "failed": failures})
    elif uploaded:
        out().print(table(uploaded, MATERIAL_COLUMNS))
    if failures:
        err().print(f"{len(failures)} of {len(files)} file(s) failed.", markup=False, style="red")
        raise typer.Exit(exit_codes.pop() if len(exit_codes) == 1 else EXIT_ERROR)


@materials_app.command("list")
def list_materials(
    ctx: typer.Context,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's materials, newest first."""
    api = client(ctx).materials
    page = listing.fetch(lambda n, c: api.list(limit=n, cursor=c), limit, cursor, all_pages)
    print_page(page, MATERIAL_COLUMNS, as_json=as_json, noun="materials")


@materials_app.command("show")
def show_material(
    ctx: typer.Context,
    material_id: MaterialId,
    as_json: AsJson = False,
) -> None:
    """Show one material's metadata."""
    print_fields(client(ctx).materials.get(material_id), as_json=as_json)


def _destination(material: Material, output: str | None) -> Path:
    name = Path(material.filename).name
    if name in ("", ".", ".."):
        name = material.id
    if output is None:
        return Path(name)
    path = Path(output)
    return path / name if path.is_dir() else path


@materials_app.command("download")
def download(
    ctx: typer.Context,
    material_id: MaterialId,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="File or directory to write (default: its file name here); `-` for stdout.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download a material's content; its sha256 is verified."""
    api = client(ctx).materials
    if output == "-":
        api.download(material_id, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    material = api.get(material_id)
    destination = _destination(material, output)
    if destination.exists() and not force:
        raise fail(f"{destination} exists; use --force to overwrite it", EXIT_ERROR)
    with _progress() as progress:
        task = progress.add_task(material.filename, total=material.size_bytes)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        written = api.download(material_id, destination, progress=advance)
    out().print(
        f"Downloaded {material.id} to {destination} ({size(written)}, sha256 verified).",
        markup=False,
    )


@materials_app.command("delete")
def delete(
    ctx: typer.Context,
    material_id: MaterialId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a material and its content."""
    if not yes:
        typer.confirm(f"Delete material {material_id}?", abort=True)
    client(ctx).materials.delete(material_id)
    out().print(f"Deleted material {material_id}.", markup=False)
