"""The semantic diff between two AgentSpecs: what a reviewer approves.

Elements of lists are matched by their key (ids, tool names, limit arguments: see
`deputy.domain.spec.paths`), so a moved or edited step is one change, not a removal and an
addition; each changed field of a matched element is its own change, with the values before and
after. Unordered lists (policy `applies_to`, `forbids_tools`, guardrail topics, a limit's
`one_of`...) are compared as sets; the order of procedures, of a procedure's steps and of
`languages` matters and is reported. A tool's `binding` and `parameters` and each step argument
are compared whole.

Changes that widen what the agent may do are flagged (`widens_permissions`, with the reason):
a new write or irreversible tool, or a procedure newly calling one; any change of a tool's effect
tier; a limit removed or loosened (a higher maximum, a lower minimum, more allowed values);
more calls per conversation or more retries; a non-read tool bound to another operation; a policy
removed, applying to fewer procedures, or forbidding fewer tools; a confirm step removed; a
weaker guardrail preset or a guardrail check turned off; a forbidden topic dropped; the runtime
mode changing from guided to reasoning; autonomy set to `auto_with_rollback`; a route to another
agent added or retargeted (that agent, with its own tools and data, gets the conversation)."""

from __future__ import annotations

import json
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, JsonValue

from deputy.domain.spec.diff_text import describe, render_diff_text, show
from deputy.domain.spec.model import AgentSpec
from deputy.domain.spec.paths import element_key, element_keys, field, item, parse

__all__ = ["ChangeKind", "DiffArea", "SpecChange", "SpecDiff", "diff_specs", "render_diff_text"]

ChangeKind = Literal["added", "removed", "changed"]
DiffArea = Literal[
    "format",
    "name",
    "goal",
    "persona",
    "languages",
    "mode",
    "procedure",
    "step",
    "slot",
    "exit",
    "policy",
    "tool",
    "tool_permission",
    "route",
    "knowledge",
    "guardrails",
    "channels",
    "escalation",
    "outcomes",
    "autonomy",
    "slos",
]
_TOP_AREAS: frozenset[str] = frozenset(get_args(DiffArea))
_PROCEDURE_PARTS: dict[str, DiffArea] = {"steps": "step", "slots": "slot", "exits": "exit"}
_PERMISSION_FIELDS = frozenset({"effect", "limits", "max_calls_per_conversation", "retries"})
_WHOLE = frozenset({"binding", "parameters"})  # compared as one value
_ORDERED = frozenset({"languages", "steps", "procedures"})
_PRESET_RANK = {"minimal": 0, "standard": 1, "regulated": 2}
_CHECKS = frozenset({"mask_pii", "require_grounding", "detect_prompt_injection"})


class SpecChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ChangeKind
    area: DiffArea
    path: str
    before: JsonValue = None
    after: JsonValue = None
    summary: str
    widens_permissions: bool = False
    widens_because: str | None = None


class SpecDiff(BaseModel):
    model_config = ConfigDict(frozen=True)

    changes: tuple[SpecChange, ...] = ()

    @property
    def widens_permissions(self) -> bool:
        return any(change.widens_permissions for change in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: `1`, `1.0` and `true` differ."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def area_of(path: str) -> DiffArea:
    """Which part of the spec a path is in (the first field, refined for lists of parts)."""
    parts = parse(path)
    top, inner = parts[0][1], parts[2][1] if len(parts) > 2 else ""
    if top == "procedures":
        return _PROCEDURE_PARTS.get(inner, "procedure")
    if top == "policies":
        return "policy"
    if top == "routes":
        return "route"
    if top == "tools":
        return "tool_permission" if inner in _PERMISSION_FIELDS else "tool"
    assert top in _TOP_AREAS, path
    return cast(DiffArea, top)


class _Differ:
    def __init__(self, old: AgentSpec, new: AgentSpec) -> None:
        self.old = old
        self.new = new
        self.changes: list[SpecChange] = []

    def emit(self, kind: ChangeKind, path: str, before: Any, after: Any) -> None:
        why = _widening(self.old, self.new, kind, path, before, after)
        self.changes.append(
            SpecChange(
                kind=kind,
                area=area_of(path),
                path=path,
                before=before,
                after=after,
                summary=describe(kind, path, before, after),
                widens_permissions=why is not None,
                widens_because=why,
            )
        )

    def leaf(self, path: str, before: Any, after: Any) -> None:
        kind: ChangeKind = "added" if before is None else "removed" if after is None else "changed"
        self.emit(kind, path, before, after)

    def walk(self, path: str, name: str, old: Any, new: Any) -> None:
        if _same(old, new):
            return
        if name in _WHOLE:
            self.leaf(path, old, new)
        elif isinstance(old, dict) and isinstance(new, dict):
            if name == "arguments":  # free-form: one change per argument
                for key in [*old, *(k for k in new if k not in old)]:
                    if not _same(old.get(key), new.get(key)):
                        self.leaf(item(path, key), old.get(key), new.get(key))
                return
            for key in [*old, *(k for k in new if k not in old)]:
                self.walk(field(path, key), key, old.get(key), new.get(key))
        elif isinstance(old, list) and isinstance(new, list):
            if all(isinstance(element, dict) for element in [*old, *new]):
                self.keyed(path, name, old, new)
            elif name in _ORDERED:
                self.leaf(path, old, new)
            else:
                self.unordered(path, old, new)
        else:
            self.leaf(path, old, new)

    def keyed(self, path: str, name: str, old: list[Any], new: list[Any]) -> None:
        before = dict(zip(element_keys(old), old, strict=True))
        after = dict(zip(element_keys(new), new, strict=True))
        for key, value in before.items():
            if key not in after:
                self.emit("removed", item(path, key), value, None)
        for key, value in after.items():
            if key not in before:
                self.emit("added", item(path, key), None, value)
        for key, value in before.items():
            if key in after:
                self.walk(item(path, key), "", value, after[key])
        old_order = [key for key in before if key in after]
        new_order = [key for key in after if key in before]
        if name in _ORDERED and old_order != new_order:
            self.emit("changed", path, old_order, new_order)

    def unordered(self, path: str, old: list[Any], new: list[Any]) -> None:
        before = {json.dumps(value, sort_keys=True): value for value in old}
        after = {json.dumps(value, sort_keys=True): value for value in new}
        for key, value in before.items():
            if key not in after:
                self.emit("removed", item(path, element_key(value)), value, None)
        for key, value in after.items():
            if key not in before:
                self.emit("added", item(path, element_key(value)), None, value)


def diff_specs(old: AgentSpec, new: AgentSpec) -> SpecDiff:
    """Every semantic change from `old` to `new`, in the order of the spec's fields."""
    differ = _Differ(old, new)
    differ.walk("", "", old.model_dump(mode="json"), new.model_dump(mode="json"))
    return SpecDiff(changes=tuple(differ.changes))


# ---- what widens the agent's permissions ----------------------------------------------------


def _effect(spec: AgentSpec, name: Any) -> str | None:
    tool = spec.tool(name) if isinstance(name, str) else None
    return tool.effect if tool else None


def _acting_call(spec: AgentSpec, step: Any) -> str | None:
    """`tool (effect)` when a step (as data) calls a write or irreversible tool."""
    if isinstance(step, dict) and step.get("kind") == "call_tool":
        effect = _effect(spec, step.get("tool"))
        if effect in ("write", "irreversible"):
            return f"`{step.get('tool')}` ({effect})"
    return None


def _looser_limit(last: str, kind: ChangeKind, before: Any, after: Any) -> str | None:
    if last == "max" and before is not None and (after is None or after > before):
        return "raises or removes a maximum"
    if last == "min" and before is not None and (after is None or after < before):
        return "lowers or removes a minimum"
    if last == "one_of" and kind == "removed":
        return "removes a list of allowed values"
    return None


def _widening(
    old: AgentSpec, new: AgentSpec, kind: ChangeKind, path: str, before: Any, after: Any
) -> str | None:
    parts = parse(path)
    names = [name for part, name in parts if part == "field"]
    keys = [name for part, name in parts if part == "key"]
    top, last = names[0], names[-1]
    ends_in_key = parts[-1][0] == "key"
    if "limits" in names:
        at = names.index("limits")
        if ends_in_key and names[-1] == "limits" and kind == "removed":
            return f"removes the limit `{keys[-1]}`"
        if len(names) > at + 1 and names[at + 1] == "one_of" and ends_in_key:
            return f"allows one more value, {show(after)}" if kind == "added" else None
        return _looser_limit(last, kind, before, after) if len(names) == at + 2 else None
    if top == "tools":
        tool = keys[0]
        if len(names) == 1 and kind == "added" and after["effect"] != "read":
            return f"adds the {after['effect']} tool `{tool}`"
        if last == "effect":
            return f"changes the effect of `{tool}` from {before} to {after}"
        if last == "max_calls_per_conversation" and before is not None:
            return "allows more calls" if after is None or after > before else None
        if last == "retries" and after > before:
            return f"retries `{tool}` up to {after} times"
        if last == "binding" and _effect(new, tool) != "read":
            return f"binds the {_effect(new, tool)} tool `{tool}` to another operation"
        return None
    if top == "policies":
        policy = keys[0]
        if len(names) == 1 and kind == "removed":
            return f"removes policy `{policy}`"
        if last == "forbids_tools" and kind == "removed":
            return f"policy `{policy}` no longer forbids `{before}`"
        if last == "applies_to":
            scope = next(p.applies_to for p in new.policies if p.id == policy)
            was = next(p.applies_to for p in old.policies if p.id == policy)
            if (kind == "removed" and scope) or (kind == "added" and not was):
                return f"policy `{policy}` applies to fewer procedures"
        return None
    if top == "procedures":
        if len(names) == 1 and kind == "added":
            calls = [c for step in after["steps"] if (c := _acting_call(new, step))]
            return f"adds a procedure that calls {', '.join(calls)}" if calls else None
        if names[-1] == "steps" and ends_in_key:
            if kind == "added" and (call := _acting_call(new, after)):
                return f"the procedure now calls {call}"
            if kind == "removed" and isinstance(before, dict) and before.get("kind") == "confirm":
                return f"removes the confirmation step `{keys[-1]}`"
            return None
        if (
            last == "tool"
            and kind != "removed"
            and _effect(new, after) in ("write", "irreversible")
        ):
            return f"the step now calls `{after}` ({_effect(new, after)})"
        if last == "kind" and before == "confirm":
            return f"step `{keys[-1]}` no longer asks for confirmation"
        return None
    if top == "routes":
        if len(names) == 1 and kind == "added":
            return f"passes conversations to the agent {show(after['agent'])} (route `{keys[0]}`)"
        if last == "agent" and kind != "removed":
            return f"route `{keys[0]}` now passes conversations to the agent {show(after)}"
        return None
    if top == "guardrails":
        if last == "preset" and _PRESET_RANK[after] < _PRESET_RANK[before]:
            return f"weakens the guardrail preset from {before} to {after}"
        if last in _CHECKS and (before is True or (before is None and after is False)):
            return f"turns off `{last}`"
        if last == "forbidden_topics" and kind == "removed":
            return f"no longer forbids the topic {show(before)}"
        return None
    if top == "mode" and old.runtime_mode == "guided" and new.runtime_mode == "reasoning":
        return "the model decides each step (reasoning mode) instead of following the procedure"
    if top == "autonomy" and last == "mode" and after == "auto_with_rollback":
        return "new versions deploy without a reviewer (auto_with_rollback)"
    return None
