"""Argument limits from the spec, enforced in code before a call leaves.

A limit names a dotted path into the arguments (`refund.amount`); a `*` segment fans out over every
element of a list (or every value of an object): `items.*.quantity`. A path that is absent from the
arguments does not constrain the call (the JSON Schema decides what is required). A value that a
numeric bound cannot be checked against (a string, a boolean) breaks the limit: limits fail
closed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deputy.domain.spec import AgentSpec, ArgumentLimit, Policy

LimitOrigin = str
"""Where a limit comes from: `tool`, `step`, or `policy:<id>`."""


@dataclass(frozen=True)
class LimitViolation:
    argument: str
    """The concrete path of the offending value (`items.2.quantity`)."""
    value: Any
    origin: LimitOrigin
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "argument": self.argument,
            "value": self.value,
            "origin": self.origin,
            "message": self.message,
        }


@dataclass(frozen=True)
class ScopedLimit:
    limit: ArgumentLimit
    origin: LimitOrigin


_MISSING = object()


def resolve(arguments: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (concrete path, value) the dotted `path` reaches; nothing when it is absent."""

    def walk(
        node: Any, segments: Sequence[str], prefix: tuple[str, ...]
    ) -> Iterator[tuple[str, Any]]:
        if not segments:
            yield ".".join(prefix), node
            return
        head, rest = segments[0], segments[1:]
        if head == "*":
            if isinstance(node, list):
                for index, item in enumerate(node):
                    yield from walk(item, rest, (*prefix, str(index)))
            elif isinstance(node, Mapping):
                for key, item in node.items():
                    yield from walk(item, rest, (*prefix, str(key)))
            return
        if isinstance(node, Mapping):
            child = node.get(head, _MISSING)
            if child is not _MISSING:
                yield from walk(child, rest, (*prefix, head))
        elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
            yield from walk(node[int(head)], rest, (*prefix, head))

    yield from walk(arguments, path.split("."), ())


def _same_scalar(left: Any, right: Any) -> bool:
    """Equality without Python's True == 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _one_of(value: Any, allowed: Iterable[Any]) -> bool:
    return any(_same_scalar(value, candidate) for candidate in allowed)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def check_limit(arguments: Any, scoped: ScopedLimit) -> list[LimitViolation]:
    limit = scoped.limit
    violations: list[LimitViolation] = []
    for path, value in resolve(arguments, limit.argument):
        problem: str | None = None
        if limit.min is not None or limit.max is not None:
            number = _number(value)
            if number is None:
                problem = f"{path} must be a number to be checked against its limit"
            elif limit.max is not None and number > limit.max:
                problem = f"{path} is {value}; the limit is at most {limit.max:g}"
            elif limit.min is not None and number < limit.min:
                problem = f"{path} is {value}; the limit is at least {limit.min:g}"
        allowed = limit.one_of
        if problem is None and allowed is not None and not _one_of(value, allowed):
            allowed_text = ", ".join(repr(v) for v in allowed)
            problem = f"{path} is {value!r}; it must be one of {allowed_text}"
        if problem is not None:
            message = f"{limit.message} ({problem})" if limit.message else problem
            violations.append(LimitViolation(path, value, scoped.origin, message))
    return violations


def check_limits(
    arguments: Mapping[str, Any], limits: Iterable[ScopedLimit]
) -> list[LimitViolation]:
    return [violation for scoped in limits for violation in check_limit(arguments, scoped)]


def applicable_policies(spec: AgentSpec, procedure_id: str | None) -> list[Policy]:
    """Policies that apply to `procedure_id`, or to every procedure. Without a procedure (the
    conversation has not matched one) every policy applies: a procedure-bound rule is never
    skipped because the runtime could not say where it is."""
    if procedure_id is None:
        return list(spec.policies)
    return [p for p in spec.policies if not p.applies_to or procedure_id in p.applies_to]


def forbidding_policies(spec: AgentSpec, procedure_id: str | None, tool: str) -> list[Policy]:
    return [p for p in applicable_policies(spec, procedure_id) if tool in p.forbids_tools]


def limits_for(
    spec: AgentSpec,
    tool: str,
    procedure_id: str | None,
    step_limits: Sequence[ArgumentLimit] = (),
) -> list[ScopedLimit]:
    """The tool's own limits, the calling step's, and the applicable policies' for this tool."""
    scoped: list[ScopedLimit] = []
    bound = spec.tool(tool)
    if bound is not None:
        scoped.extend(ScopedLimit(limit, "tool") for limit in bound.limits)
    scoped.extend(ScopedLimit(limit, "step") for limit in step_limits)
    for policy in applicable_policies(spec, procedure_id):
        scoped.extend(
            ScopedLimit(limit, f"policy:{policy.id}")
            for limit in policy.limits
            if limit.tool == tool
        )
    return scoped
