"""The plan of one procedure (what `deputy.builder.extract_procedure` and
`deputy.builder.extract_flow` build it from), what building it yields, and the keys and names
the extraction gives sections, items, procedures and triggers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from deputy.builder.extract_read import Reading, SlotPhrase
from deputy.builder.rules import unique_id
from deputy.builder.sources import Anchor, OutlineItem, OutlineSection, ToolDescription
from deputy.builder.tool_match import ACTION_VERBS, terms
from deputy.domain.spec import Procedure

_ID_STOPWORDS = frozenset(
    re.split(r"\s+", "a an the their your his her its our my of to for with own")
)


@dataclass(frozen=True, slots=True)
class Handoff:
    """How this business hands a conversation to a human: the tool to call first (if any)
    and what to say."""

    tool: ToolDescription | None = None
    message: str = "I'm handing you over to a colleague who can help with this."


@dataclass(frozen=True, slots=True)
class ProcedurePlan:
    """What a procedure is made of: its section's readings (inherited preconditions first),
    the tool doing its action, the identity slot it reads from the context (and what fills
    it), the sentence requiring confirmations, and how hand-offs are done."""

    id: str
    title: str
    when: str
    anchor: Anchor
    readings: tuple[Reading, ...]
    action: ToolDescription | None
    context_slot: str | None = None
    context_description: str = ""
    confirm_anchor: Anchor | None = None
    handoff: Handoff = Handoff()
    extra_slots: tuple[tuple[SlotPhrase, Anchor], ...] = ()
    flow: tuple[OutlineItem, ...] | None = None
    """The items of a structured outline (`deputy.builder.extract_flow` builds it)."""


@dataclass(frozen=True, slots=True)
class BuiltProcedure:
    procedure: Procedure
    used: dict[str, tuple[str, ...]]
    """Item key → the spec paths made from it."""
    tools: tuple[str, ...]


def section_ref(section: OutlineSection) -> str:
    """A key naming one section, unique across materials."""
    material = section.anchor.material.id if section.anchor.material else ""
    return f"{material}|{section.anchor.label}"


def item_ref(section: OutlineSection, entry: OutlineItem) -> str:
    """A key naming one item of one section, unique across materials."""
    return f"{section_ref(section)}|{entry.key}"


def procedure_id(title: str, taken: set[str]) -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", title.lower()) if w not in _ID_STOPWORDS]
    base = "_".join(words)[:56].strip("_") or "procedure"
    base = base if base[0].isalpha() else f"procedure_{base}"
    chosen = unique_id(base, taken)
    taken.add(chosen)
    return chosen


def rule_when(title: str, parent: str | None = None) -> str:
    """A trigger sentence from a title: "Cancel pending order" → "The customer wants to cancel
    pending order."."""
    words = terms(title)
    lowered = title[:1].lower() + title[1:]
    sentence = (
        f"The customer wants to {lowered}"
        if words and words[0] in ACTION_VERBS
        else f"The customer's request is about: {lowered}"
    )
    if parent:
        sentence += f" (part of: {parent[:1].lower()}{parent[1:]})"
    return sentence.rstrip(".") + "."
