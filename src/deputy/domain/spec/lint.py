"""The AgentSpec linter: the rules that need the whole spec (the model checks structure).

Each finding has a stable `code` with a fixed severity (`deputy.domain.spec.findings`), the
`path` of the element it is about (`deputy.domain.spec.paths`) and a message naming the ids
involved. Errors make a spec unfit to run (the platform refuses to store it as a version);
warnings are for the reviewer. Control flow follows `deputy.domain.spec.flow`. Notable rules:

- `no_exit`: no `end` or `handoff` step is reachable; `falls_off_end` (warning): some path runs
  past the last step without one; `endless_loop`: reachable steps from which nothing ends.
- `slot_used_before_asked`: a template uses a slot that is not filled on *every* path to the
  step (filled by an `ask`, a tool call's `save_as`, or at entry for `context` slots).
- `irreversible_without_confirmation`: not every path to an irreversible call passes the yes of
  a `confirm` step since the previous irreversible call (each confirmation covers one action).
- `policy_contradicts_limit`: a limit allows values a policy forbids on the same tool and
  argument (a step's limit, in the procedures the policy applies to; a tool's own limit, for
  policies that apply everywhere), or the two admit no value at all.
- an `end` step's exit counts as used; a reachable `handoff` uses the procedure's escalated exits.
"""

from __future__ import annotations

import re

from deputy.domain.spec.findings import (
    LINT_SEVERITY,
    Findings,
    LintCode,
    LintFinding,
    Severity,
    hint,
    ids,
    lint_errors,
    step_path,
)
from deputy.domain.spec.flow import (
    Edge,
    Facts,
    Flow,
    assigned_slot,
    build_flow,
    must_facts,
    template_names,
    templates,
)
from deputy.domain.spec.lint_policies import policy_rules
from deputy.domain.spec.model import AgentSpec
from deputy.domain.spec.paths import element_keys, field, item
from deputy.domain.spec.procedures import Step

__all__ = [
    "LINT_SEVERITY",
    "LintCode",
    "LintFinding",
    "Severity",
    "lint_errors",
    "lint_spec",
]

_CONFIRMED: Facts = frozenset({"confirmed"})


class _Linter(Findings):
    def run(self) -> list[LintFinding]:
        for procedure in self.spec.procedures:
            flow = build_flow(procedure)
            self.flow_rules(flow)
            self.exit_rules(flow)
            self.slot_rules(flow)
            self.tool_rules(flow)
        for tool in self.spec.tools:
            for key, limit in zip(element_keys(tool.limits), tool.limits, strict=True):
                self.check_argument(tool, limit.argument, item(f"tools[{tool.name}].limits", key))
        for policy in self.spec.policies:
            policy_rules(self, policy)
        return self.findings

    # ---- control flow --------------------------------------------------------------------

    def flow_rules(self, flow: Flow) -> None:
        procedure = flow.procedure
        steps = procedure.steps
        for step_id, label, target in flow.unknown_targets:
            self.add(
                "unknown_step_target",
                field(item(f"procedures[{procedure.id}].steps", step_id), label),
                f"step `{step_id}` of procedure `{procedure.id}` goes to `{target}` ({label}), "
                f"which is not a step of this procedure{hint(target, flow.steps)}",
            )
        for step in steps:
            if step.kind == "check" and step.otherwise is not None and step.next is not None:
                self.add(
                    "ignored_next",
                    field(step_path(procedure, step), "next"),
                    f"check step `{step.id}` of procedure `{procedure.id}` sets both `otherwise` "
                    f"and `next`: `next` (`{step.next}`) is never taken",
                )
        reachable = flow.reachable()
        for step in steps:
            if step.id not in reachable:
                self.add(
                    "unreachable_step",
                    step_path(procedure, step),
                    f"step `{step.id}` of procedure `{procedure.id}` can never run: no path from "
                    f"the first step `{flow.start}` reaches it",
                )
        ordered = [step for step in steps if step.id in reachable]
        ends = [step for step in ordered if step.terminal]
        falls = [step for step in ordered if any(e.target is None for e in flow.edges[step.id])]
        if not ends:
            self.add(
                "no_exit",
                f"procedures[{procedure.id}]",
                f"procedure `{procedure.id}` has no exit: no `end` or `handoff` step is "
                f"reachable from its first step `{flow.start}`",
            )
        for step in falls:
            self.add(
                "falls_off_end",
                step_path(procedure, step),
                f"after step `{step.id}`, procedure `{procedure.id}` can run past its last step "
                "without an `end` or `handoff` step, so no exit says how it ended",
            )
        finish = flow.can_finish()
        trapped = [step.id for step in ordered if step.id not in finish]
        if trapped and (ends or falls):
            self.add(
                "endless_loop",
                item(f"procedures[{procedure.id}].steps", trapped[0]),
                f"{'steps' if len(trapped) > 1 else 'step'} {ids(trapped)} of procedure "
                f"`{procedure.id}` loop{'' if len(trapped) > 1 else 's'} forever: no path from "
                f"{'them' if len(trapped) > 1 else 'it'} reaches an `end` or `handoff` step or "
                "the end of the procedure",
            )

    def exit_rules(self, flow: Flow) -> None:
        procedure = flow.procedure
        declared = [exit_.id for exit_ in procedure.exits]
        reachable = flow.reachable()
        used: set[str] = set()
        for step in procedure.steps:
            if step.kind == "handoff" and step.id in reachable:
                used.update(e.id for e in procedure.exits if e.outcome == "escalated")
            if step.kind != "end" or step.exit is None:
                continue
            if step.id in reachable:
                used.add(step.exit)
            if step.exit not in declared:
                self.add(
                    "unknown_exit",
                    field(step_path(procedure, step), "exit"),
                    f"step `{step.id}` ends procedure `{procedure.id}` with exit `{step.exit}`, "
                    f"which the procedure does not declare (its exits: {ids(declared)})"
                    f"{hint(step.exit, declared)}",
                )
        for exit_ in procedure.exits:
            if exit_.id not in used:
                self.add(
                    "unused_exit",
                    item(f"procedures[{procedure.id}].exits", exit_.id),
                    f"exit `{exit_.id}` ({exit_.outcome}) of procedure `{procedure.id}` is never "
                    "reached: no reachable step ends with it",
                )

    # ---- slots -----------------------------------------------------------------------------

    def slot_rules(self, flow: Flow) -> None:
        procedure = flow.procedure
        declared = {slot.id for slot in procedure.slots}
        fillers: dict[str, list[str]] = {}
        for step in procedure.steps:
            filled = assigned_slot(step)
            if filled is not None:
                fillers.setdefault(filled, []).append(step.id)
        known = declared | fillers.keys()
        for slot in procedure.slots:
            if slot.pattern is not None:
                try:
                    re.compile(slot.pattern)
                except re.error as exc:
                    self.add(
                        "invalid_slot_pattern",
                        field(item(f"procedures[{procedure.id}].slots", slot.id), "pattern"),
                        f"the pattern of slot `{slot.id}` in procedure `{procedure.id}` is not a "
                        f"valid regular expression: {exc}",
                    )
        for step in procedure.steps:
            if step.kind == "ask" and step.slot not in declared:
                self.add(
                    "undeclared_slot",
                    field(step_path(procedure, step), "slot"),
                    f"step `{step.id}` asks for slot `{step.slot}`, which procedure "
                    f"`{procedure.id}` does not declare in `slots` (its type and meaning are "
                    "unknown)",
                )

        def fill(step: Step, edge: Edge, facts: Facts) -> Facts:
            filled = assigned_slot(step)
            return facts | {filled} if filled is not None else facts

        context = frozenset(slot.id for slot in procedure.slots if slot.source == "context")
        filled_before = must_facts(flow, context, fill)
        used: set[str] = set()
        for step in procedure.steps:
            for where, text in templates(step):
                path = field(step_path(procedure, step), where)
                try:
                    names = template_names(text)
                except ValueError as exc:
                    self.add(
                        "invalid_template",
                        path,
                        f"step `{step.id}` of procedure `{procedure.id}` has a malformed template "
                        f"in `{where}`: {exc} (write `{{{{` and `}}}}` for literal braces)",
                    )
                    continue
                for name in dict.fromkeys(names):
                    used.add(name)
                    if name not in known:
                        self.add(
                            "unknown_slot",
                            path,
                            f"step `{step.id}` of procedure `{procedure.id}` uses `{{{name}}}` in "
                            f"`{where}`, but the procedure has no slot `{name}`"
                            f"{hint(name, known)}",
                        )
                    elif step.id in filled_before and name not in filled_before[step.id]:
                        by = fillers.get(name)
                        source = f"filled by {ids(by)}" if by else "no step asks for it"
                        self.add(
                            "slot_used_before_asked",
                            path,
                            f"step `{step.id}` of procedure `{procedure.id}` uses slot `{name}` "
                            f"in `{where}`, but not every path to it fills the slot ({source})",
                        )
        for slot in procedure.slots:
            if slot.id not in used and slot.id not in fillers:
                self.add(
                    "unused_slot",
                    item(f"procedures[{procedure.id}].slots", slot.id),
                    f"slot `{slot.id}` of procedure `{procedure.id}` is never asked, saved or used",
                )

    def tool_rules(self, flow: Flow) -> None:
        procedure = flow.procedure
        irreversible = {t.name for t in self.spec.tools if t.effect == "irreversible"}

        def confirm(step: Step, edge: Edge, facts: Facts) -> Facts:
            if edge.confirmed:
                return _CONFIRMED
            if step.kind == "call_tool" and step.tool in irreversible:
                return frozenset()
            return facts

        confirmed = must_facts(flow, frozenset(), confirm)
        for step in procedure.steps:
            if step.kind != "call_tool" or step.tool is None:
                continue
            tool = self.tools.get(step.tool)
            path = step_path(procedure, step)
            if tool is None:
                self.add(
                    "unknown_tool",
                    field(path, "tool"),
                    f"step `{step.id}` of procedure `{procedure.id}` calls tool `{step.tool}`, "
                    f"which the spec does not declare in `tools`{hint(step.tool, self.tools)}",
                )
                continue
            if tool.effect == "irreversible" and confirmed.get(step.id, _CONFIRMED) != _CONFIRMED:
                self.add(
                    "irreversible_without_confirmation",
                    path,
                    f"step `{step.id}` of procedure `{procedure.id}` calls the irreversible tool "
                    f"`{tool.name}`, but not every path to it passes a `confirm` step (after any "
                    "earlier irreversible call): add one before it",
                )
            for key in step.arguments:
                self.check_argument(tool, key, item(field(path, "arguments"), key))
            for key, limit in zip(element_keys(step.limits), step.limits, strict=True):
                self.check_argument(tool, limit.argument, item(field(path, "limits"), key))


def lint_spec(spec: AgentSpec) -> list[LintFinding]:
    """Every finding about `spec`, procedures first (in order), then tools and policies."""
    return _Linter(spec).run()
