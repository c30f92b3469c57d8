"""What the linter reports: stable codes with fixed severities, and the finding model."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from deputy.domain.spec.model import AgentSpec
from deputy.domain.spec.paths import item
from deputy.domain.spec.procedures import Procedure, Step
from deputy.domain.spec.tools import Tool

Severity = Literal["error", "warning"]
LintCode = Literal[
    "unknown_tool",
    "unknown_step_target",
    "unknown_exit",
    "unknown_slot",
    "unknown_procedure",
    "invalid_template",
    "invalid_slot_pattern",
    "unreachable_step",
    "no_exit",
    "endless_loop",
    "slot_used_before_asked",
    "irreversible_without_confirmation",
    "forbidden_tool_used",
    "policy_contradicts_limit",
    "falls_off_end",
    "unused_exit",
    "undeclared_slot",
    "unused_slot",
    "ignored_next",
    "unknown_argument",
]
LINT_SEVERITY: dict[LintCode, Severity] = {
    "unknown_tool": "error",
    "unknown_step_target": "error",
    "unknown_exit": "error",
    "unknown_slot": "error",
    "unknown_procedure": "error",
    "invalid_template": "error",
    "invalid_slot_pattern": "error",
    "unreachable_step": "error",
    "no_exit": "error",
    "endless_loop": "error",
    "slot_used_before_asked": "error",
    "irreversible_without_confirmation": "error",
    "forbidden_tool_used": "error",
    "policy_contradicts_limit": "error",
    "falls_off_end": "warning",
    "unused_exit": "warning",
    "undeclared_slot": "warning",
    "unused_slot": "warning",
    "ignored_next": "warning",
    "unknown_argument": "warning",
}


class LintFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: LintCode
    path: str
    message: str

    def as_problem(self) -> dict[str, str]:
        """In the shape of a validation error (`loc`, `message`, `type`)."""
        return {"loc": self.path, "message": self.message, "type": self.code}


def lint_errors(findings: Iterable[LintFinding]) -> list[LintFinding]:
    return [finding for finding in findings if finding.severity == "error"]


def ids(names: Iterable[str]) -> str:
    listed = [f"`{name}`" for name in names]
    return ", ".join(listed) if listed else "none"


def hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def step_path(procedure: Procedure, step: Step) -> str:
    return item(f"procedures[{procedure.id}].steps", step.id)


def argument_root(argument: str) -> str:
    return argument.split(".", 1)[0]


class Findings:
    """Collects findings about one spec; the rule modules add to it."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.tools: dict[str, Tool] = {tool.name: tool for tool in spec.tools}
        self.procedures: dict[str, Procedure] = {p.id: p for p in spec.procedures}
        self.findings: list[LintFinding] = []

    def add(self, code: LintCode, path: str, message: str) -> None:
        self.findings.append(
            LintFinding(severity=LINT_SEVERITY[code], code=code, path=path, message=message)
        )

    def check_argument(self, tool: Tool, argument: str, path: str) -> None:
        properties = (tool.parameters or {}).get("properties")
        if isinstance(properties, dict) and argument_root(argument) not in properties:
            self.add(
                "unknown_argument",
                path,
                f"tool `{tool.name}` has no parameter `{argument_root(argument)}` "
                f"(its parameters: {ids(properties)}){hint(argument, properties)}",
            )
