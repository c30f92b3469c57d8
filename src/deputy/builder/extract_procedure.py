"""One procedure from the readings of its section: steps in a runnable order, slots, exits.

Readings come in document order, but a document states a precondition before it says which
details to collect ("An order can only be cancelled if its status is 'pending'. The user needs
to confirm the order id..."). Steps are therefore emitted in document order *as far as their
needs allow*: before a step, whatever it needs is emitted first. A check on an entity ("an
order") needs that entity's id slot and, when a read tool fetches it (`get_order_details`), the
lookup; a tool call needs a slot for each argument (asked where the document asks, else just
before the call). A write or irreversible call always follows a `confirm` step (except a tool
that hands the conversation to a person); the document's confirmation sentence, or the global
one, is its provenance.

Shapes:
- check: `check` (then → the next step) followed by a refusal `end` with exit
  `refused_<reason>` ("If X, deny" swaps the branches). A refusal under the policy is an exit
  of outcome `resolved`: `deputy.runtime.outcomes` bills and evaluates the last procedure exit,
  and a correct refusal fully answers the request; `abandoned` is for customers who leave,
  `escalated` for hand-offs;
- conditional hand-off: `check` → (the hand-off tool) → `handoff`, else on;
- the action: `confirm` (declined → `end` exit `declined`, resolved) → `call_tool` → `end`
  exit `completed` saying what the document says happens after confirmation.
Every step carries provenance: its sentence, else the tool description it came from, else the
procedure's section.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from deputy.builder.extract_read import Reading, SlotPhrase, quoted, to_customer
from deputy.builder.extract_slots import (
    head_phrase,
    label_of,
    make_slot,
    matching_parameter,
    parameter_slot,
    slot_id,
)
from deputy.builder.extract_types import BuiltProcedure, ProcedurePlan
from deputy.builder.rules import unique_id
from deputy.builder.sources import ToolDescription
from deputy.builder.tool_match import ACTION_VERBS, ToolMatcher, is_handoff_tool, terms
from deputy.domain.spec import Exit, OutcomeKind, Procedure, Provenance, Slot, Step
from deputy.domain.spec.paths import item

_DECLINED = "\x00declined"
_FILLER = frozenset(
    re.split(r"\s+", "a an the is are was were be its it their his her of to in on at has have")
)


@dataclass
class _Builder:
    plan: ProcedurePlan
    matcher: ToolMatcher
    steps: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    filled: set[str] = field(default_factory=set)
    pending: dict[str, tuple[str | None, Provenance]] = field(default_factory=dict)
    exits: dict[str, Exit] = field(default_factory=dict)
    used: dict[str, list[str]] = field(default_factory=dict)
    waiting: list[tuple[int, str]] = field(default_factory=list)
    lookups: set[str] = field(default_factory=set)
    confirm_extra: list[str] = field(default_factory=list)
    confirm_provenance: Provenance | None = None
    outcome: list[str] = field(default_factory=list)
    outcome_provenance: Provenance | None = None
    calls: list[str] = field(default_factory=list)
    terminated: bool = False

    # ---- steps, slots, exits ------------------------------------------------------------

    def add(self, base: str, provenance: Provenance, source: str | None, **kw: Any) -> str:
        """Append a step; steps waiting for "the next step" go to this one."""
        step_id = unique_id(slot_id(base), {s["id"] for s in self.steps})
        for index, name in self.waiting:
            self.steps[index][name] = step_id
        self.waiting.clear()
        self.steps.append({"id": step_id, "provenance": provenance, **kw})
        if source is not None:
            path = item(f"procedures[{self.plan.id}].steps", step_id)
            self.used.setdefault(source, []).append(path)
        return step_id

    def wait(self, index: int, name: str) -> None:
        self.waiting.append((index, name))

    def exit(self, exit_id: str, outcome: OutcomeKind, description: str) -> str:
        self.exits.setdefault(exit_id, Exit(id=exit_id, outcome=outcome, description=description))
        return exit_id

    def declare(self, phrase: SlotPhrase, provenance: Provenance, source: str | None) -> None:
        """A detail the document asks for: declared now, asked when first needed (or in
        document order, by `flush_asks`)."""
        label = head_phrase(phrase.phrase)
        parameter = matching_parameter(label, self.plan.action)
        slot = parameter or slot_id(label)
        if slot == self.plan.context_slot:
            return
        existing = self.slots.get(slot)
        if existing is None or (phrase.values and not existing.values):
            self.slots[slot] = make_slot(
                slot,
                description=phrase.phrase,
                values=phrase.values,
                tool=self.plan.action if parameter else None,
                parameter=parameter,
            )
        if slot not in self.filled:
            self.pending.setdefault(slot, (source, provenance))

    def ask(self, slot: str) -> None:
        source, provenance = self.pending.pop(slot)
        declared = self.slots[slot]
        text = f"Could you tell me the {label_of(declared)}?"
        if declared.values:
            listed = ", ".join(f"'{value}'" for value in declared.values)
            text = f"Could you tell me the {label_of(declared)}? It can be one of: {listed}."
        self.add(f"ask_{slot}", provenance, source, kind="ask", slot=slot, text=text)
        self.filled.add(slot)

    def ensure(self, slot: str, tool: ToolDescription | None, parameter: str | None = None) -> None:
        """Make sure `slot` is filled before the next step: ask for it now if needed.
        `parameter` is the tool parameter it fills (default: the slot's own name)."""
        if slot in self.filled or slot == self.plan.context_slot:
            return
        if slot not in self.pending:
            if slot not in self.slots:
                self.slots[slot] = make_slot(slot, tool=tool, parameter=parameter or slot)
            origin = tool.anchor if tool is not None else self.plan.anchor
            self.pending[slot] = (None, origin.provenance())
        self.ask(slot)

    def flush_asks(self, sources: Sequence[str] | None) -> None:
        """Ask the pending slots from `sources` (None: all of them) now."""
        for slot, (source, _) in list(self.pending.items()):
            if sources is None or source in sources:
                self.ask(slot)

    # ---- drafts -------------------------------------------------------------------------------

    def arguments(self, tool: ToolDescription) -> dict[str, JsonValue]:
        """Parameter → `{slot}` for the required parameters and those a known slot fills."""
        wanted = set(self.slots) | set(self.pending)
        wanted.add(self.plan.context_slot or "")
        return {
            name: f"{{{parameter_slot(name)}}}"
            for name in tool.parameter_names
            if name in tool.required or parameter_slot(name) in wanted
        }

    def call(self, tool: ToolDescription, provenance: Provenance, source: str | None) -> None:
        arguments = self.arguments(tool)
        for name in arguments:
            self.ensure(parameter_slot(name), tool, name)
        if tool.effect != "read" and not is_handoff_tool(tool):
            self.confirm(tool, arguments)
        extra: dict[str, Any] = {}
        if tool.effect == "read":
            noun = [t for t in terms(tool.name) if t not in ACTION_VERBS and t != "detail"]
            extra["save_as"] = slot_id("_".join(noun) or "result")
            self.filled.add(extra["save_as"])
        self.add(
            f"call_{tool.name}",
            provenance,
            source,
            kind="call_tool",
            tool=tool.name,
            arguments=arguments,
            **extra,
        )
        self.calls.append(tool.name)

    def confirm(self, tool: ToolDescription, arguments: dict[str, JsonValue]) -> None:
        """A confirmation listing what the customer gave (the call's arguments first)."""
        context = self.plan.context_slot
        asked = [s["slot"] for s in self.steps if s["kind"] == "ask"]
        filled = [parameter_slot(name) for name in arguments]
        shown = [n for n in dict.fromkeys([*filled, *asked]) if n != context]
        details = [f"{n.replace('_', ' ')} {{{n}}}" for n in shown]
        title = to_customer(self.plan.title)
        text = f"To confirm, I will {title[:1].lower()}{title[1:]}"
        if details:
            text += " with " + ", ".join(details)
        if context and context not in filled:
            text += f" on your account {{{context}}}"
        text += "."
        for extra in self.confirm_extra:
            text += f" Please also confirm that {extra.rstrip('.')}."
        text += " Shall I go ahead (yes/no)?"
        self.exit("declined", "resolved", "The customer decided not to go ahead.")
        provenance = self.confirm_provenance or tool.anchor.provenance()
        self.add("confirm", provenance, None, kind="confirm", text=text, on_decline=_DECLINED)

    def entity_slot(self, noun: str) -> str | None:
        wanted = set(terms(noun)) | {"id"}
        action = self.plan.action.parameter_names if self.plan.action else ()
        return next((n for n in [*self.slots, *action] if set(terms(n)) == wanted), None)

    def lookup(self, noun: str, slot: str) -> None:
        tool = self.matcher.lookup(noun, slot)
        if tool is None or noun in self.lookups:
            return
        self.lookups.add(noun)
        self.add(
            f"get_{slot_id(noun)}",
            tool.anchor.provenance(),
            None,
            kind="call_tool",
            tool=tool.name,
            arguments={slot: f"{{{slot}}}"},
            save_as=slot_id(noun),
        )
        self.filled.add(slot_id(noun))
        self.calls.append(tool.name)

    def check(self, reading: Reading, provenance: Provenance) -> None:
        condition = reading.condition
        if reading.noun:
            slot = self.entity_slot(reading.noun)
            if slot is not None:
                self.ensure(slot, self.plan.action)
                self.lookup(reading.noun, slot)
                condition = f"For {reading.noun} {{{slot}}}: {condition[:1].lower()}{condition[1:]}"
        words = [w for w in re.findall(r"[a-z0-9]+", reading.text.lower()) if w not in _FILLER]
        reason = slot_id(quoted_value(reading.text) or " ".join(words[-2:]) or "condition")[:40]
        prefix = "refused_" if reading.refuse_when_true else "refused_not_"
        exit_id = self.exit(
            unique_id(f"{prefix}{reason}", ()),
            "resolved",
            f"Refused under the policy: {reading.clause}",
        )
        clause = reading.clause.rstrip(".")
        refusal = f"I'm sorry, I can't do that: {clause[:1].lower()}{clause[1:]}."
        key = reading.item.key
        index = len(self.steps)
        self.add(f"check_{reason}", provenance, key, kind="check", condition=condition, then="")
        refuse = self.add(
            f"refuse_{reason}", provenance, key, kind="end", exit=exit_id, text=refusal
        )
        if reading.refuse_when_true:
            self.steps[index]["then"] = refuse
            self.steps[index]["otherwise"] = ""
            self.wait(index, "otherwise")
        else:
            self.wait(index, "then")

    def handoff(self, reading: Reading, provenance: Provenance, *, conditional: bool) -> None:
        """A hand-off: `check` → (the hand-off tool) → `handoff`, else on; unconditional, the
        procedure ends there."""
        self.exit("escalated", "escalated", "Handed to a human.")
        key = reading.item.key
        named = self.matcher.get(reading.tool) if reading.tool else None
        tool = named or self.plan.handoff.tool
        index = len(self.steps)
        if conditional:
            condition = reading.condition or f"Does this need a human: {reading.item.text}"
            self.add("needs_human", provenance, key, kind="check", condition=condition, then="")
        if tool is not None:
            self.call(tool, provenance, key)
        message = reading.text or self.plan.handoff.message
        queue = {"queue": reading.queue[:100]} if reading.queue else {}
        self.add("hand_off", provenance, key, kind="handoff", text=message, **queue)
        if conditional:
            self.steps[index]["then"] = self.steps[index + 1]["id"]
            self.steps[index]["otherwise"] = ""
            self.wait(index, "otherwise")
        else:
            self.terminated = True


def quoted_value(text: str) -> str:
    found = quoted(text)
    return found[0] if found else ""


def _prepare(builder: _Builder) -> tuple[list[str], list[str]]:
    """First pass: declare the slots the document asks for, and gather the confirmation and
    outcome sentences (they shape steps emitted later). Returns their item keys."""
    plan = builder.plan
    confirms: list[str] = []
    outcomes: list[str] = []
    outcome_blocks: set[str] = set()
    for reading in plan.readings:
        provenance = reading.item.anchor.provenance()
        key = reading.item.key
        if reading.kind == "ask":
            for phrase in reading.slots:
                builder.declare(phrase, provenance, key)
        elif reading.kind == "confirm":
            confirms.append(key)
            builder.confirm_provenance = provenance
            if reading.text:
                builder.confirm_extra.append(reading.text)
        elif reading.kind == "outcome":
            outcomes.append(key)
            outcome_blocks.add(key.split(".")[0])
            builder.outcome.append(to_customer(reading.text))
            builder.outcome_provenance = builder.outcome_provenance or provenance
        elif reading.kind == "note" and key.split(".")[0] in outcome_blocks:
            outcomes.append(key)
            builder.outcome.append(to_customer(reading.item.text))
    for phrase, anchor in plan.extra_slots:
        builder.declare(phrase, anchor.provenance(), None)
    return confirms, outcomes


def _finish(builder: _Builder, outcomes: Sequence[str]) -> None:
    """The remaining asks, the action (when no step called it yet) and the `completed` end."""
    plan = builder.plan
    builder.flush_asks(None)
    if plan.action is not None and plan.action.name not in builder.calls:
        builder.call(plan.action, plan.action.anchor.provenance(), None)
    said = " ".join(builder.outcome) or f"Done: {plan.title[:1].lower()}{plan.title[1:]}."
    completed = builder.exit("completed", "resolved", "The request was carried out.")
    provenance = builder.outcome_provenance or plan.anchor.provenance()
    done = builder.add("done", provenance, None, kind="end", exit=completed, text=said)
    for key in outcomes:
        builder.used.setdefault(key, []).append(item(f"procedures[{plan.id}].steps", done))


def build_procedure(plan: ProcedurePlan, matcher: ToolMatcher) -> BuiltProcedure:
    """The procedure `plan` describes (see the module docstring for its shape)."""
    builder = _Builder(plan, matcher)
    if plan.confirm_anchor is not None:
        builder.confirm_provenance = plan.confirm_anchor.provenance()
    confirms, outcomes = _prepare(builder)
    actionable = [r for r in plan.readings if r.kind in ("check", "handoff", "call", "say")]
    for reading in plan.readings:
        if builder.terminated:
            break
        provenance = reading.item.anchor.provenance()
        key = reading.item.key
        if reading.kind == "check":
            builder.check(reading, provenance)
        elif reading.kind == "ask":
            builder.flush_asks((key,))
        elif reading.kind == "handoff":
            last = reading is actionable[-1] and plan.action is None
            builder.handoff(reading, provenance, conditional=bool(reading.condition) or not last)
        elif reading.kind == "call" and (tool := matcher.get(reading.tool or "")) is not None:
            builder.call(tool, provenance, key)
        elif reading.kind == "say":
            builder.add("say", provenance, key, kind="say", text=reading.text)
    if not builder.terminated:
        _finish(builder, outcomes)
    if "declined" in builder.exits:
        text = "All right, I have not changed anything."
        provenance = builder.confirm_provenance or plan.anchor.provenance()
        declined = builder.add("declined", provenance, None, kind="end", exit="declined", text=text)
        for step in builder.steps:
            if step.get("on_decline") == _DECLINED:
                step["on_decline"] = declined
        confirm_paths = [
            item(f"procedures[{plan.id}].steps", s["id"])
            for s in builder.steps
            if s["kind"] == "confirm"
        ]
        for key in confirms:
            builder.used.setdefault(key, []).extend(confirm_paths)
    slots = list(builder.slots.values())
    if plan.context_slot:
        context = Slot(id=plan.context_slot, source="context", description=plan.context_description)
        slots.insert(0, context)
    procedure = Procedure(
        id=plan.id,
        title=plan.title[:200],
        when=plan.when[:2000],
        slots=tuple(slots),
        steps=tuple(Step(**step) for step in builder.steps),
        exits=tuple(builder.exits.values()),
        provenance=plan.anchor.provenance(),
    )
    used = {key: tuple(dict.fromkeys(paths)) for key, paths in builder.used.items()}
    return BuiltProcedure(procedure, used, tuple(dict.fromkeys(builder.calls)))
