"""What the CLI prints: rich tables for people, `--json` for machines, errors on stderr, and
the exit codes scripts can rely on."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from deputy.domain.errors import DeputyError
from deputy.domain.resources import Page

M = TypeVar("M", bound=BaseModel)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1  # anything else: conflicts, server errors, failed uploads
EXIT_USAGE: Final = 2  # bad arguments or a request the server found invalid
EXIT_AUTH: Final = 3  # no key, a wrong or revoked key, or not allowed
EXIT_NOT_FOUND: Final = 4
EXIT_UNAVAILABLE: Final = 5  # the server cannot be reached or is not ready

_EXIT_BY_CODE: dict[str, int] = {
    "invalid_request": EXIT_USAGE,
    "validation_error": EXIT_USAGE,
    "invalid_cursor": EXIT_USAGE,
    "unauthenticated": EXIT_AUTH,
    "permission_denied": EXIT_AUTH,
    "not_found": EXIT_NOT_FOUND,
    "unavailable": EXIT_UNAVAILABLE,
}

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of a table.")]


def exit_code_for(error: DeputyError) -> int:
    code = getattr(error, "reported_code", error.code)
    return _EXIT_BY_CODE.get(code, EXIT_ERROR)


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else 200  # never wrap ids when piped
    return Console(file=stream, stderr=stderr, width=wide, soft_wrap=False, highlight=False)


def out() -> Console:
    return _console(stderr=False)


def err() -> Console:
    return _console(stderr=True)


def error_lines(error: DeputyError) -> list[str]:
    """How an error reads on stderr: code and message, then the request id and details."""
    code = getattr(error, "reported_code", error.code)
    lines = [f"error: {code}: {error.message}"]
    request_id = getattr(error, "request_id", None)
    if request_id:
        lines.append(f"request id: {request_id}")
    problems = error.details.get("errors")
    if isinstance(problems, list):
        for problem in problems:
            if isinstance(problem, dict):
                lines.append(f"  {problem.get('loc', '')}: {problem.get('message', '')}")
    other = {k: v for k, v in error.details.items() if k != "errors"}
    if other:
        lines.append("details: " + json.dumps(other, default=str))
    return lines


def report_error(error: DeputyError, *, prefix: str = "") -> None:
    console = err()
    for number, line in enumerate(error_lines(error)):
        text = f"{prefix}{line}" if number == 0 else (" " * len(prefix) + line)
        console.print(text, markup=False, style="red" if number == 0 else None)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise."""
    err().print(f"error: {message}", markup=False, style="red")
    return typer.Exit(code)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def size(value: int) -> str:
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover


Column = tuple[str, Callable[[M], str]]


def table(rows: Iterable[M], columns: Sequence[Column[M]], *, title: str | None = None) -> Table:
    result = Table(title=title, show_lines=False)
    for index, (header, _) in enumerate(columns):
        result.add_column(header, no_wrap=index == 0, overflow="fold")
    for row in rows:
        result.add_row(*(render(row) for _, render in columns))
    return result


def print_page(page: Page[M], columns: Sequence[Column[M]], *, as_json: bool, noun: str) -> None:
    """A page of a list: JSON `{"data", "next_cursor"}`, or a table with a hint for more."""
    if as_json:
        print_json(page)
        return
    if not page.data:
        out().print(f"No {noun}.")
        return
    out().print(table(page.data, columns))
    if page.next_cursor:
        err().print(f"More {noun}: add --cursor {page.next_cursor} (or --all).", markup=False)


def print_fields(
    model: BaseModel, *, as_json: bool, title: str | None = None, skip: Sequence[str] = ()
) -> None:
    """One resource: JSON, or a two-column table of its fields."""
    if as_json:
        print_json(model)
        return
    grid = Table(title=title, show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in model.model_dump().items():
        if name in skip:
            continue
        if isinstance(value, datetime):
            text = when(value)
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(item) for item in value) or "-"
        elif value is None:
            text = "-"
        else:
            text = str(value)
        grid.add_row(name, text)
    out().print(grid)


def print_secret(label: str, secret: str) -> None:
    """A secret shown once: on stdout, with the warning on stderr."""
    console = out()
    console.print(f"{label}:", markup=False)
    console.print(f"    {secret}", markup=False, style="bold")
    err().print(
        "This secret is shown now and never again: store it somewhere safe.",
        markup=False,
        style="yellow",
    )
