"""Tool descriptions: tau2-style tool files, OpenAPI 3 documents, and the operations of tool
sources registered in the workspace.

tau2-style files are `{domain: {description, tools: [...]}}`, `{"tools": [...]}` or a bare list
of tools, each `{name, type: READ|WRITE|GENERIC, description, parameters: [{name, type,
required, description}], returns}` (`parameters` may also be a JSON Schema object). A file with
several domains is read whole: tool names are unique within a domain, not across them, and each
tool's anchor label starts with its domain ("retail › tools › cancel_order") so that
`tool_domains` can split them. Effects are inferred as `deputy.builder.read_tool_effects` says.

Tools from a file get no binding: the file names no place to call them, so the build report
asks for one. `tool_from_definition` gives tools of a registered OpenAPI or MCP source their
binding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from deputy.builder.read_common import PATH_SEPARATOR, Unreadable, quoted, snake_name
from deputy.builder.read_tool_effects import declared_type_effect, write_effect
from deputy.builder.sources import (
    Anchor,
    MaterialProblem,
    MaterialRef,
    ReadResult,
    ToolDescription,
)
from deputy.domain.errors import DeputyError
from deputy.domain.spec import MCPBinding, OpenAPIBinding
from deputy.tools.base import ToolDefinition
from deputy.tools.openapi_document import parse_openapi
from deputy.tools.openapi_operations import READ_METHODS

TAU2_TYPES = frozenset({"READ", "WRITE", "GENERIC"})
_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def is_tool_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("name"), str)


def tau2_tool_lists(value: Any) -> dict[str, list[Any]] | None:
    """The tool lists of a tau2-style file by domain (`""` when the file has no domains), or
    None when the value is not one."""
    if isinstance(value, list) and value and all(is_tool_entry(tool) for tool in value):
        if all(str(tool.get("type", "")).upper() in TAU2_TYPES for tool in value):
            return {"": value}
        return None
    if not isinstance(value, Mapping):
        return None
    if isinstance(value.get("tools"), list):
        return {"": list(value["tools"])}
    domains = {
        str(domain): entry["tools"]
        for domain, entry in value.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("tools"), list)
    }
    if domains and len(domains) == len(value):
        return domains
    return None


def _schema(parameters: Any, where: str) -> dict[str, Any]:
    if isinstance(parameters, Mapping):
        return dict(parameters)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for position, parameter in enumerate(parameters or [], start=1):
        if not isinstance(parameter, Mapping) or not isinstance(parameter.get("name"), str):
            raise ValueError(f"{where}: parameter {position} has no name")
        field: dict[str, Any] = {}
        kind = parameter.get("type")
        if isinstance(kind, str) and kind in _JSON_TYPES:
            field["type"] = kind
        if isinstance(parameter.get("description"), str):
            field["description"] = parameter["description"]
        properties[parameter["name"]] = field
        if parameter.get("required") is True:
            required.append(parameter["name"])
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def read_tau2(ref: MaterialRef, domains: Mapping[str, Sequence[Any]]) -> ReadResult:
    """A tau2-style file. A tool without a usable name, with broken parameters or repeating a
    name of its domain is left out with a problem; the others are read."""
    tools: list[ToolDescription] = []
    problems: list[MaterialProblem] = []
    for domain, entries in domains.items():
        prefix = domain or ref.name
        seen: set[str] = set()
        for position, entry in enumerate(entries, start=1):
            raw_name = entry.get("name") if isinstance(entry, Mapping) else None
            name = snake_name(raw_name) if isinstance(raw_name, str) else None
            where = f"{prefix}{PATH_SEPARATOR}tools{PATH_SEPARATOR}{raw_name or position}"
            try:
                if name is None or not isinstance(entry, Mapping):
                    raise ValueError(f"tool {position} of {prefix} has no usable name")
                if name in seen:
                    raise ValueError(f"{where} repeats the name of an earlier tool")
                description = entry.get("description")
                description = description.strip() if isinstance(description, str) else ""
                schema = _schema(entry.get("parameters", []), where)
            except ValueError as exc:
                problems.append(
                    MaterialProblem(
                        ref,
                        "invalid_content",
                        f"{quoted(ref.name)}: {exc}; that tool was left out.",
                    )
                )
                continue
            seen.add(name)
            declared = entry.get("type")
            effect, reason = declared_type_effect(
                declared if isinstance(declared, str) else None, name, description, schema
            )
            returns = entry.get("returns", "")
            tools.append(
                ToolDescription(
                    name=name,
                    description=description,
                    effect=effect,
                    effect_reason=reason,
                    parameters=schema,
                    anchor=Anchor(
                        kind="document",
                        label=where,
                        quote=description or str(raw_name),
                        material=ref,
                    ),
                    returns=returns if isinstance(returns, str) else str(returns),
                )
            )
    if not tools and not problems:
        raise Unreadable("empty", f"{quoted(ref.name)} lists no tools.")
    return ReadResult(ref, "tools" if tools else None, tools=tuple(tools), problems=tuple(problems))


def _unique(name: str, used: set[str]) -> str:
    candidate, counter = name, 2
    while candidate in used:
        candidate = f"{name[:60]}_{counter}"
        counter += 1
    used.add(candidate)
    return candidate


def read_openapi(ref: MaterialRef, document: Mapping[str, Any]) -> ReadResult:
    """An OpenAPI 3 document: one tool per operation, named after its operationId (snake_case).
    A broken document is refused with the parser's message; operations that cannot be tools
    are reported one by one."""
    try:
        parsed = parse_openapi(document)
    except DeputyError as exc:
        raise Unreadable(
            "invalid_content",
            f"{quoted(ref.name)} is not a usable OpenAPI document: {exc.message}. Fix the "
            "document (an OpenAPI validator shows where) and upload it again.",
        ) from exc
    title = parsed.title or ref.name
    paths = document.get("paths") if isinstance(document.get("paths"), Mapping) else {}
    assert isinstance(paths, Mapping)
    used: set[str] = set()
    tools: list[ToolDescription] = []
    for operation in parsed.operations:
        definition = operation.tool
        item = paths.get(operation.path)
        raw = item.get(operation.method.lower()) if isinstance(item, Mapping) else None
        raw = raw if isinstance(raw, Mapping) else {}
        if "x-effect" in raw:
            effect, reason = (
                definition.effect,
                f"the document declares x-effect: {definition.effect}",
            )
        elif operation.method in READ_METHODS:
            effect, reason = "read", f"HTTP {operation.method} without x-effect: it only reads"
        else:
            effect, reason = write_effect(
                f"HTTP {operation.method} without x-effect",
                definition.operation,
                definition.description,
                definition.input_schema,
            )
        quote = next(
            (
                str(raw[key]).strip()
                for key in ("description", "summary", "operationId")
                if isinstance(raw.get(key), str) and raw[key].strip()
            ),
            f"{operation.method} {operation.path}",
        )
        tools.append(
            ToolDescription(
                name=_unique(snake_name(definition.operation) or "operation", used),
                description=definition.description,
                effect=effect,
                effect_reason=reason,
                parameters=definition.input_schema,
                anchor=Anchor(
                    kind="document",
                    label=f"{title}{PATH_SEPARATOR}{operation.method} {operation.path}",
                    quote=quote,
                    material=ref,
                ),
            )
        )
    problems = tuple(
        MaterialProblem(
            ref,
            "invalid_content",
            f"{quoted(ref.name)}: {skipped.method} {skipped.path} cannot be used as a tool "
            f"({skipped.reason}); it was left out.",
        )
        for skipped in parsed.skipped
    )
    return ReadResult(ref, "tools" if tools else None, tools=tuple(tools), problems=problems)


def tool_from_definition(
    definition: ToolDefinition,
    *,
    source_name: str,
    source_kind: Literal["openapi", "mcp"],
    ref: MaterialRef | None,
) -> ToolDescription:
    """A tool of a tool source registered in the workspace, bound to it. Its effect is the one
    the source gives (OpenAPI: `x-effect`, else the HTTP method; MCP: the tool's hints)."""
    binding: OpenAPIBinding | MCPBinding
    if source_kind == "openapi":
        binding = OpenAPIBinding(source=source_name, operation=definition.operation)
        reason = (
            f"from the registered OpenAPI source {quoted(source_name)}: its x-effect, else "
            "its HTTP method"
        )
    else:
        binding = MCPBinding(source=source_name, tool=definition.operation)
        reason = (
            f"from the MCP server {quoted(source_name)}: readOnlyHint → read, "
            "destructiveHint → irreversible, otherwise write"
        )
    return ToolDescription(
        name=snake_name(definition.operation) or "operation",
        description=definition.description,
        effect=definition.effect,
        effect_reason=f"{reason} → {definition.effect}",
        parameters=definition.input_schema,
        anchor=Anchor(
            kind="tool_description",
            label=f"{source_name}{PATH_SEPARATOR}{definition.operation}",
            quote=definition.description or definition.operation,
            material=ref,
        ),
        binding=binding,
    )


def tool_domains(tools: Sequence[ToolDescription]) -> dict[str, tuple[ToolDescription, ...]]:
    """Tools by the first part of their anchor label: the tau2 domain, the OpenAPI document's
    title, the source name, or the file name for a file without domains."""
    grouped: dict[str, list[ToolDescription]] = {}
    for tool in tools:
        grouped.setdefault(tool.anchor.label.split(PATH_SEPARATOR, 1)[0], []).append(tool)
    return {domain: tuple(members) for domain, members in grouped.items()}
