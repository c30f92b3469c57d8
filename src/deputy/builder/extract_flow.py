"""A procedure from a structured outline: agent guidelines (ABCD subflows), task flowcharts
(STAR) and flows learned from transcripts, whose items already say what the agent does.

Items map by their hint: a `reply` is a `say` of its text (the business's own wording); a
`question` an `ask` (the slot named after its label, "apartment_ask_day" → `day`, or after what
it asks); an `action` a `call_tool` when its action name or text matches a tool (after asks
for the tool's required parameters and, for a write, a confirmation), else it is left out and
reported; `rule` items are policies (`deputy.builder.extract_rules`), other items notes.

Branches are followed: an item's `("next", key)` goes to that item; outcome branches ("yes" /
"no", "query_success" / "query_failure") become `check` steps asking which outcome happened, the
last outcome being the `otherwise`; an item without branches ends the flow (exit `completed`).
Items no branch reaches are left out. An outline without branches runs in item order."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deputy.builder.extract_slots import make_slot, parameter_slot, slot_id
from deputy.builder.extract_types import BuiltProcedure, ProcedurePlan
from deputy.builder.rules import unique_id
from deputy.builder.sources import OutlineItem, ToolDescription
from deputy.builder.tool_match import ToolMatcher, is_handoff_tool, terms
from deputy.domain.spec import Exit, Procedure, Slot, Step
from deputy.domain.spec.paths import item as path_item

_DONE = "\x00done"
_DECLINED = "\x00declined"
_QUESTION = re.compile(
    r"(?:what|which)(?:'s| is| are)? (?:your|the) (?P<what>[\w ]{2,40}?)\??$"
    r"|(?:give|tell) me (?:your|the) (?P<what2>[\w ]{2,40}?)(?:,|\?|$)",
    re.IGNORECASE,
)


def _literal(text: str) -> str:
    """Material wording as a template that inserts nothing: its braces are doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def _order(items: Sequence[OutlineItem]) -> list[OutlineItem]:
    """Items reachable from the first one along branches (all of them, in order, when no item
    has branches)."""
    if not any(entry.branches for entry in items):
        return list(items)
    by_key = {entry.key: entry for entry in items}
    seen: set[str] = set()
    queue = deque([items[0].key]) if items else deque()
    while queue:
        key = queue.popleft()
        if key in seen or key not in by_key:
            continue
        seen.add(key)
        queue.extend(target for _, target in by_key[key].branches)
    return [entry for entry in items if entry.key in seen]


def _slot_name(entry: OutlineItem) -> str:
    label = entry.action or ""
    if "_ask_" in f"_{label}_":
        return slot_id(re.split(r"(?:^|_)ask_", label, maxsplit=1)[-1])
    found = _QUESTION.search(entry.text.strip())
    if found:
        return slot_id(found.group("what") or found.group("what2") or "")
    words = [w for w in terms(entry.text) if len(w) > 2][:3]
    return slot_id("_".join(words) or entry.key)


@dataclass
class _Flow:
    plan: ProcedurePlan
    matcher: ToolMatcher
    steps: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    used: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    exits: dict[str, Exit] = field(default_factory=dict)
    confirmed: bool = False

    def new_step(self, base: str, entry: OutlineItem | None, **kw: Any) -> str:
        """Append a step (its provenance: the item, else the section) and return its id."""
        step_id = unique_id(slot_id(base), {s["id"] for s in self.steps})
        anchor = entry.anchor if entry is not None else self.plan.anchor
        self.steps.append({"id": step_id, "provenance": anchor.provenance(), **kw})
        if entry is not None:
            path = path_item(f"procedures[{self.plan.id}].steps", step_id)
            self.used.setdefault(entry.key, []).append(path)
        return step_id

    def tool_for(self, entry: OutlineItem) -> ToolDescription | None:
        named = self.matcher.named(entry.action or "") or self.matcher.named(entry.text)
        if named is not None:
            return named
        match = self.matcher.best(f"{(entry.action or '').replace('-', ' ')} {entry.text}")
        return match.tool if match is not None else None

    def block(self, entry: OutlineItem) -> None:
        start = len(self.steps)
        if entry.hint == "question":
            slot = _slot_name(entry)
            self.slots.setdefault(slot, make_slot(slot, description=entry.text))
            self.new_step(f"ask_{slot}", entry, kind="ask", slot=slot, text=_literal(entry.text))
        elif entry.hint == "action":
            tool = self.tool_for(entry)
            if tool is None:
                self.missing.append(entry.action or entry.text)
            else:
                self.call(entry, tool)
        elif entry.hint == "reply" or (entry.hint is None and entry.text):
            text = _literal(entry.text)
            self.new_step(f"say_{entry.action or entry.key}", entry, kind="say", text=text)
        if len(self.steps) > start:
            self.first[entry.key] = self.steps[start]["id"]
            self.last[entry.key] = len(self.steps) - 1

    def call(self, entry: OutlineItem, tool: ToolDescription) -> None:
        context = self.plan.context_slot
        arguments = {name: f"{{{parameter_slot(name)}}}" for name in tool.required}
        for name in tool.required:
            slot = parameter_slot(name)
            if slot != context:
                self.slots.setdefault(slot, make_slot(slot, tool=tool, parameter=name))
                text = f"Could you tell me the {slot.replace('_', ' ')}?"
                self.new_step(f"ask_{slot}", entry, kind="ask", slot=slot, text=text)
        if tool.effect != "read" and not is_handoff_tool(tool):
            listed = ", ".join(f"{n.replace('_', ' ')} {{{parameter_slot(n)}}}" for n in arguments)
            text = f"To confirm: {_literal(entry.text).rstrip('.')}" + (
                f" ({listed})" if listed else ""
            )
            self.new_step("confirm", entry, kind="confirm", text=f"{text}. Shall I go ahead?")
            self.steps[-1]["on_decline"] = _DECLINED
            self.confirmed = True
        extra = {"save_as": slot_id(tool.name)} if tool.effect == "read" else {}
        self.new_step(
            f"call_{tool.name}",
            entry,
            kind="call_tool",
            tool=tool.name,
            arguments=arguments,
            **extra,
        )
        self.calls.append(tool.name)

    def target(
        self, key: str, by_key: dict[str, OutlineItem], seen: frozenset[str] = frozenset()
    ) -> str:
        """The first step of item `key`, or of what follows it when it made no step."""
        if key in self.first:
            return self.first[key]
        entry = by_key.get(key)
        if entry is None or key in seen or not entry.branches:
            return _DONE
        return self.target(entry.branches[0][1], by_key, seen | {key})


def _wire(flow: _Flow, ordered: Sequence[OutlineItem], by_key: dict[str, OutlineItem]) -> None:
    """Point each item's last step where its branches go (see the module docstring). An item
    with several outcomes gets `check` steps (its only steps when it made none itself)."""
    checks: dict[str, list[str]] = {}
    for entry in ordered:
        labels = [label for label, _ in entry.branches if label != "next"]
        if len(labels) < 2 or any(label == "next" for label, _ in entry.branches):
            continue
        asked = (
            "the customer answer" if entry.hint == "question" else f"{entry.action or 'it'} give"
        )
        checks[entry.key] = [
            flow.new_step(
                f"check_{entry.key}_{label}",
                entry,
                kind="check",
                condition=f"Did {asked} '{label}'?",
                then="",
            )
            for label in labels[:-1]
        ]
        flow.first.setdefault(entry.key, checks[entry.key][0])
    by_id = {step["id"]: step for step in flow.steps}
    for entry in ordered:
        nexts = [target for label, target in entry.branches if label == "next"]
        outcomes = [(label, target) for label, target in entry.branches if label != "next"]
        if entry.key in checks:
            ids = checks[entry.key]
            for index, ((_, target), check) in enumerate(zip(outcomes, ids, strict=False)):
                by_id[check]["then"] = flow.target(target, by_key)
                last = index + 1 == len(ids)
                following = flow.target(outcomes[-1][1], by_key) if last else ids[index + 1]
                by_id[check]["otherwise"] = following
        if entry.key not in flow.last:
            continue
        tail = flow.steps[flow.last[entry.key]]
        if entry.key in checks:
            tail["next"] = checks[entry.key][0]
        elif nexts or outcomes:
            tail["next"] = flow.target((nexts or [outcomes[0][1]])[0], by_key)
        else:
            tail["next"] = _DONE


def build_flow(
    plan: ProcedurePlan, items: Sequence[OutlineItem], matcher: ToolMatcher
) -> tuple[BuiltProcedure, tuple[str, ...]]:
    """The procedure of a structured outline, and the actions no tool matched."""
    flow = _Flow(plan, matcher)
    ordered = _order(items)
    for entry in ordered:
        flow.block(entry)
    if any(entry.branches for entry in items):
        _wire(flow, ordered, {entry.key: entry for entry in items})
    flow.exits["completed"] = Exit(id="completed", outcome="resolved")
    done = flow.new_step("done", None, kind="end", exit="completed")
    declined = ""
    if flow.confirmed:
        flow.exits["declined"] = Exit(
            id="declined", outcome="resolved", description="The customer decided not to go ahead."
        )
        text = "All right, I have not done it."
        declined = flow.new_step("declined", None, kind="end", exit="declined", text=text)
    for step in flow.steps:
        for name in ("next", "then", "otherwise", "on_decline"):
            if step.get(name) == _DONE:
                step[name] = done
            elif step.get(name) == _DECLINED:
                step[name] = declined
    slots = list(flow.slots.values())
    if plan.context_slot and any(plan.context_slot in s.get("arguments", {}) for s in flow.steps):
        slots.insert(
            0, Slot(id=plan.context_slot, source="context", description=plan.context_description)
        )
    procedure = Procedure(
        id=plan.id,
        title=plan.title[:200],
        when=plan.when[:2000],
        slots=tuple(slots),
        steps=tuple(Step(**step) for step in flow.steps),
        exits=tuple(flow.exits.values()),
        provenance=plan.anchor.provenance(),
    )
    used = {key: tuple(paths) for key, paths in flow.used.items()}
    built = BuiltProcedure(procedure, used, tuple(dict.fromkeys(flow.calls)))
    return built, tuple(dict.fromkeys(flow.missing))
