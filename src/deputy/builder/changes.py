"""Conversation with the builder: a change request in plain language → an edited draft, its
diff, and the scenarios to run again.

    result = await apply_change(spec, suite, "refunds over $100 need a manager", model=model)
    result.applied            # ("policy refunds_over_100 …", "escalation rule …")
    result.diff               # what a reviewer approves
    result.affected_scenarios # the scenarios whose procedure the change touches

A capable model reads the request into edit operations (validated one by one against the
spec); otherwise, and whenever the model gives nothing usable, rules read it sentence by
sentence: "also handle X" adds a procedure, "stop handling X" removes one, any other sentence
is read as a standing rule (`deputy.builder.rules`). A request that yields no valid edit leaves
the spec as it was and says why in `questions`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from deputy.builder.asker import Asker
from deputy.builder.change_ops import (
    OPERATIONS_SCHEMA,
    Edit,
    apply_edits,
    edits_from_model,
    spec_outline,
)
from deputy.builder.pipeline import ChangeResult
from deputy.builder.report import OpenQuestion
from deputy.builder.rules import (
    amount_bound,
    is_rule_sentence,
    rule_from_sentence,
    unenforced_amount,
)
from deputy.builder.scenarios import affected_scenarios, scenario_suite
from deputy.builder.sources import Anchor, ToolDescription
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import AgentSpec, SpecDiff, diff_specs
from deputy.knowledge.text import sentence_spans
from deputy.llm.types import Model

_ADD = re.compile(
    r"^\s*(?:please\s+)?(?:also\s+)?(?:handle|add|support|cover|take care of)\s+"
    r"(?:a\s+procedure\s+for\s+|procedures?\s+for\s+)?(?P<what>.+?)(?:\s+too|\s+as well)?[.!]?$",
    re.IGNORECASE,
)
_REMOVE = re.compile(
    r"^\s*(?:please\s+)?(?:stop\s+handling|remove|drop|no longer handle|do not handle)\s+"
    r"(?:the\s+)?(?:procedure\s+(?:for\s+)?)?(?P<what>.+?)[.!]?$",
    re.IGNORECASE,
)


def _known_tools(
    spec: AgentSpec, described: Sequence[ToolDescription]
) -> tuple[ToolDescription, ...]:
    """The spec's tools as descriptions (their arguments are what limits can bound), with the
    caller's fuller descriptions taking precedence."""
    by_name = {
        tool.name: ToolDescription(
            name=tool.name,
            description=tool.description,
            effect=tool.effect,
            effect_reason="as the spec declares it",
            parameters=tool.parameters or {},
            anchor=Anchor(kind="tool_description", label=f"tools › {tool.name}", quote=tool.name),
            binding=tool.binding,
        )
        for tool in spec.tools
    }
    by_name.update((tool.name, tool) for tool in described)
    return tuple(by_name.values())


def _rule_edits(
    request: str, spec: AgentSpec, tools: Sequence[ToolDescription]
) -> tuple[list[Edit], list[OpenQuestion]]:
    edits: list[Edit] = []
    questions: list[OpenQuestion] = []
    procedure_ids = [p.id for p in spec.procedures]
    procedure_tools = {p.id: [s.tool for s in p.steps if s.tool] for p in spec.procedures}
    spans = sentence_spans(request, 0, len(request)) or [(0, len(request))]
    for start, end in spans:
        text = request[start:end].strip()
        if not text:
            continue
        if match := _REMOVE.match(text):
            edits.append(Edit(op="remove_procedure", title=match["what"]))
            continue
        if match := _ADD.match(text):
            edits.append(Edit(op="add_procedure", title=match["what"], when=text))
            continue
        if is_rule_sentence(text) or amount_bound(text) is not None:
            anchor = Anchor(kind="constraint", label="change request", quote=text)
            draft = rule_from_sentence(
                text,
                anchor,
                tools=tools,
                procedure_ids=procedure_ids,
                procedure_tools=procedure_tools,
            )
            if draft is not None and (draft.policies or draft.escalation_rules):
                edits.extend(Edit(op="add_policy", policy=p) for p in draft.policies)
                edits.extend(Edit(op="add_escalation_rule", rule=r) for r in draft.escalation_rules)
                if gap := unenforced_amount(text, draft):
                    questions.append(OpenQuestion(kind="gap", text=gap))
                continue
        questions.append(
            OpenQuestion(
                kind="ambiguous",
                text=f"could not read {text!r} as a change: say 'also handle …', "
                "'stop handling …', or state a rule ('never …', '… over $N needs a manager')",
            )
        )
    return edits, questions


def _changed_procedures(old: AgentSpec, new: AgentSpec, diff: SpecDiff) -> set[str]:
    """Procedures whose behaviour the diff can change: edited ones, and those a changed policy,
    limit or escalation rule applies to."""
    every = {p.id for p in new.procedures} | {p.id for p in old.procedures}
    changed: set[str] = set()
    for change in diff.changes:
        if match := re.match(r"procedures\[([^\]]+)\]", change.path):
            changed.add(match[1])
        elif change.path.startswith("policies"):
            scope: set[str] = set()
            for policy in (*old.policies, *new.policies):
                if change.path.startswith(f"policies[{policy.id}]"):
                    scope |= set(policy.applies_to) or every
            changed |= scope or every
        elif change.path.startswith(("escalation", "tools", "guardrails")):
            changed |= every
    return changed


def _merge_suite(
    old: ScenarioSuite, fresh: ScenarioSuite, changed: set[str], removed: set[str]
) -> ScenarioSuite:
    """Scenarios of unchanged procedures are kept as they were (mined and transcript ones
    included); changed procedures get freshly written ones."""
    kept = [s for s in old.scenarios if s.procedure not in changed and s.procedure not in removed]
    ids = {s.id for s in kept}
    added = [
        s
        for s in fresh.scenarios
        if s.id not in ids and (s.procedure in changed or s.procedure is None)
    ]
    return ScenarioSuite(name=old.name, scenarios=(*kept, *added))


async def apply_change(
    spec: AgentSpec,
    scenarios: ScenarioSuite,
    request: str,
    *,
    model: Model | None,
    tools: Sequence[ToolDescription] = (),
    metadata: Mapping[str, str] | None = None,
) -> ChangeResult:
    request = request.strip()
    asker = Asker(model, metadata=metadata)
    edits: list[Edit] = []
    questions: list[OpenQuestion] = []
    if asker.capable:
        answer: Any = await asker.structured(
            "The client asks for this change to the agent specification:\n"
            f"<request>{request}</request>\nExpress it as edit operations on the "
            "specification summarised in the material. Use existing ids.",
            spec_outline(spec),
            OPERATIONS_SCHEMA,
            name="spec_edits",
        )
        edits, questions = edits_from_model(answer, spec, request)
    if not edits:
        rule_edits, rule_questions = _rule_edits(request, spec, _known_tools(spec, tools))
        edits, questions = rule_edits, [*questions, *rule_questions]
    try:
        new_spec, applied, edit_questions = apply_edits(spec, edits, tools, request=request)
    except (ValidationError, ValueError) as exc:
        new_spec, applied = spec, []
        edit_questions = [
            OpenQuestion(kind="ambiguous", text=f"the change would make the spec invalid: {exc}")
        ]
    questions.extend(edit_questions)
    diff = diff_specs(spec, new_spec)
    changed = _changed_procedures(spec, new_spec, diff)
    removed = {p.id for p in spec.procedures} - {p.id for p in new_spec.procedures}
    if diff.empty:
        return ChangeResult(spec, scenarios, diff, (), (), tuple(questions))
    fresh = scenario_suite(new_spec, name=scenarios.name)
    suite = _merge_suite(scenarios, fresh, changed, removed)
    return ChangeResult(
        spec=new_spec,
        scenarios=suite,
        diff=diff,
        applied=tuple(applied),
        affected_scenarios=affected_scenarios(scenarios, suite, changed),
        questions=tuple(questions),
    )
