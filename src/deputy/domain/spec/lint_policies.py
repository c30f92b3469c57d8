"""Lint rules about policies: what they apply to and forbid, and limits that contradict them."""

from __future__ import annotations

from deputy.domain.spec.base import ArgumentLimit
from deputy.domain.spec.findings import Findings, hint, ids, number, step_path
from deputy.domain.spec.paths import element_keys, field, item
from deputy.domain.spec.procedures import Policy, PolicyLimit


def _looser(policy: PolicyLimit, other: ArgumentLimit, policy_id: str) -> list[str]:
    """How `other` allows what the policy's limit forbids (empty: it does not)."""
    rule = f"policy `{policy_id}`"
    reasons: list[str] = []
    if policy.max is not None and other.max is not None and other.max > policy.max:
        reasons.append(
            f"allows up to {number(other.max)} where {rule} allows at most {number(policy.max)}"
        )
    if policy.min is not None and other.min is not None and other.min < policy.min:
        reasons.append(
            f"allows down to {number(other.min)} where {rule} requires at least "
            f"{number(policy.min)}"
        )
    if policy.max is not None and other.min is not None and other.min > policy.max:
        reasons.append(
            f"requires at least {number(other.min)} where {rule} allows at most "
            f"{number(policy.max)}: no value satisfies both"
        )
    if policy.min is not None and other.max is not None and other.max < policy.min:
        reasons.append(
            f"allows at most {number(other.max)} where {rule} requires at least "
            f"{number(policy.min)}: no value satisfies both"
        )
    if other.one_of is not None:
        outside = [
            value
            for value in other.one_of
            if (policy.one_of is not None and value not in policy.one_of)
            or (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and (
                    (policy.max is not None and value > policy.max)
                    or (policy.min is not None and value < policy.min)
                )
            )
        ]
        if outside:
            reasons.append(f"allows {ids(str(v) for v in outside)}, which {rule} does not")
    return reasons


def policy_rules(report: Findings, policy: Policy) -> None:
    base = f"policies[{policy.id}]"
    for procedure_id in policy.applies_to:
        if procedure_id not in report.procedures:
            report.add(
                "unknown_procedure",
                item(field(base, "applies_to"), procedure_id),
                f"policy `{policy.id}` applies to procedure `{procedure_id}`, which the spec "
                f"does not define{hint(procedure_id, report.procedures)}",
            )
    for name in policy.forbids_tools:
        if name not in report.tools:
            report.add(
                "unknown_tool",
                item(field(base, "forbids_tools"), name),
                f"policy `{policy.id}` forbids tool `{name}`, which the spec does not declare "
                f"in `tools`{hint(name, report.tools)}",
            )
    covered = [
        p for p in report.spec.procedures if not policy.applies_to or p.id in policy.applies_to
    ]
    calls = [(p, s) for p in covered for s in p.steps if s.kind == "call_tool"]
    for procedure, step in calls:
        if step.tool in policy.forbids_tools:
            report.add(
                "forbidden_tool_used",
                field(step_path(procedure, step), "tool"),
                f"step `{step.id}` of procedure `{procedure.id}` calls tool `{step.tool}`, "
                f"which policy `{policy.id}` forbids",
            )
    for key, limit in zip(element_keys(policy.limits), policy.limits, strict=True):
        path = item(field(base, "limits"), key)
        tool = report.tools.get(limit.tool)
        if tool is None:
            report.add(
                "unknown_tool",
                path,
                f"policy `{policy.id}` limits tool `{limit.tool}`, which the spec does not "
                f"declare in `tools`{hint(limit.tool, report.tools)}",
            )
            continue
        report.check_argument(tool, limit.argument, path)
        argument = f"`{limit.argument}`"
        others: list[tuple[str, str, ArgumentLimit]] = []
        if not policy.applies_to:
            owner = f"tool `{tool.name}`'s own limit on {argument}"
            others += [
                (item(f"tools[{tool.name}].limits", k), owner, other)
                for k, other in zip(element_keys(tool.limits), tool.limits, strict=True)
            ]
        for procedure, step in calls:
            if step.tool == tool.name:
                owner = (
                    f"the limit on {argument} of `{tool.name}` in step `{step.id}` of "
                    f"procedure `{procedure.id}`"
                )
                limits_path = field(step_path(procedure, step), "limits")
                others += [
                    (item(limits_path, k), owner, other)
                    for k, other in zip(element_keys(step.limits), step.limits, strict=True)
                ]
        for other_path, owner, other in others:
            if other.argument == limit.argument:
                for reason in _looser(limit, other, policy.id):
                    report.add("policy_contradicts_limit", other_path, f"{owner} {reason}")
