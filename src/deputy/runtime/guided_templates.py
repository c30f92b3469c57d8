"""Procedure templates rendered with slot values, without `str.format`.

A template inserts slot values with `{slot}`, `{slot[key]}` or `{slot.key}` (a dict's key or a
list's index, any depth), written without spaces; `{{` and `}}` are literal braces. A value
that is missing renders as `(unknown)`. Slot values may come from the customer or a tool and
contain braces of their own: they are inserted as text and never parsed again, so they cannot
reach other slots.

Tool arguments are templates too, with one difference: a string that is exactly one
placeholder (`'{item_ids}'`) becomes the slot's JSON value, so lists and numbers keep their type."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import JsonValue

UNKNOWN = "(unknown)"

_FIELD = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]]*\]|\.[A-Za-z0-9_]+)*)")
_PART = re.compile(r"\[([^\[\]]*)\]|\.([A-Za-z0-9_]+)")
_MISSING = object()


def lookup(field: str, values: Mapping[str, JsonValue]) -> object:
    """The value a template field names (`order[status]`), or `_MISSING`. A conversion or
    format spec after the name (`{x!r}`, `{x:>5}`) is ignored."""
    named = _NAME.match(field)
    if named is None:
        return _MISSING
    current: object = values.get(named.group(1), _MISSING)
    for part in _PART.finditer(named.group(2)):
        key = part.group(1) if part.group(1) is not None else part.group(2)
        key = key.strip().strip("'\"")
        if isinstance(current, dict) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return _MISSING
    return current


def as_text(value: object) -> str:
    """How a value reads in a reply: text as is, a list of plain values joined with commas,
    other data as compact JSON; nothing as `(unknown)`."""
    if value is None or value is _MISSING:
        return UNKNOWN
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(
        isinstance(item, str | int | float) and not isinstance(item, bool) for item in value
    ):
        return ", ".join(str(item) for item in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(template: str, values: Mapping[str, JsonValue]) -> str:
    """`template` with every `{field}` replaced by its value's text."""
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if template.startswith("{{", index) or template.startswith("}}", index):
            out.append(char)
            index += 2
            continue
        if char == "{":
            field = _FIELD.match(template, index)
            if field is not None and _NAME.match(field.group(1)):
                out.append(as_text(lookup(field.group(1), values)))
                index = field.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


def placeholder(value: JsonValue) -> str | None:
    """The field of a string that is exactly one placeholder (`'{item_ids}'`), else None."""
    if not isinstance(value, str):
        return None
    field = _FIELD.fullmatch(value.strip())
    if field is None or _NAME.fullmatch(field.group(1)) is None:
        return None
    return field.group(1)


def render_argument(value: JsonValue, values: Mapping[str, JsonValue]) -> JsonValue:
    """An argument value: a lone placeholder becomes its JSON value (None when missing), other
    strings are rendered as text, lists and dicts are rendered element by element."""
    if isinstance(value, str):
        field = placeholder(value)
        if field is None:
            return render(value, values)
        found = lookup(field, values)
        return None if found is _MISSING else json.loads(json.dumps(found))
    if isinstance(value, list):
        return [render_argument(item, values) for item in value]
    if isinstance(value, dict):
        return {key: render_argument(item, values) for key, item in value.items()}
    return value


def render_arguments(
    arguments: Mapping[str, JsonValue], values: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    return {key: render_argument(value, values) for key, value in arguments.items()}


def fields(template: str) -> list[str]:
    """The slots a template refers to, each once (`{order[status]}` refers to `order`)."""
    names: list[str] = []
    for field in _FIELD.finditer(template.replace("{{", "").replace("}}", "")):
        named = _NAME.match(field.group(1))
        if named is not None and named.group(1) not in names:
            names.append(named.group(1))
    return names
