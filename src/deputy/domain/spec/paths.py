"""Paths to the parts of an AgentSpec, shared by the linter and the diff.

A path is a dotted list of field names; `[key]` picks an element of a list or a mapping:
`procedures[return_order].steps[refund].limits[amount].max`. List elements are picked by their
id (procedures, steps, slots, exits, policies, knowledge sources, escalation rules), their name
(tools), `tool:argument` (policy limits), `argument` (other limits) or their value (lists of
ids); a repeated key gets `#2`, `#3`... on its later occurrences. A key holding brackets, a
quote or spaces at its ends is written as a JSON string: `forbidden_topics["a [b]"]`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

_DECODER = json.JSONDecoder()


def element_key(item: Any) -> str:
    """How a list element is named in a path."""
    if isinstance(item, BaseModel):
        item = item.model_dump(mode="json")
    if isinstance(item, Mapping):
        for field in ("id", "name"):
            if isinstance(item.get(field), str):
                return str(item[field])
        if isinstance(item.get("argument"), str):
            tool = item.get("tool")
            return f"{tool}:{item['argument']}" if isinstance(tool, str) else str(item["argument"])
        return json.dumps(item, sort_keys=True, default=str)
    return item if isinstance(item, str) else json.dumps(item, default=str)


def element_keys(items: Iterable[Any]) -> list[str]:
    """Each element's key, with `#n` added to the n-th repeat of a key."""
    counts: dict[str, int] = {}
    keys: list[str] = []
    for item in items:
        key = element_key(item)
        counts[key] = counts.get(key, 0) + 1
        keys.append(key if counts[key] == 1 else f"{key}#{counts[key]}")
    return keys


_PLAIN_KEY = re.compile(r"^[^\[\]\"\s][^\[\]]*(?<=\S)$|^[^\[\]\"\s]$")


def item(path: str, key: str) -> str:
    """`path[key]`; a key with brackets, quotes or edge spaces is written as a JSON string."""
    plain = key.isprintable() and _PLAIN_KEY.match(key)
    shown = key if plain else json.dumps(key, ensure_ascii=False)
    return f"{path}[{shown}]"


def field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def parse(path: str) -> list[tuple[str, str]]:
    """`a[x].b` as `[("field", "a"), ("key", "x"), ("field", "b")]`."""
    parts: list[tuple[str, str]] = []
    position = 0
    while position < len(path):
        char = path[position]
        if char == "[" and path.startswith('"', position + 1):
            key, end = _DECODER.raw_decode(path, position + 1)
            if not path.startswith("]", end):
                raise ValueError(f"no `]` after the key at {end}")
            parts.append(("key", key))
            position = end + 1
        elif char == "[":
            end = path.index("]", position)
            parts.append(("key", path[position + 1 : end]))
            position = end + 1
        elif char == ".":
            position += 1
        else:
            end = position
            while end < len(path) and path[end] not in ".[":
                end += 1
            parts.append(("field", path[position:end]))
            position = end
    return parts


class NoSuchElement(LookupError):
    pass


def resolve(root: Any, path: str) -> Any:
    """The element a path names; `NoSuchElement` when there is none."""
    current = root
    try:
        for kind, name in parse(path):
            if kind == "field":
                if isinstance(current, BaseModel) and name in type(current).model_fields:
                    current = getattr(current, name)
                elif isinstance(current, Mapping) and name in current:
                    current = current[name]
                else:
                    raise NoSuchElement(path)
            elif isinstance(current, Mapping):
                current = current[name]
            elif isinstance(current, Sequence) and not isinstance(current, str):
                current = current[element_keys(current).index(name)]
            else:
                raise NoSuchElement(path)
    except (KeyError, ValueError) as exc:
        raise NoSuchElement(path) from exc
    return current
