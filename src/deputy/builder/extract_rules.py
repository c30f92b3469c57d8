"""The standing rules of the material: policies and escalation rules from its sentences
(`deputy.builder.rules.rule_from_sentence`), with ids unique across the whole extraction.

Sentences of policy sections (and normative ones of knowledge sections) are scoped by their
subject; sentences of a procedure section that no step consumed ("Other reasons are not
acceptable", "There cannot be any change of product types") apply to that procedure and the
procedures of its sub-sections. When such a sentence restricts a detail whose values the
procedure lists ("the reason (either 'no longer needed' or 'ordered by mistake') ... Other
reasons are not acceptable"), its policy also limits the tool argument that detail fills to
those values, so the runtime enforces the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from deputy.builder.classify import SectionReading
from deputy.builder.extract_read import read_item
from deputy.builder.extract_types import item_ref, section_ref
from deputy.builder.rules import RuleDraft, rule_from_sentence
from deputy.builder.sources import OutlineItem, OutlineSection, ToolDescription
from deputy.builder.tool_match import ToolMatcher, terms
from deputy.domain.spec import EscalationRule, Policy, PolicyLimit, Procedure

_RESTRICTIVE = re.compile(
    r"\b(?:only|not (?:be )?(?:acceptable|accepted|allowed|permitted)|no other|never)\b", re.I
)


class RuleCollector:
    def __init__(
        self,
        tools: Sequence[ToolDescription],
        procedures: Sequence[Procedure],
        tool_uses: Mapping[str, Sequence[str]],
        scopes: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.tools = tuple(tools)
        self.matcher = ToolMatcher(tools)
        self.procedures = tuple(procedures)
        self.procedure_ids = tuple(p.id for p in procedures)
        self.procedure_tools: dict[str, list[str]] = {}
        for tool, users in tool_uses.items():
            for pid in users:
                self.procedure_tools.setdefault(pid, []).append(tool)
        self.scopes = scopes
        self.policies: list[Policy] = []
        self.escalation_rules: list[EscalationRule] = []
        self.used: dict[str, list[str]] = {}
        self.taken: set[str] = set()

    def add(
        self, section: OutlineSection, entry: OutlineItem, scope: tuple[str, ...] | None
    ) -> None:
        draft: RuleDraft | None = rule_from_sentence(
            entry.text,
            entry.anchor,
            tools=self.tools,
            procedure_ids=self.procedure_ids,
            procedure_tools=self.procedure_tools,
            scope=scope,
            taken=self.taken,
        )
        if draft is None:
            return
        paths = self.used.setdefault(item_ref(section, entry), [])
        for policy in draft.policies:
            if scope and not policy.limits:
                policy = policy.model_copy(
                    update={"limits": self.allowed_values(entry.text, scope)}
                )
            self.taken.add(policy.id)
            self.policies.append(policy)
            paths.append(f"policies[{policy.id}]")
        for rule in draft.escalation_rules:
            self.taken.add(rule.id)
            self.escalation_rules.append(rule)
            paths.append(f"escalation.rules[{rule.id}]")

    def allowed_values(self, text: str, scope: Sequence[str]) -> tuple[PolicyLimit, ...]:
        """For a restrictive sentence about an enum slot of its procedures ("Other reasons are
        not acceptable"), limits holding the tool arguments that slot fills to its values."""
        if not _RESTRICTIVE.search(text):
            return ()
        mentioned = set(terms(text))
        limits: dict[tuple[str, str], PolicyLimit] = {}
        for procedure in self.procedures:
            if procedure.id not in scope:
                continue
            enums = {
                s.id: s.values
                for s in procedure.slots
                if s.values and set(terms(s.id)) <= mentioned
            }
            for step in procedure.steps:
                for argument, value in step.arguments.items():
                    slot = value[1:-1] if isinstance(value, str) and value.startswith("{") else ""
                    if step.tool and slot in enums:
                        limits[(step.tool, argument)] = PolicyLimit(
                            tool=step.tool,
                            argument=argument,
                            one_of=enums[slot],
                            message=f"Only {', '.join(repr(v) for v in enums[slot])}: {text}"[:500],
                        )
        return tuple(limits.values())

    def collect(self, readings: Sequence[SectionReading]) -> None:
        for reading in readings:
            section = reading.section
            if reading.kind == "ignore":
                continue
            if reading.kind != "procedure":
                for entry in section.items:
                    self.add(section, entry, None)
                continue
            scope = self.scopes.get(section_ref(section))
            for entry in section.items:
                if section.origin != "document":
                    if entry.hint == "rule":
                        self.add(section, entry, scope)
                elif any(r.kind == "rule" for r in read_item(entry, self.matcher)):
                    self.add(section, entry, scope)
