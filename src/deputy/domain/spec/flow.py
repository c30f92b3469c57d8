"""A procedure's control flow as a graph, and the analyses the linter runs over it.

Semantics (the guided runtime must follow the same): the flow starts at the first step. A step's
*continuation* is its `next`, or else the following step, or else nothing: the flow falls off
the end of the procedure. `ask`, `call_tool` and `say` go to their continuation; `check` goes to
`then` when the condition holds and to `otherwise` (else the continuation) when it does not;
`confirm` goes to the continuation on a yes and to `on_decline` on a no; `end` and `handoff` are
terminal. A target naming no step of the procedure gives no edge (the linter reports it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from string import Formatter
from typing import Literal

from pydantic import JsonValue

from deputy.domain.spec.procedures import Procedure, Step

EdgeLabel = Literal["next", "following", "then", "otherwise", "on_decline"]
Facts = frozenset[str]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str | None  # None: past the last step
    label: EdgeLabel
    confirmed: bool = False  # the `yes` of a confirm step


@dataclass(frozen=True)
class Flow:
    procedure: Procedure
    steps: dict[str, Step]
    edges: dict[str, tuple[Edge, ...]]
    unknown_targets: tuple[tuple[str, str, str], ...]  # (step id, field, target)
    incoming: dict[str, list[Edge]] = field(default_factory=dict)

    @property
    def start(self) -> str:
        return self.procedure.steps[0].id

    def reachable(self) -> set[str]:
        seen = {self.start}
        todo = [self.start]
        while todo:
            for edge in self.edges[todo.pop()]:
                if edge.target is not None and edge.target not in seen:
                    seen.add(edge.target)
                    todo.append(edge.target)
        return seen

    def can_finish(self) -> set[str]:
        """Steps from which some path reaches a terminal step or the end of the procedure."""
        done = {
            s.id
            for s in self.procedure.steps
            if s.terminal or any(e.target is None for e in self.edges[s.id])
        }
        todo = list(done)
        while todo:
            for edge in self.incoming[todo.pop()]:
                if edge.source not in done:
                    done.add(edge.source)
                    todo.append(edge.source)
        return done


def _continuation(step: Step, following: str | None) -> tuple[str | None, EdgeLabel]:
    if step.next is not None:
        return step.next, "next"
    return following, "following"


def _raw_edges(step: Step, following: str | None) -> Iterator[tuple[str | None, EdgeLabel, bool]]:
    if step.terminal:
        return
    target, label = _continuation(step, following)
    if step.kind == "check":
        assert step.then is not None
        yield step.then, "then", False
        if step.otherwise is not None:
            yield step.otherwise, "otherwise", False
        else:
            yield target, label, False
    elif step.kind == "confirm":
        yield target, label, True
        assert step.on_decline is not None
        yield step.on_decline, "on_decline", False
    else:
        yield target, label, False


def build_flow(procedure: Procedure) -> Flow:
    steps = {s.id: s for s in procedure.steps}
    ids = [s.id for s in procedure.steps]
    edges: dict[str, tuple[Edge, ...]] = {}
    unknown: list[tuple[str, str, str]] = []
    for index, step in enumerate(procedure.steps):
        following = ids[index + 1] if index + 1 < len(ids) else None
        found: list[Edge] = []
        for target, label, confirmed in _raw_edges(step, following):
            if target is not None and target not in steps:
                unknown.append((step.id, label, target))
                continue
            found.append(Edge(step.id, target, label, confirmed))
        edges[step.id] = tuple(found)
    incoming: dict[str, list[Edge]] = {s: [] for s in ids}
    for out in edges.values():
        for edge in out:
            if edge.target is not None:
                incoming[edge.target].append(edge)
    return Flow(procedure, steps, edges, tuple(unknown), incoming)


Transfer = Callable[[Step, Edge, Facts], Facts]


def must_facts(flow: Flow, entry: Facts, transfer: Transfer) -> dict[str, Facts]:
    """What holds on *every* path into each reachable step (a must / all-paths analysis).

    `entry` holds at the start; `transfer(step, edge, facts)` gives what holds after leaving
    `step` along `edge` when `facts` held on entering it. The result is the greatest fixed
    point: loops only keep what holds around them."""
    reached = flow.reachable()
    reachable = [s.id for s in flow.procedure.steps if s.id in reached]
    known: dict[str, Facts | None] = dict.fromkeys(reachable)  # None: "everything" (top)
    changed = True
    while changed:
        changed = False
        for step_id in reachable:
            arriving: list[Facts] = [entry] if step_id == flow.start else []
            for edge in flow.incoming[step_id]:
                before = known.get(edge.source)
                if before is not None:
                    arriving.append(transfer(flow.steps[edge.source], edge, before))
            if not arriving:
                continue
            value = frozenset.intersection(*arriving)
            if value != known[step_id]:
                known[step_id] = value
                changed = True
    return {step_id: facts for step_id, facts in known.items() if facts is not None}


def assigned_slot(step: Step) -> str | None:
    """The slot a step fills: an ask's slot, a tool call's `save_as`."""
    if step.kind == "ask":
        return step.slot
    if step.kind == "call_tool":
        return step.save_as
    return None


def template_names(text: str) -> list[str]:
    """The slots a template refers to (`{order_id}`, `{order.status}`, `{items[0]}`); raises
    `ValueError` for a malformed template or a positional field (`{}`, `{0}`)."""
    names: list[str] = []
    for _, name, spec, _ in Formatter().parse(text):
        if name is None:
            continue
        base = name.split(".", 1)[0].split("[", 1)[0]
        if not base or base.isdigit():
            raise ValueError(f"the field {{{name}}} names no slot")
        names.append(base)
        if spec:
            names.extend(template_names(spec))
    return names


def _strings(value: JsonValue) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for element in value:
            yield from _strings(element)
    elif isinstance(value, dict):
        for element in value.values():
            yield from _strings(element)


def templates(step: Step) -> Iterator[tuple[str, str]]:
    """Each template of a step as (where, text): `text`, `condition`, `arguments[key]`."""
    if step.text:
        yield "text", step.text
    if step.condition:
        yield "condition", step.condition
    for key, value in step.arguments.items():
        for text in _strings(value):
            yield f"arguments[{key}]", text
