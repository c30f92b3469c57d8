"""`deputy spec`: AgentSpec files on this machine (schema, lint, diff, fmt), no server needed;
`deputy spec diff --agent` compares two stored versions through the API.

Exit codes of `lint`: 0 no errors (warnings allowed), 1 lint errors, 2 a file that cannot be
read or is not a valid AgentSpec. `fmt --check` exits 1 when a file is not formatted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deputy.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, err, fail, out, print_json
from deputy.cli.state import client
from deputy.domain.errors import ValidationFailed
from deputy.domain.spec import (
    AgentSpec,
    LintFinding,
    diff_specs,
    dump_json,
    dump_yaml,
    lint_spec,
    load_spec,
    render_diff_text,
)
from deputy.domain.spec.io import TextFormat
from deputy.domain.spec.schema import agent_spec_json_schema_text

spec_app = typer.Typer(
    help="AgentSpec files: JSON Schema, lint, diff and formatting (local, no server).",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
SpecFile = Annotated[Path, typer.Argument(metavar="FILE", help="An AgentSpec, YAML or JSON.")]


def _format_of(path: Path) -> TextFormat:
    suffix = path.suffix.lower()
    return "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else "auto"


def _problems(error: ValidationFailed) -> list[dict[str, Any]]:
    problems = error.details.get("errors")
    return problems if isinstance(problems, list) else []


def read_spec_file(path: Path) -> AgentSpec:
    """The validated spec in a file; `ValidationFailed` when it cannot be read or is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            f"cannot read {path}",
            details={"errors": [{"loc": "", "message": str(exc), "type": "unreadable"}]},
        ) from exc
    return load_spec(text, _format_of(path))


def _report_invalid(path: Path, error: ValidationFailed) -> None:
    console = err()
    console.print(f"{path}: invalid: {error.message}", markup=False, style="red", soft_wrap=True)
    for problem in _problems(error):
        line = f"  {problem.get('loc') or '-'}: {problem.get('message')}"
        console.print(line, markup=False, soft_wrap=True)


def _load_or_exit(path: Path) -> AgentSpec:
    try:
        return read_spec_file(path)
    except ValidationFailed as error:
        _report_invalid(path, error)
        raise typer.Exit(EXIT_USAGE) from None


@spec_app.command("schema")
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the schema to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema (2020-12) of AgentSpec v1."""
    text = agent_spec_json_schema_text()
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc}", EXIT_ERROR) from exc
    err().print(f"Wrote the AgentSpec v1 schema to {output}.", markup=False)


def _print_findings(path: Path, findings: list[LintFinding]) -> None:
    console = out()
    for finding in findings:
        style = "red" if finding.severity == "error" else "yellow"
        console.print(
            f"{path}: {finding.severity} [{finding.code}] {finding.path}: {finding.message}",
            markup=False,
            style=style,
            soft_wrap=True,
        )
    errors = sum(finding.severity == "error" for finding in findings)
    warnings = len(findings) - errors
    if findings:
        counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        console.print(f"{path}: {counts}", markup=False)
    else:
        console.print(f"{path}: no findings", markup=False)


@spec_app.command("lint")
def lint(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="AgentSpec files.")],
    as_json: AsJson = False,
) -> None:
    """Check specs for what the schema cannot: unknown tools, steps and slots, unreachable
    steps, procedures without an exit, slots used before they are asked, irreversible calls
    without confirmation, policies that contradict limits. Exit 1 on errors, 2 on invalid
    files."""
    results: list[dict[str, Any]] = []
    code = EXIT_OK
    for path in files:
        try:
            findings = lint_spec(read_spec_file(path))
        except ValidationFailed as error:
            code = EXIT_USAGE
            results.append({"file": str(path), "valid": False, "errors": _problems(error)})
            if not as_json:
                _report_invalid(path, error)
            continue
        if any(finding.severity == "error" for finding in findings) and code == EXIT_OK:
            code = EXIT_ERROR
        results.append({"file": str(path), "valid": True, "findings": findings})
        if not as_json:
            _print_findings(path, findings)
    if as_json:
        print_json(results)
    raise typer.Exit(code)


@spec_app.command("diff")
def diff(
    ctx: typer.Context,
    old: Annotated[Path | None, typer.Argument(metavar="OLD", help="The spec before.")] = None,
    new: Annotated[Path | None, typer.Argument(metavar="NEW", help="The spec after.")] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Compare two versions of this agent (API).")
    ] = None,
    from_version: Annotated[
        int | None, typer.Option("--from", min=1, help="With --agent: the version before.")
    ] = None,
    to_version: Annotated[
        int | None,
        typer.Option("--to", min=1, help="With --agent: the version after (default: latest)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Show what changed between two specs (files OLD NEW, or --agent with --from/--to),
    permission-widening changes first."""
    usage = "give two files OLD NEW, or --agent AGENT_ID [--from N] [--to M]"
    if agent is None:
        if old is None or new is None or from_version is not None or to_version is not None:
            raise fail(usage, EXIT_USAGE)
        changes = diff_specs(_load_or_exit(old), _load_or_exit(new))
        if as_json:
            data = changes.model_dump(mode="json")
            print_json({**data, "widens_permissions": changes.widens_permissions})
        else:
            typer.echo(render_diff_text(changes), nl=False)
        return
    if old is not None or new is not None:
        raise fail(usage, EXIT_USAGE)
    api = client(ctx).agents
    number = to_version or api.get(agent).latest_version
    if number < 1:
        raise fail(f"agent {agent} has no versions yet", EXIT_USAGE)
    result = api.versions.diff(agent, number, against=from_version)
    if as_json:
        print_json(result)
        return
    out().print(
        f"{agent}: version {result.from_version} → {result.to_version}", markup=False, style="bold"
    )
    typer.echo(result.text, nl=False)


@spec_app.command("fmt")
def fmt(
    file: SpecFile,
    write: Annotated[
        bool, typer.Option("--write", "-w", help="Rewrite the file in place.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file is not formatted; change nothing.")
    ] = False,
) -> None:
    """Print a spec in its normal form: keys in the schema's order, defaults left out, long
    texts as blocks (JSON files stay JSON). Comments are not kept."""
    spec = _load_or_exit(file)
    formatted = dump_json(spec) if _format_of(file) == "json" else dump_yaml(spec)
    current = file.read_text(encoding="utf-8")
    if check:
        if current != formatted:
            err().print(f"{file} is not formatted (deputy spec fmt --write {file})", markup=False)
            raise typer.Exit(EXIT_ERROR)
        return
    if not write:
        typer.echo(formatted, nl=False)
        return
    if current == formatted:
        err().print(f"{file} is already formatted.", markup=False)
        return
    file.write_text(formatted, encoding="utf-8")
    err().print(f"Formatted {file}.", markup=False)
