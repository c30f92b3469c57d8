"""Which procedures the material calls for, and what each is made of (`ProcedurePlan`): one per
procedure section (sub-sections inherit their parent's preconditions), one per capability a
capability list names and no section covers, and `transfer_to_human` when the material says
how to hand over. Titles become unique snake_case ids; triggers (`when`) are a rule's sentence
unless a model phrases a better one; a capable model also lists the details a section asks
for, chunk by chunk."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from deputy.builder.asker import Asker
from deputy.builder.classify import SectionReading
from deputy.builder.extract_identity import (
    IdentityProcedure,
    is_identity_sentence,
    is_identity_title,
)
from deputy.builder.extract_read import Reading, SlotPhrase, read_item
from deputy.builder.extract_types import (
    Handoff,
    ProcedurePlan,
    item_ref,
    procedure_id,
    rule_when,
    section_ref,
)
from deputy.builder.outline import item_kind
from deputy.builder.rules import unique_id
from deputy.builder.sources import Anchor, OutlineItem, OutlineSection
from deputy.builder.tool_match import ACTION_VERBS, WRITES, ToolMatcher, terms
from deputy.knowledge.text import tokenize

_LEAD_IN = re.compile(r"\b(?:help|assist|handle|support|can|able|allowed|may)\b.*:\s*$", re.I)
_DETAILS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "trigger": {"type": "string", "maxLength": 200},
        "details": {
            "type": "array",
            "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 60},
                    "allowed_values": {
                        "type": "array",
                        "maxItems": 12,
                        "items": {"type": "string", "maxLength": 80},
                    },
                },
                "required": ["name", "allowed_values"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["trigger", "details"],
    "additionalProperties": False,
}
_DETAILS_QUESTION = (
    "This section describes one procedure of a support agent. Give `trigger`: one sentence "
    "starting 'The customer wants to' saying when it applies; and `details`: each piece of "
    "information the customer must give for it (a short noun phrase such as 'order id'), with "
    "the allowed values when the text lists them (else an empty list)."
)

if TYPE_CHECKING:
    from deputy.builder.pipeline import Progress


@dataclass(frozen=True, slots=True)
class PlannedProcedure:
    plan: ProcedurePlan
    refs: dict[str, str]
    """Item key → `item_ref` of the item, for coverage."""
    source_key: str
    needs_tool: bool

    def item_key(self, key: str) -> str:
        return self.refs.get(key, key)


@dataclass
class Planner:
    readings: Sequence[SectionReading]
    matcher: ToolMatcher
    asker: Asker
    goal: str
    handoff: Handoff
    identity: tuple[OutlineSection, OutlineItem, IdentityProcedure] | None
    """The section, sentence and procedure of the identity check, if any."""
    taken: set[str] = field(default_factory=set)
    scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """`section_ref` → the procedure ids its rules apply to."""
    mapped: dict[str, list[str]] = field(default_factory=dict)
    """`item_ref` → the procedures it maps to, for items no procedure is built from: a
    capability list's lead-in and items (`section_ref`s until the plans are made), the items
    of an identity section."""
    section_ids: dict[str, str] = field(default_factory=dict)
    """`section_ref` of a procedure section → its procedure id."""
    notes: dict[str, str] = field(default_factory=dict)
    """`item_ref` → why the item became nothing (for the coverage)."""

    def __post_init__(self) -> None:
        if self.identity is not None:
            self.taken.add(self.identity[2].procedure.id)

    def parent(self, reading: SectionReading) -> SectionReading | None:
        section = reading.section
        if not section.path:
            return None
        for other in self.readings:
            full = (*other.section.path, other.section.title)
            if full == section.path and other.section.anchor.material == section.anchor.material:
                return other
        return None

    def inherited(self, reading: SectionReading) -> list[Reading]:
        found: list[Reading] = []
        parent = self.parent(reading)
        while parent is not None and parent.kind == "procedure":
            own = [r for e in parent.section.items for r in read_item(e, self.matcher)]
            found = [r for r in own if r.kind == "check"] + found
            parent = self.parent(parent)
        return found

    async def when(self, title: str, context: str, parent: str | None) -> str:
        phrased = await self.asker.phrase(
            "In one sentence starting with 'The customer wants to', say when a support agent "
            f"should follow the procedure '{title}'.",
            f"Goal of the agent: {self.goal}\n\n{context}",
        )
        return phrased if phrased and keeps_title(phrased, title) else rule_when(title, parent)

    async def details(self, section: OutlineSection) -> tuple[str | None, list[SlotPhrase]]:
        """A capable model's reading of a section, chunk by chunk of items."""
        if not self.asker.capable:
            return None, []
        limit = max(500, self.asker.max_context_chars - 500)
        chunks: list[str] = []
        for entry in section.items:
            if chunks and len(chunks[-1]) + len(entry.text) < limit:
                chunks[-1] += f"\n- {entry.text}"
            else:
                chunks.append(f"Procedure: {section.title}\n- {entry.text}")
        trigger: str | None = None
        found: list[SlotPhrase] = []
        for chunk in chunks:
            answer = await self.asker.structured(_DETAILS_QUESTION, chunk, _DETAILS_SCHEMA)
            if not isinstance(answer, dict):
                continue
            trigger = trigger or (str(answer.get("trigger", "")).strip() or None)
            for detail in answer.get("details", []):
                values = tuple(str(v) for v in detail.get("allowed_values", []) if str(v))
                found.append(SlotPhrase(str(detail.get("name", "")), values))
        return trigger, [phrase for phrase in found if phrase.phrase.strip()]

    def base_plan(self, **kw: Any) -> ProcedurePlan:
        identity = self.identity[2] if self.identity else None
        context = identity.context_slot if identity else None
        return ProcedurePlan(
            context_slot=context,
            context_description=(
                f"Known once procedure `{identity.procedure.id}` has verified the customer."
                if identity
                else ""
            ),
            handoff=self.handoff,
            confirm_anchor=self.confirm_anchor,
            **kw,
        )

    @cached_property
    def confirm_anchor(self) -> Anchor | None:
        """The policy sentence requiring confirmations, if any (provenance of `confirm`s)."""
        for reading in self.readings:
            if reading.kind != "policy":
                continue
            for entry in reading.section.items:
                if any(r.kind == "confirm" for r in read_item(entry, self.matcher)):
                    return entry.anchor
        return None

    async def section_plan(self, reading: SectionReading) -> PlannedProcedure:
        section = reading.section
        parent = self.parent(reading)
        parent_title = parent.section.title if parent and parent.kind == "procedure" else None
        pid = procedure_id(section.title, self.taken)
        self.section_ids[section_ref(section)] = pid
        if section.origin != "document":
            return await self.flow_plan(section, pid)
        own = [r for e in section.items for r in read_item(e, self.matcher)]
        query = " ".join([section.title, *(section.path[-1:] if parent_title else ())])
        match = self.matcher.best(query, effects=WRITES) or self.matcher.best(query)
        trigger, extra = await self.details(section)
        context = "\n".join([section.title, *(e.text for e in section.items)])[:1500]
        when = trigger or await self.when(section.title, context, parent_title)
        ancestor = parent
        while ancestor is not None and ancestor.kind == "procedure":
            key = section_ref(ancestor.section)
            self.scopes[key] = (*self.scopes.get(key, ()), pid)
            ancestor = self.parent(ancestor)
        own_key = section_ref(section)
        self.scopes[own_key] = (pid, *self.scopes.get(own_key, ()))
        plan = self.base_plan(
            id=pid,
            title=section.title,
            when=when,
            anchor=section.anchor,
            readings=(*self.inherited(reading), *own),
            action=match.tool if match else None,
            extra_slots=tuple((phrase, section.anchor) for phrase in extra),
        )
        refs = {entry.key: item_ref(section, entry) for entry in section.items}
        ancestor = parent
        while ancestor is not None:
            for entry in ancestor.section.items:
                refs.setdefault(entry.key, item_ref(ancestor.section, entry))
            ancestor = self.parent(ancestor)
        return PlannedProcedure(plan, refs, f"{section_ref(section)}|section", True)

    async def flow_plan(self, section: OutlineSection, pid: str) -> PlannedProcedure:
        """A structured outline (guidelines, flowchart, learned flow): its items are the flow."""
        self.scopes[section_ref(section)] = (pid,)
        context = "\n".join([section.title, section.intro, *(e.text for e in section.items)])
        plan = self.base_plan(
            id=pid,
            title=section.title,
            when=await self.when(section.title, context[:1500], None),
            anchor=section.anchor,
            readings=(),
            action=None,
            flow=section.items,
        )
        refs = {entry.key: item_ref(section, entry) for entry in section.items}
        return PlannedProcedure(plan, refs, f"{section_ref(section)}|section", False)

    def capabilities(self, reading: SectionReading) -> list[OutlineItem]:
        """The items of a capability list in `reading` that call for a procedure of their own:
        an action ("modify their default user address") no procedure section covers. Covered
        ones are mapped to the sections' procedures (`mapped`); requests for
        information get no procedure."""
        items = reading.section.items
        found: list[OutlineItem] = []
        for index, entry in enumerate(items):
            if item_kind(entry) != "sentence" or not _LEAD_IN.search(entry.text):
                continue
            lead = self.mapped.setdefault(item_ref(reading.section, entry), [])
            for following in items[index + 1 :]:
                if item_kind(following) != "list_item":
                    break
                covering = self.covering(following.text)
                if not set(terms(following.text)) & ACTION_VERBS:
                    self.notes[item_ref(reading.section, following)] = (
                        "a request for information: answered from the tools and knowledge"
                    )
                elif not covering:
                    found.append(following)
                self.mapped[item_ref(reading.section, following)] = covering
                lead.extend(covering)
        return found

    def covering(self, text: str) -> list[str]:
        """The procedure sections (`section_ref`s; spec paths once planned) that do what `text`
        names."""
        wanted = set(terms(text))
        verbs = wanted & ACTION_VERBS
        nouns = wanted - ACTION_VERBS
        found: list[str] = []
        for reading in self.readings:
            if reading.kind != "procedure" or not verbs:
                continue
            own = set(terms(" ".join([*reading.section.path[-1:], reading.section.title])))
            if verbs & own and (not nouns or nouns & own):
                found.append(section_ref(reading.section))
        return found

    async def capability_plan(
        self, section: OutlineSection, entry: OutlineItem
    ) -> PlannedProcedure:
        title = entry.text[:1].upper() + entry.text[1:].rstrip(".")
        pid = procedure_id(title, self.taken)
        match = self.matcher.best(entry.text, effects=WRITES)
        plan = self.base_plan(
            id=pid,
            title=title,
            when=await self.when(title, entry.text, None),
            anchor=entry.anchor,
            readings=(),
            action=match.tool if match else None,
        )
        key = item_ref(section, entry)
        return PlannedProcedure(plan, {}, key, True)

    def transfer_plan(
        self, handoffs: Sequence[tuple[OutlineSection, Reading]]
    ) -> PlannedProcedure | None:
        how = next(((s, r) for s, r in handoffs if r.tool or r.text), None)
        if how is None or self.handoff.tool is None:
            return None
        section, reading = how
        condition = next((r.clause for _, r in handoffs if r.clause), "")
        when = (
            condition[:1].upper() + condition[1:].rstrip(".") + "."
            if condition
            else "The customer's request needs a human agent."
        )
        pid = unique_id("transfer_to_human", self.taken)
        self.taken.add(pid)
        plan = ProcedurePlan(
            id=pid,
            title="Transfer to a human agent",
            when=when,
            anchor=reading.item.anchor,
            readings=(
                Reading(
                    "handoff", reading.item, tool=self.handoff.tool.name, text=self.handoff.message
                ),
            ),
            action=None,
            handoff=self.handoff,
        )
        return PlannedProcedure(
            plan,
            {reading.item.key: item_ref(section, reading.item)},
            item_ref(section, reading.item),
            False,
        )

    @property
    def identity_ref(self) -> str:
        return f"procedures[{self.identity[2].procedure.id}]" if self.identity else ""

    def is_identity_section(self, section: OutlineSection) -> bool:
        """A section about verifying identity (its title says so and a sentence describes how):
        `verify_identity` stands for it, so it makes no procedure of its own."""
        return is_identity_title(section.title) and any(
            is_identity_sentence(entry.text) for entry in section.items
        )

    async def plans(self, progress: Progress | None, total: int) -> list[PlannedProcedure]:
        """Every procedure to build, in section order (capability and transfer procedures
        last); `progress` is told after each section."""
        planned: list[PlannedProcedure] = []
        capabilities: list[tuple[OutlineSection, OutlineItem]] = []
        handoffs: list[tuple[OutlineSection, Reading]] = []
        for done, reading in enumerate(self.readings, start=1):
            section = reading.section
            if self.identity is not None and self.is_identity_section(section):
                for entry in section.items:
                    self.mapped[item_ref(section, entry)] = [self.identity_ref]
            elif reading.kind == "procedure":
                planned.append(await self.section_plan(reading))
            elif reading.kind != "ignore" and reading.section.origin == "document":
                for entry in self.capabilities(reading):
                    capabilities.append((reading.section, entry))
                for entry in reading.section.items:
                    for found in read_item(entry, self.matcher):
                        if found.kind == "handoff":
                            handoffs.append((reading.section, found))
            if progress is not None:
                progress("extract", done, total)
        for section, entry in capabilities:
            planned.append(await self.capability_plan(section, entry))
        for key, labels in self.mapped.items():
            self.mapped[key] = [
                f"procedures[{self.section_ids[label]}]" if label in self.section_ids else label
                for label in dict.fromkeys(labels)
                if label in self.section_ids or label == self.identity_ref
            ]
        transfer = self.transfer_plan(handoffs)
        if transfer is not None:
            planned.append(transfer)
        return planned


def keeps_title(phrased: str, title: str) -> bool:
    """A model's trigger is kept only when it names what the title names: at least half of the
    title's words, the first (usually the verb: "Exchange", "Cancel") among them. Small models
    otherwise drift ("exchange an order" became "place a new order")."""
    words = [w for w in tokenize(title) if len(w) > 2]
    said = set(tokenize(phrased))
    if not words:
        return True
    found = [w for w in words if w in said or w.rstrip("s") in said or f"{w}s" in said]
    return words[0] in found and len(found) * 2 >= len(words)
