"""Which procedures and policies a reasoning turn shows the model, and how they are rendered.

A spec can hold dozens of procedures; dumping all of them into every prompt costs tokens and
dilutes the model's attention. A turn shows the few whose title and trigger (`when`) share the
most words with what the customer said recently (BM25 over a tiny corpus), the procedures the
conversation is already in, and the procedures that produce a context value (the authenticated
user id) a shown procedure needs but the conversation does not know yet. Policies follow the
procedures: the global ones plus those scoped to a shown procedure."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from deputy.domain.spec import AgentSpec, Policy, Procedure, Step

TOP_PROCEDURES = 3
"""How many procedures ranked by relevance a turn shows (besides the ones it must show)."""
RELATIVE_CUTOFF = 0.4
"""A ranked procedure is shown only when it scores at least this share of the best one."""

_BM25_K1 = 1.2
_BM25_B = 0.75
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.split(
        r"\s+",
        "a an and are as at be before by can do does for from has have how i in is it its me my "
        "of on or our please should so that the their them they this to us want wants was we "
        "what when which who will with would you your customer customers",
    )
)


def words(text: str) -> list[str]:
    """Lower-case content words, plurals folded (`orders` → `order`, `replies` → `reply`)."""
    out: list[str] = []
    for word in _WORD.findall(text.lower().replace("_", " ")):
        if len(word) < 2 or word in _STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def rank_procedures(procedures: Sequence[Procedure], query: str) -> list[tuple[float, Procedure]]:
    """Procedures with a positive BM25 score of `query` over their id, title and `when`,
    best first (ties keep the spec's order)."""
    documents = [words(f"{p.id} {p.title} {p.when}") for p in procedures]
    if not documents:
        return []
    average = sum(len(d) for d in documents) / len(documents) or 1.0
    frequency = Counter(term for document in documents for term in set(document))
    terms = set(words(query))
    scored: list[tuple[float, int, Procedure]] = []
    for index, (procedure, document) in enumerate(zip(procedures, documents, strict=True)):
        counts = Counter(document)
        score = 0.0
        for term in terms & counts.keys():
            idf = math.log(1 + (len(documents) - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * len(document) / average)
            score += idf * tf * (_BM25_K1 + 1) / (tf + norm)
        if score > 0:
            scored.append((score, index, procedure))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(score, procedure) for score, _, procedure in scored]


@dataclass(frozen=True)
class Selection:
    """`required`: procedures the turn must show (in progress, prerequisites); `ranked`: the
    relevant ones, best first, which may be dropped from the tail to fit the context."""

    required: tuple[Procedure, ...]
    ranked: tuple[Procedure, ...]

    def procedures(self, ranked_kept: int | None = None) -> tuple[Procedure, ...]:
        ranked = self.ranked if ranked_kept is None else self.ranked[:ranked_kept]
        return self.required + ranked


def context_producers(spec: AgentSpec) -> dict[str, str]:
    """Tool name → the context slot its output fills (a `call_tool` step whose `save_as` is a
    slot some procedure declares with `source: context`, e.g. `find_user_id_by_email` →
    `user_id`)."""
    context_slots = {s.id for p in spec.procedures for s in p.slots if s.source == "context"}
    return {
        step.tool: step.save_as
        for p in spec.procedures
        for step in p.steps
        if step.kind == "call_tool" and step.tool and step.save_as in context_slots
    }


def _produces(procedure: Procedure, slot: str) -> bool:
    own = {s.id for s in procedure.slots if s.source == "context"}
    return slot not in own and any(s.save_as == slot for s in procedure.steps)


def select_procedures(
    spec: AgentSpec,
    query: str,
    *,
    pinned: Iterable[str] = (),
    known_context: Collection[str] = (),
    limit: int = TOP_PROCEDURES,
) -> Selection:
    """The procedures to show for `query` (the customer's recent messages): `pinned` ids (the
    conversation is in them), the top `limit` by relevance (within `RELATIVE_CUTOFF` of the
    best), and before them the procedures that produce a context slot a selected one needs and
    `known_context` lacks."""
    pinned_procs = [p for pid in dict.fromkeys(pinned) if (p := spec.procedure(pid)) is not None]
    scored = rank_procedures(spec.procedures, query)[:limit]
    best = scored[0][0] if scored else 0.0
    ranked = [p for score, p in scored if score >= best * RELATIVE_CUTOFF]
    chosen = pinned_procs + [p for p in ranked if p not in pinned_procs]
    missing = {
        s.id for p in chosen for s in p.slots if s.source == "context" and s.id not in known_context
    }
    prerequisites = [
        p
        for p in spec.procedures
        if p not in chosen and any(_produces(p, slot) for slot in missing)
    ]
    required = tuple(prerequisites + pinned_procs)
    return Selection(required, tuple(p for p in ranked if p not in required))


def select_policies(spec: AgentSpec, procedures: Iterable[Procedure]) -> tuple[Policy, ...]:
    """The global policies plus those that apply to one of `procedures`, in the spec's order."""
    shown = {p.id for p in procedures}
    return tuple(
        policy
        for policy in spec.policies
        if not policy.applies_to or shown.intersection(policy.applies_to)
    )


def procedures_calling(spec: AgentSpec, tool: str) -> tuple[str, ...]:
    """The ids of the procedures with a step that calls `tool`."""
    return tuple(
        p.id
        for p in spec.procedures
        if any(s.kind == "call_tool" and s.tool == tool for s in p.steps)
    )


# ---- rendering ------------------------------------------------------------------------------


def _step_line(number: int, step: Step, following: str | None) -> str:
    parts = [f"{number}. {step.id} [{step.kind}]"]
    if step.text:
        parts.append(step.text.strip())
    if step.kind == "ask" and step.slot:
        parts.append(f"→ fills {step.slot}")
    if step.kind == "call_tool" and step.tool:
        arguments = json.dumps(step.arguments, ensure_ascii=False, separators=(", ", ": "))
        parts.append(f"call {step.tool}({arguments})")
        if step.save_as:
            parts.append(f"→ saves {step.save_as}")
    if step.kind == "check" and step.condition:
        parts.append(f"if: {step.condition.strip()}")
        parts.append(f"yes → {step.then}; no → {step.otherwise or step.next or following}")
    if step.kind == "confirm" and step.on_decline:
        parts.append(f"(declined → {step.on_decline})")
    if step.kind == "handoff":
        parts.append(f"(queue {step.queue})" if step.queue else "(hand off to a human)")
    if step.kind == "end" and step.exit:
        parts.append(f"(exit {step.exit})")
    if step.next and step.kind != "check":
        parts.append(f"then → {step.next}")
    return " ".join(parts)


def _slot_line(procedure: Procedure) -> str:
    rendered = []
    for slot in procedure.slots:
        notes = []
        if slot.source == "context":
            notes.append("known from context")
        if slot.values:
            notes.append("one of: " + ", ".join(repr(v) for v in slot.values))
        if slot.pattern:
            notes.append(f"pattern {slot.pattern}")
        if slot.description:
            notes.append(slot.description)
        rendered.append(slot.id + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(rendered)


def render_procedure(procedure: Procedure) -> str:
    """A compact view of a procedure: trigger, slots, numbered steps with branches, exits."""
    lines = [f"### {procedure.id}: {procedure.title}", f"When: {procedure.when.strip()}"]
    if procedure.slots:
        lines.append(f"Information: {_slot_line(procedure)}")
    lines.append("Steps:")
    steps = procedure.steps
    for index, step in enumerate(steps):
        following = steps[index + 1].id if index + 1 < len(steps) else None
        lines.append(_step_line(index + 1, step, following))
    if procedure.exits:
        exits = ", ".join(
            f"{e.id} ({e.outcome}{': ' + e.description if e.description else ''})"
            for e in procedure.exits
        )
        lines.append(f"Exits: {exits}")
    return "\n".join(lines)


def render_policy(policy: Policy) -> str:
    scope = f" (in {', '.join(policy.applies_to)})" if policy.applies_to else ""
    return f"- [{policy.id}]{scope} {policy.text.strip()}"
