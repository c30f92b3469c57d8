"""Paths through a procedure, for writing scenarios: which steps a customer goes through when
each check comes out one way or the other and each confirmation is a yes or a no, where that
ends (the outcome), and which write or irreversible tool calls happen on the way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deputy.domain.scenarios import ExpectedOutcome, ToolCallExpectation
from deputy.domain.spec import AgentSpec, Procedure, Step
from deputy.domain.spec.flow import Edge, build_flow

MAX_PATHS = 200
MAX_VISITS = 5000
Answer = Literal["yes", "no"]


@dataclass(frozen=True, slots=True)
class Path:
    """Steps in order, with the answer taken at each check and confirm step."""

    steps: tuple[Step, ...]
    answers: tuple[tuple[str, Answer], ...]

    def answer(self, step_id: str) -> Answer | None:
        return next((a for s, a in self.answers if s == step_id), None)

    def after(self, step_id: str) -> tuple[Step, ...]:
        ids = [s.id for s in self.steps]
        return self.steps[ids.index(step_id) + 1 :] if step_id in ids else ()


def _answer(step: Step, edge: Edge) -> Answer | None:
    if step.kind == "check":
        return "yes" if edge.label == "then" else "no"
    if step.kind == "confirm":
        return "yes" if edge.confirmed else "no"
    return None


def paths(procedure: Procedure) -> list[Path]:
    """Simple paths from the first step to an end, a handoff, the end of the steps or a step
    that can only loop back, depth first with a check's `then` and a confirmation's yes tried
    first (at most `MAX_PATHS`, after at most `MAX_VISITS` steps walked). Never empty."""
    flow = build_flow(procedure)
    found: list[Path] = []
    visits = 0

    def walk(step_id: str, steps: list[Step], answers: list[tuple[str, Answer]]) -> None:
        nonlocal visits
        visits += 1
        if len(found) >= MAX_PATHS or visits > MAX_VISITS:
            return
        step = flow.steps[step_id]
        steps = [*steps, step]
        ordered = sorted(
            flow.edges[step_id], key=lambda e: 0 if e.label == "then" or e.confirmed else 1
        )
        ended = True
        for edge in ordered:
            answer = _answer(step, edge)
            taken = [*answers, (step.id, answer)] if answer is not None else answers
            if edge.target is None:
                found.append(Path(tuple(steps), tuple(taken)))
                ended = False
            elif all(s.id != edge.target for s in steps):
                walk(edge.target, steps, taken)
                ended = False
        if ended:
            found.append(Path(tuple(steps), tuple(answers)))

    walk(flow.start, [], [])
    return found


def outcome(procedure: Procedure, path: Path) -> ExpectedOutcome:
    """How a path ends: a handoff escalates, an end step gives its exit's outcome, running off
    the last step resolves."""
    last = path.steps[-1]
    if last.kind == "handoff":
        return "escalated"
    if last.kind == "end":
        exit_ = next((e for e in procedure.exits if e.id == last.exit), None)
        return exit_.outcome if exit_ is not None else "resolved"
    return "resolved"


def writes(spec: AgentSpec, steps: tuple[Step, ...]) -> list[ToolCallExpectation]:
    """The write and irreversible tool calls among `steps`, with the arguments the spec fixes
    (literal values, not templates); unknown tools count as writes."""
    calls: list[ToolCallExpectation] = []
    for step in steps:
        if step.kind != "call_tool" or step.tool is None:
            continue
        tool = spec.tool(step.tool)
        if tool is not None and tool.effect == "read":
            continue
        fixed = {
            key: value
            for key, value in step.arguments.items()
            if not (isinstance(value, str) and "{" in value)
        }
        call = ToolCallExpectation(tool=step.tool, arguments=fixed)
        if call not in calls:
            calls.append(call)
    return calls


def happy_path(procedure: Procedure, every: list[Path]) -> Path:
    """The first path that resolves without a handoff (else the first path)."""
    return next(
        (p for p in every if outcome(procedure, p) == "resolved" and p.steps[-1].kind != "handoff"),
        every[0],
    )


def taking(every: list[Path], step_id: str, answer: Answer) -> Path | None:
    return next((p for p in every if p.answer(step_id) == answer), None)


def ending_at(every: list[Path], step_id: str) -> Path | None:
    return next((p for p in every if p.steps[-1].id == step_id), None)
