"""Outline sections + tool descriptions → procedures, policies, escalation rules, knowledge.

    extraction = await extract(sections, tools, asker=Asker(model), goal=goal, progress=progress)

Rules do the work from the layout and wording (no model needed); a model, when there is one,
only settles close calls and phrases triggers (`deputy.builder.asker`): a small one answers
"which of these two kinds" and "say when this applies in one sentence"; a capable one also reads
each procedure section (in chunks of items) for the details the customer must give.

What becomes what:
- each `procedure` section (`deputy.builder.classify`) becomes one procedure
  (`deputy.builder.extract_procedure`). Sub-sections of a procedure section ("Modify payment"
  under "Modify pending order") become procedures of their own, inheriting the parent's
  preconditions; the parent stays a procedure for what its children do not cover (a shipping
  address change). Separate procedures run better than one with branches: the runtime picks a
  procedure by its title and trigger, and each stays a short, linear, lintable flow;
- an identity sentence anywhere becomes `verify_identity` (`deputy.builder.extract_identity`),
  a prerequisite of the others;
- a capability list ("you can help users: - cancel or modify pending orders - modify their
  default user address") gives a procedure for each capability no section covers;
- a sentence saying how to hand over ("To transfer, first call transfer_to_human_agents, then
  say '...'") gives a `transfer_to_human` procedure and the message of every hand-off;
- standing rules (`deputy.builder.rules`): normative sentences outside procedures are policies
  (scoped by their subject), those inside a procedure section are scoped to it;
- `knowledge` sections are returned for retrieval, `ignore` sections only in the coverage.
Every item of every section appears in `coverage`, mapped to the spec paths it became or
ignored with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deputy.builder.asker import Asker
from deputy.builder.classify import SectionReading, classify_section
from deputy.builder.extract_flow import build_flow
from deputy.builder.extract_identity import (
    PROCEDURE_ID,
    IdentityProcedure,
    build_identity,
    is_identity_sentence,
)
from deputy.builder.extract_plan import PlannedProcedure, Planner
from deputy.builder.extract_procedure import build_procedure
from deputy.builder.extract_read import Reading, read_item
from deputy.builder.extract_rules import RuleCollector
from deputy.builder.extract_types import Handoff, item_ref
from deputy.builder.report import CoverageItem, OpenQuestion, QuestionKind
from deputy.builder.sources import OutlineItem, OutlineSection, ToolDescription
from deputy.builder.tool_match import ToolMatcher, is_handoff_tool
from deputy.domain.spec import EscalationRule, Policy, Procedure

if TYPE_CHECKING:
    from deputy.builder.pipeline import Progress


@dataclass(frozen=True)
class Extraction:
    procedures: tuple[Procedure, ...]
    policies: tuple[Policy, ...]
    escalation_rules: tuple[EscalationRule, ...]
    knowledge: tuple[OutlineSection, ...]
    coverage: tuple[CoverageItem, ...]
    questions: tuple[OpenQuestion, ...]
    tool_uses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Tool name → the ids of the procedures that call it."""


def _coverage(
    section: OutlineSection, entry: OutlineItem | None, paths: Sequence[str], reason: str
) -> CoverageItem:
    anchor = entry.anchor if entry is not None else section.anchor
    return CoverageItem(
        material=anchor.material.id if anchor.material is not None else None,
        span=anchor.label[:200],
        quote=anchor.quote[:400],
        status="mapped" if paths else "ignored",
        rules=tuple(dict.fromkeys(paths)),
        reason=None if paths else reason,
    )


def _find_identity(
    readings: Sequence[SectionReading], matcher: ToolMatcher, tools: Sequence[ToolDescription]
) -> tuple[OutlineSection, OutlineItem, IdentityProcedure] | None:
    for reading in readings:
        if reading.kind == "ignore" or reading.section.origin != "document":
            continue
        for entry in reading.section.items:
            if is_identity_sentence(entry.text):
                return reading.section, entry, build_identity(entry, matcher, tools)
    return None


def _handoff(readings: Sequence[SectionReading], matcher: ToolMatcher) -> Handoff:
    """How this business hands over to a human: the tool named in a hand-off sentence outside
    procedures (else the best-matching tool that hands over to a person) and the quoted
    message."""
    found: list[Reading] = []
    for reading in readings:
        if reading.kind == "procedure":
            continue
        for entry in reading.section.items:
            found += [r for r in read_item(entry, matcher) if r.kind == "handoff"]
    tool_name = next((r.tool for r in found if r.tool), None)
    tool = matcher.get(tool_name) if tool_name else None
    if tool is None:
        handoffs = [m.tool for m in matcher.rank("transfer to a human") if is_handoff_tool(m.tool)]
        tool = handoffs[0] if handoffs else None
    message = next((r.text for r in found if r.text), "")
    return Handoff(tool, message) if message else Handoff(tool)


@dataclass
class _Result:
    """What the extraction has produced so far, and which items became which spec paths."""

    procedures: list[Procedure] = field(default_factory=list)
    used: dict[str, list[str]] = field(default_factory=dict)
    tool_uses: dict[str, list[str]] = field(default_factory=dict)
    questions: list[OpenQuestion] = field(default_factory=list)

    def use(self, key: str, paths: Sequence[str]) -> None:
        self.used.setdefault(key, []).extend(paths)

    def add(self, procedure: Procedure, tools: Sequence[str]) -> None:
        self.procedures.append(procedure)
        for name in tools:
            self.tool_uses.setdefault(name, []).append(procedure.id)

    def ask(self, kind: QuestionKind, text: str, *refs: str) -> None:
        self.questions.append(OpenQuestion(kind=kind, text=text, refs=refs))

    def identity(self, found: tuple[OutlineSection, OutlineItem, IdentityProcedure]) -> None:
        section, entry, built = found
        self.add(built.procedure, built.tools)
        self.use(item_ref(section, entry), [f"procedures[{PROCEDURE_ID}]"])
        if built.missing_tool:
            self.ask(
                "gap",
                "The material asks to verify the customer's identity, but no tool looks a "
                f"customer up by the details it names: which tool should `{PROCEDURE_ID}` call?",
                f"procedures[{PROCEDURE_ID}]",
                entry.anchor.label,
            )

    def planned(self, planned: PlannedProcedure, matcher: ToolMatcher) -> None:
        plan = planned.plan
        refs = (f"procedures[{plan.id}]", plan.anchor.label)
        if plan.flow is not None:
            built, missing = build_flow(plan, plan.flow, matcher)
            if missing:
                self.ask(
                    "unmatched_tool",
                    f"No tool matches these actions of procedure `{plan.id}` ({plan.title}): "
                    f"{', '.join(missing)}. Which tools carry them out?",
                    *refs,
                )
        else:
            built = build_procedure(plan, matcher)
            if plan.action is None and planned.needs_tool:
                self.ask(
                    "unmatched_tool",
                    f"No tool matches procedure `{plan.id}` ({plan.title}): which tool carries "
                    "it out? Until one is bound, the agent can only collect the details.",
                    *refs,
                )
        self.add(built.procedure, built.tools)
        for key, paths in built.used.items():
            self.use(planned.item_key(key), paths)
        self.use(planned.source_key, [f"procedures[{plan.id}]"])

    def coverage(
        self, readings: Sequence[SectionReading], notes: Mapping[str, str]
    ) -> tuple[list[CoverageItem], list[OutlineSection]]:
        """Every item's coverage (a knowledge or ignored section as one entry, plus its items
        that became rules), and the knowledge sections."""
        coverage: list[CoverageItem] = []
        knowledge: list[OutlineSection] = []
        for reading in readings:
            section = reading.section
            if reading.close:
                listed = " or ".join(kind for kind, _ in reading.scores[:2])
                self.ask(
                    "ambiguous",
                    f"Is section '{section.title}' a {listed}? It was read as a {reading.kind}.",
                    section.anchor.label,
                )
            if not section.items:
                continue
            if reading.kind in ("knowledge", "ignore"):
                knowledge += [section] if reading.kind == "knowledge" else []
                reason = _SECTION_REASONS[reading.kind]
                paths = ["knowledge"] if reading.kind == "knowledge" else []
                coverage.append(_coverage(section, None, paths, reason))
                for entry in section.items:
                    mapped = self.used.get(item_ref(section, entry), [])
                    coverage += [_coverage(section, entry, mapped, reason)] if mapped else []
                continue
            for entry in section.items:
                key = item_ref(section, entry)
                reason = notes.get(key, "a description: no step or rule came from it")
                coverage.append(_coverage(section, entry, self.used.get(key, []), reason))
        return coverage, knowledge


_SECTION_REASONS = {
    "knowledge": "background facts, answered by retrieval",
    "ignore": "not about serving customers (contents, history, boilerplate)",
}


async def extract(
    sections: Sequence[OutlineSection],
    tools: Sequence[ToolDescription],
    *,
    asker: Asker,
    goal: str,
    progress: Progress | None = None,
) -> Extraction:
    """Everything the sections say, as spec parts with provenance (see the module docstring).
    `goal` is the client's goal, context for the model's questions. `progress` is told
    ("extract", done, total) after each section."""
    total = len(sections)
    if progress is not None:
        progress("extract", 0, total)
    matcher = ToolMatcher(tools)
    readings = [await classify_section(section, matcher, asker) for section in sections]
    identity = _find_identity(readings, matcher, tools)
    planner = Planner(
        readings,
        matcher,
        asker,
        goal=goal,
        handoff=_handoff(readings, matcher),
        identity=identity,
    )
    result = _Result()
    if identity is not None:
        result.identity(identity)
    for planned in await planner.plans(progress, total):
        result.planned(planned, matcher)
    for key, paths in planner.mapped.items():
        result.use(key, paths)
    collector = RuleCollector(tools, result.procedures, result.tool_uses, planner.scopes)
    collector.collect(readings)
    for key, paths in collector.used.items():
        result.use(key, paths)
    coverage, knowledge = result.coverage(readings, planner.notes)
    return Extraction(
        procedures=tuple(result.procedures),
        policies=tuple(collector.policies),
        escalation_rules=tuple(collector.escalation_rules),
        knowledge=tuple(knowledge),
        coverage=tuple(coverage),
        questions=tuple(result.questions),
        tool_uses={name: tuple(dict.fromkeys(ids)) for name, ids in result.tool_uses.items()},
    )
