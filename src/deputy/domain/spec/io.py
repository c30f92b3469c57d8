"""AgentSpecs as text: YAML for people, JSON for machines, and the one way raw data becomes a
validated `AgentSpec` (with per-field errors).

YAML is read with YAML 1.2 core-schema scalars (only `true`/`false` are booleans, `017` is 17,
dates and times stay strings, no merge keys) and a repeated key is an error, so what a reviewer
reads is what the runtime gets. Output omits every field left at its default (`format` excepted)
and keeps the model's field order; `load_spec(dump_yaml(spec)) == spec` and likewise for JSON.
Prices (decimals) are written as plain YAML numbers and as JSON strings (like the API); both read
back to the same `Decimal` because a price has at most 14 significant digits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from deputy.domain.errors import ValidationFailed
from deputy.domain.spec.model import AgentSpec

TextFormat = Literal["yaml", "json", "auto"]

_YAML_LINE_BREAKS = frozenset("\r\x85\u2028\u2029")


# ---- reading -----------------------------------------------------------------------------


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit types and no duplicate keys."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # its own table, not SafeLoader's

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_core_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        try:
            return int(text)
        except ValueError:  # an explicit `!!int 0x1f`
            return int(self.construct_yaml_int(node))


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _CORE_FLOAT, list("-+.0123456789"))
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_core_int)


def _problem(loc: str, message: str, kind: str) -> dict[str, str]:
    return {"loc": loc, "message": message, "type": kind}


def _syntax_error(fmt: str, message: str, line: int | None, column: int | None) -> ValidationFailed:
    where = f"line {line}, column {column}" if line is not None else ""
    return ValidationFailed(
        f"the agent spec is not valid {fmt.upper()}",
        details={"errors": [_problem(where, message, f"{fmt}_syntax")]},
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"found the key {key!r} twice in one object")
        result[key] = value
    return result


def parse_spec_text(text: str, format: TextFormat = "auto") -> dict[str, Any]:
    """The mapping a YAML or JSON document holds, not yet validated as an AgentSpec.

    `auto` reads JSON when the text starts with `{`, YAML otherwise. Raises `ValidationFailed`
    for a syntax error (with line and column) or a document that is not a mapping."""
    fmt = format
    if fmt == "auto":
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    data: object
    if fmt == "json":
        try:
            data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_repeats)
        except json.JSONDecodeError as exc:
            raise _syntax_error("json", exc.msg, exc.lineno, exc.colno) from exc
        except ValueError as exc:
            raise _syntax_error("json", str(exc), None, None) from exc
    else:
        try:
            data = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = " ".join(part for part in (exc.context, exc.problem) if part)
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            raise _syntax_error("yaml", message or str(exc), line, column) from exc
        except yaml.YAMLError as exc:
            raise _syntax_error("yaml", str(exc), None, None) from exc
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise ValidationFailed(
            "the agent spec is not valid",
            details={
                "errors": [
                    _problem("", f"the document must be a mapping, not {kind}", "not_mapping")
                ]
            },
        )
    return data


def spec_from_data(data: Mapping[str, Any]) -> AgentSpec:
    """Validate raw data as an AgentSpec; `ValidationFailed` lists every problem by field."""
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            _problem(".".join(str(p) for p in err["loc"]), err["msg"], err["type"])
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed("the agent spec is not valid", details={"errors": problems}) from exc


def load_spec(text: str, format: TextFormat = "auto") -> AgentSpec:
    """Parse and validate a YAML or JSON AgentSpec."""
    return spec_from_data(parse_spec_text(text, format))


# ---- writing -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively; decimals and every JSON value as they are."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _compact(spec: AgentSpec, mode: Literal["python", "json"]) -> dict[str, Any]:
    """The dump without fields left at their defaults, except `format` (first) and each tool
    binding's `kind`, which says how to read the rest of the binding."""
    data = spec.model_dump(mode=mode, exclude_defaults=True)
    data.pop("format", None)
    for tool, dumped in zip(spec.tools, data.get("tools", ()), strict=True):
        dumped["binding"] = {"kind": tool.binding.kind, **dumped["binding"]}
    return {"format": spec.format, **data}


def spec_to_data(spec: AgentSpec) -> dict[str, Any]:
    """The spec as plain data (decimals kept) without the fields left at their defaults."""
    result: dict[str, Any] = _plain(_compact(spec, "python"))
    return result


class _SpecDumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line text as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _YAML_LINE_BREAKS.intersection(value):  # other styles would read them back as "\n"
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value.normalize(), "f")  # 0.50 as 0.5: what reading it back gives
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_SpecDumper.add_representer(str, _represent_str)
_SpecDumper.add_representer(Decimal, _represent_decimal)
# Strings another YAML 1.2 reader would take for a number (`1e5`) are quoted too.
_SpecDumper.add_implicit_resolver("tag:yaml.org,2002:float", _CORE_FLOAT, list("-+.0123456789"))


def dump_yaml(spec: AgentSpec) -> str:
    return yaml.dump(
        spec_to_data(spec),
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def dump_json(spec: AgentSpec, *, indent: int | None = 2) -> str:
    return json.dumps(_compact(spec, "json"), indent=indent, ensure_ascii=False) + "\n"
