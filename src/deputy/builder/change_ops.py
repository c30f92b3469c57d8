"""The edit operations a change request becomes, how a model proposes them, and how they are
applied to a spec. Every edit is checked against the spec (known tools, arguments and
procedures); one that does not fit becomes an open question instead of a guess."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from deputy.builder.report import OpenQuestion
from deputy.builder.rules import unique_id
from deputy.builder.sources import ToolDescription
from deputy.domain.spec import (
    AgentSpec,
    EscalationRule,
    Exit,
    Policy,
    PolicyLimit,
    Procedure,
    Provenance,
    Slot,
    Step,
)
from deputy.knowledge.text import tokenize

EditOp = Literal[
    "add_policy",
    "add_escalation_rule",
    "add_limit",
    "add_procedure",
    "remove_procedure",
    "remove_policy",
]
MAX_OPERATIONS = 8

OPERATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operations": {
            "type": "array",
            "maxItems": MAX_OPERATIONS,
            "items": {
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": list(get_args(EditOp))},
                    "text": {"type": "string", "maxLength": 1000},
                    "title": {"type": "string", "maxLength": 200},
                    "procedure": {"type": "string", "maxLength": 64},
                    "policy": {"type": "string", "maxLength": 64},
                    "applies_to": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
                    "tool": {"type": "string", "maxLength": 64},
                    "argument": {"type": "string", "maxLength": 200},
                    "max": {"type": "number"},
                    "queue": {"type": "string", "maxLength": 100},
                },
                "required": ["op"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["operations"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class Edit:
    op: EditOp
    text: str = ""
    title: str = ""
    when: str = ""
    procedure: str | None = None
    applies_to: tuple[str, ...] = ()
    tool: str | None = None
    argument: str | None = None
    maximum: float | None = None
    queue: str | None = None
    policy_id: str | None = None
    policy: Policy | None = None
    rule: EscalationRule | None = None


def snake(text: str, *, fallback: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    name = "_".join(words)[:60].strip("_")
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}".strip("_")
    return name[:64]


def spec_outline(spec: AgentSpec) -> str:
    """What a model needs to place an edit: procedures, tools with their arguments, policies."""
    lines = ["Procedures:"]
    lines += [f"- {p.id}: {p.title} (when: {p.when[:120]})" for p in spec.procedures]
    lines.append("Tools:")
    for tool in spec.tools:
        properties = (tool.parameters or {}).get("properties", {})
        arguments = ", ".join(properties) if isinstance(properties, dict) else ""
        lines.append(f"- {tool.name} [{tool.effect}] ({arguments}): {tool.description[:100]}")
    lines.append("Policies:")
    lines += [f"- {p.id}: {p.text[:150]}" for p in spec.policies]
    return "\n".join(lines)


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value.strip() if isinstance(value, str) else ""


def edits_from_model(
    answer: Any, spec: AgentSpec, request: str
) -> tuple[list[Edit], list[OpenQuestion]]:
    """The model's operations as edits; malformed ones are dropped with a question."""
    del spec
    items = answer.get("operations") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return [], []
    edits: list[Edit] = []
    questions: list[OpenQuestion] = []
    for item in items[:MAX_OPERATIONS]:
        if not isinstance(item, dict) or item.get("op") not in get_args(EditOp):
            questions.append(OpenQuestion(kind="ambiguous", text=f"ignored operation {item!r}"))
            continue
        maximum = item.get("max")
        applies = item.get("applies_to")
        edits.append(
            Edit(
                op=item["op"],
                text=_text(item, "text"),
                title=_text(item, "title"),
                when=_text(item, "text") or request,
                procedure=_text(item, "procedure") or None,
                applies_to=tuple(str(a) for a in applies) if isinstance(applies, list) else (),
                tool=_text(item, "tool") or None,
                argument=_text(item, "argument") or None,
                maximum=float(maximum) if isinstance(maximum, int | float) else None,
                queue=_text(item, "queue") or None,
                policy_id=_text(item, "policy") or None,
            )
        )
    return edits, questions


# ---- applying edits ----------------------------------------------------------------------


class _Editor:
    def __init__(self, spec: AgentSpec, tools: Sequence[ToolDescription], request: str) -> None:
        self.spec = spec
        self.tools = tools
        self.provenance = Provenance(
            source="change request", kind="manual", span="builder conversation", quote=request
        )
        self.procedures = list(spec.procedures)
        self.policies = list(spec.policies)
        self.rules = list(spec.escalation.rules)
        self.applied: list[str] = []
        self.questions: list[OpenQuestion] = []

    def ask(self, text: str) -> None:
        self.questions.append(OpenQuestion(kind="ambiguous", text=text))

    def find_procedure(self, reference: str) -> Procedure | None:
        exact = next((p for p in self.procedures if p.id == reference), None)
        if exact is not None:
            return exact
        wanted = set(tokenize(reference))
        best: tuple[float, Procedure | None] = (0.0, None)
        for procedure in self.procedures:
            words = set(tokenize(f"{procedure.title} {procedure.id.replace('_', ' ')}"))
            overlap = len(wanted & words) / max(len(wanted | words), 1)
            if overlap > best[0]:
                best = (overlap, procedure)
        return best[1] if best[0] >= 0.34 else None

    def procedures_calling(self, tool: str) -> tuple[str, ...]:
        return tuple(p.id for p in self.procedures if any(s.tool == tool for s in p.steps))

    def add_policy(self, edit: Edit) -> None:
        policy = edit.policy
        if policy is None:
            if not edit.text:
                self.ask("a policy edit needs the rule's text")
                return
            unknown = [p for p in edit.applies_to if p not in {q.id for q in self.procedures}]
            if unknown:
                self.ask(f"the policy names unknown procedures {unknown}")
                return
            policy = Policy(id=snake(edit.text, fallback="policy"), text=edit.text)
            policy = policy.model_copy(update={"applies_to": edit.applies_to})
        policy = policy.model_copy(
            update={
                "id": unique_id(policy.id, {p.id for p in self.policies}),
                "provenance": self.provenance,
            }
        )
        self.policies.append(policy)
        self.applied.append(f"added policy {policy.id}: {policy.text}")

    def add_rule(self, edit: Edit) -> None:
        rule = edit.rule or EscalationRule(
            id=snake(edit.text or edit.when, fallback="escalate"),
            when=(edit.text or edit.when)[:2000],
            queue=edit.queue,
        )
        rule = rule.model_copy(
            update={
                "id": unique_id(rule.id, {r.id for r in self.rules}),
                "provenance": self.provenance,
            }
        )
        self.rules.append(rule)
        self.applied.append(f"added escalation rule {rule.id}: {rule.when}")

    def add_limit(self, edit: Edit) -> None:
        tool = self.spec.tool(edit.tool or "")
        if tool is None or edit.argument is None or edit.maximum is None:
            self.ask(f"a limit needs a known tool, an argument and a maximum (got {edit.tool!r})")
            return
        properties = (tool.parameters or {}).get("properties")
        top = edit.argument.split(".", 1)[0]
        if isinstance(properties, dict) and properties and top not in properties:
            self.ask(f"{tool.name} has no argument {top!r}; it takes {sorted(properties)}")
            return
        text = edit.text or f"{tool.name}: {edit.argument} must not exceed {edit.maximum:g}."
        policy = Policy(
            id=unique_id(
                snake(f"limit {tool.name} {edit.argument}", fallback="limit"),
                {p.id for p in self.policies},
            ),
            text=text,
            applies_to=self.procedures_calling(tool.name),
            limits=(PolicyLimit(tool=tool.name, argument=edit.argument, max=edit.maximum),),
            provenance=self.provenance,
        )
        self.policies.append(policy)
        self.applied.append(f"added limit {edit.argument} <= {edit.maximum:g} on {tool.name}")

    def add_procedure(self, edit: Edit) -> None:
        title = (edit.title or edit.text).strip().rstrip(".")
        if not title:
            self.ask("a new procedure needs a title")
            return
        procedure_id = unique_id(snake(title, fallback="handle"), {p.id for p in self.procedures})
        steps = (
            Step(
                id="ask_details",
                kind="ask",
                slot="request_details",
                text=f"Please describe your {title.lower()} request in a few words.",
                provenance=self.provenance,
            ),
            Step(
                id="hand_off",
                kind="handoff",
                text=f"Thank you. A colleague who handles {title.lower()} will take it from here.",
                queue=edit.queue,
                provenance=self.provenance,
            ),
        )
        self.procedures.append(
            Procedure(
                id=procedure_id,
                title=title[:1].upper() + title[1:200],
                when=(edit.when or f"The customer asks about {title.lower()}.")[:2000],
                slots=(Slot(id="request_details", description=f"What the {title} is about"),),
                steps=steps,
                exits=(Exit(id="handed_off", outcome="escalated"),),
                provenance=self.provenance,
            )
        )
        self.applied.append(f"added procedure {procedure_id} ({title})")
        self.questions.append(
            OpenQuestion(
                kind="gap",
                text=f"no material describes {title!r}: the new procedure collects the details "
                "and hands off to a human; upload its SOP and rebuild to automate it",
                refs=(f"procedures[{procedure_id}]",),
            )
        )

    def remove_procedure(self, edit: Edit) -> None:
        reference = edit.procedure or edit.title
        procedure = self.find_procedure(reference) if reference else None
        if procedure is None:
            self.ask(f"no procedure matches {reference!r}")
            return
        self.procedures.remove(procedure)
        kept: list[Policy] = []
        for policy in self.policies:
            if procedure.id in policy.applies_to:
                rest = tuple(p for p in policy.applies_to if p != procedure.id)
                if not rest:
                    continue  # it applied only there; keeping it would make it global
                policy = policy.model_copy(update={"applies_to": rest})
            kept.append(policy)
        self.policies = kept
        self.applied.append(f"removed procedure {procedure.id} ({procedure.title})")

    def remove_policy(self, edit: Edit) -> None:
        policy = next((p for p in self.policies if p.id == (edit.policy_id or "")), None)
        if policy is None:
            self.ask(f"no policy {edit.policy_id!r}")
            return
        self.policies.remove(policy)
        self.applied.append(f"removed policy {policy.id}")

    def result(self) -> AgentSpec:
        data = self.spec.model_dump()
        data["procedures"] = [p.model_dump() for p in self.procedures]
        data["policies"] = [p.model_dump() for p in self.policies]
        data["escalation"]["rules"] = [r.model_dump() for r in self.rules]
        return AgentSpec.model_validate(data)


def apply_edits(
    spec: AgentSpec, edits: Sequence[Edit], tools: Sequence[ToolDescription], *, request: str
) -> tuple[AgentSpec, list[str], list[OpenQuestion]]:
    """The spec with `edits` applied (validated as a whole), one line per applied edit, and the
    questions for edits that could not be applied."""
    editor = _Editor(spec, tools, request)
    handlers = {
        "add_policy": editor.add_policy,
        "add_escalation_rule": editor.add_rule,
        "add_limit": editor.add_limit,
        "add_procedure": editor.add_procedure,
        "remove_procedure": editor.remove_procedure,
        "remove_policy": editor.remove_policy,
    }
    for edit in edits:
        handlers[edit.op](edit)
    return editor.result(), editor.applied, editor.questions
