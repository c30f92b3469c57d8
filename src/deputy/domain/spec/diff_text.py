"""A spec diff in words: one sentence per change, and the text a reviewer reads."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from deputy.domain.spec.paths import parse

if TYPE_CHECKING:
    from deputy.domain.spec.diff import SpecChange, SpecDiff

MARKERS = {"added": "+", "removed": "-", "changed": "~"}
WIDENS_MARKER = "!"
_NOUNS = {
    "procedures": "procedure",
    "steps": "step",
    "slots": "slot",
    "exits": "exit",
    "policies": "policy",
    "tools": "tool",
    "sources": "knowledge source",
    "rules": "escalation rule",
    "limits": "limit",
    "routes": "route",
}
_GOES_TO = frozenset({"next", "then", "otherwise", "on_decline"})


def show(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _pairs(path: str) -> list[tuple[str, str | None]]:
    """`a[x].b.c[y]` as `[("a", "x"), ("b", None), ("c", "y")]`."""
    pairs: list[tuple[str, str | None]] = []
    for kind, name in parse(path):
        if kind == "field":
            pairs.append((name, None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], name)
        else:
            pairs.append(("", name))
    return pairs


def _subject(pairs: list[tuple[str, str | None]]) -> str:
    """The innermost named element: "step `refund` of procedure `returns`", "limit `amount` of
    tool `refund`", "policy `cap`"."""
    named = [(name, key) for name, key in pairs if key is not None and name in _NOUNS]
    phrases = [f"{_NOUNS[name]} `{key}`" for name, key in named]
    if len(named) > 1 and (named[-1][0] == "limits" or named[-2][0] == "procedures"):
        return f"{phrases[-1]} of {phrases[-2]}"
    return phrases[-1] if phrases else ""


def _details(noun: str, value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    if noun == "step":
        target = value.get("tool") or value.get("slot") or value.get("exit")
        return f" ({value.get('kind')}{f' `{target}`' if target else ''})"
    if noun == "tool":
        return f" ({value.get('effect')}, {value.get('binding', {}).get('kind')})"
    if noun == "procedure":
        return f" ({value.get('title')})"
    if noun == "policy":
        return f": {show(value.get('text'), 60)}"
    if noun == "route":
        return f" (to {show(value.get('agent'))})"
    return ""


def describe(kind: str, path: str, before: Any, after: Any) -> str:
    """One sentence for one change."""
    pairs = _pairs(path)
    last_name, last_key = pairs[-1]
    if last_key is not None:  # an element of a list (or an argument) was added or removed
        parent = _subject(pairs[:-1])
        noun = _NOUNS.get(last_name)
        value = after if kind == "added" else before
        if noun is None:
            where = f"{parent}: " if parent else ""
            verb = "gains" if kind == "added" else "loses"
            return f"{where}`{last_name}` {verb} {show(value)}"
        if kind == "added":
            return (
                f"new {noun} `{last_key}`{_details(noun, value)}{f' in {parent}' if parent else ''}"
            )
        return f"{noun} `{last_key}` removed{f' from {parent}' if parent else ''}"
    subject = _subject(pairs)
    last_keyed = max((i for i, (_, key) in enumerate(pairs) if key is not None), default=-1)
    relative = ".".join(name for name, _ in pairs[last_keyed + 1 :])
    if last_name in _NOUNS:  # keyed lists change as a whole only when reordered
        order = f"{', '.join(map(str, before))} → {', '.join(map(str, after))}"
        return f"{last_name} {f'of {subject} ' if subject else ''}reordered: {order}"
    if last_name == "tool" and subject.startswith("step") and before and after:
        return f"{subject.split(' of ')[0]} now calls `{after}` instead of `{before}`"
    if last_name in _GOES_TO and subject.startswith("step") and before and after:
        return (
            f"{subject.split(' of ')[0]} now goes to `{after}` instead of `{before}` ({last_name})"
        )
    where = f"{subject}: " if subject else ""
    if kind == "added":
        return f"{where}`{relative}` set to {show(after)}"
    if kind == "removed":
        return f"{where}`{relative}` unset (was {show(before)})"
    return f"{where}`{relative}` changed from {show(before)} to {show(after)}"


def _line(change: SpecChange, *, flag: bool) -> str:
    mark = f"{WIDENS_MARKER} " if flag and change.widens_permissions else ""
    text = f"  {mark}{MARKERS[change.kind]} {change.path}: {change.summary}"
    if change.widens_permissions and change.widens_because:
        text += f"  [widens: {change.widens_because}]"
    return text


def render_diff_text(diff: SpecDiff) -> str:
    """The review text: permission-widening changes first, then every change by area."""
    if not diff.changes:
        return "No changes.\n"
    widening = [change for change in diff.changes if change.widens_permissions]
    count = len(diff.changes)
    header = f"{count} change{'s' if count != 1 else ''}"
    if widening:
        header += f", {len(widening)} widening what the agent may do"
    lines = [header + "."]
    if widening:
        lines += ["", f"{WIDENS_MARKER} Widens permissions (review these first):"]
        lines += [_line(change, flag=False) for change in widening]
    areas: dict[str, list[SpecChange]] = {}
    for change in diff.changes:
        areas.setdefault(change.area, []).append(change)
    for area, changes in areas.items():
        lines += ["", f"{area}:"]
        lines += [_line(change, flag=True) for change in changes]
    return "\n".join(lines) + "\n"
