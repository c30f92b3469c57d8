"""STAR task flowcharts (`{task, replies: {label: text}, graph: {label: next_label}}`) as one
outline section each.

In STAR's graph most labels are replies the agent sends, and `graph[a] == b` means b follows
a. Some labels are *outcomes* instead: `query_success` / `query_failure` and `available` /
`unavailable` (what a query found), `yes` / `no`, `done`, `correct`, ... (what the customer
answered). An outcome has no edge leading to it; the graph only says where it leads, and the
node it belongs to is the query or question that has no successor of its own. So outcomes are
attached, in walking order, to the first such query (query outcomes, one family each: success /
failure, available / unavailable) or question (the customer's answers).

Items come in walking order from `hello`: the path through the first (positive) outcome of
each decision first, then what is reached only through the other outcomes, then graph nodes
not reachable from `hello`, then replies the graph does not use (hint `reply`). Each item's
`branches` hold all its edges so the graph can be rebuilt exactly: `("next", b)` for its
unconditional successor, `(outcome, b)` for each outcome; an item without branches ends the
flow. An outcome that no query or question could take becomes an item of its own.

Hints: `action` for query labels (`query`, `query_*`), `question` for `*_ask_*` labels and texts
ending in "?", `reply` otherwise; every item's `action` is its label (the label a STAR wizard
picks in the dialogues). Anchors are "<task> › <label>" and quote the reply text.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from deputy.builder.read_common import PATH_SEPARATOR
from deputy.builder.sources import Anchor, ItemHint, MaterialRef, OutlineItem, OutlineSection

_OUTCOME_WORDS = 3
_QUERY_OUTCOME_FAMILIES = ("query_", "available")


def is_star_flowchart(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("graph"), Mapping)
        and isinstance(value.get("replies"), Mapping)
        and "task" in value
    )


def _is_query(label: str) -> bool:
    return label == "query" or label.startswith("query_")


def _hint(label: str, text: str) -> ItemHint:
    if _is_query(label):
        return "action"
    if "ask" in label.split("_") or text.rstrip().endswith("?"):
        return "question"
    return "reply"


def _negative(label: str) -> bool:
    return label.startswith(("no", "un", "in")) or label.endswith("failure")


class _Flowchart:
    def __init__(self, graph: Mapping[str, str], replies: Mapping[str, str]) -> None:
        self.graph = graph
        self.replies = replies
        targets = set(graph.values())
        self.start = "hello" if "hello" in graph else next(iter(graph), "hello")
        self.outcomes = [
            label
            for label in graph
            if label != self.start
            and label not in targets
            and "{" not in self.text(label)
            and len(self.text(label).split()) <= _OUTCOME_WORDS
        ]
        families: dict[str, list[str]] = {}
        self.answers: list[str] = []
        for label in self.outcomes:
            family = next((f for f in _QUERY_OUTCOME_FAMILIES if f in label), None)
            if family is None:
                self.answers.append(label)
            else:
                families.setdefault(family, []).append(label)
        self.query_outcomes = [sorted(group, key=_negative) for group in families.values()]
        self.answers.sort(key=_negative)
        self.order: list[str] = []
        self.edges: dict[str, tuple[tuple[str, str], ...]] = {}

    def text(self, label: str) -> str:
        text = self.replies.get(label)
        return text if isinstance(text, str) else label

    def _decision(self, node: str) -> list[str]:
        """The outcomes `node` (a query or question without a successor) decides, if any."""
        if _is_query(node) and self.query_outcomes:
            return self.query_outcomes.pop(0)
        if _hint(node, self.text(node)) == "question" and self.answers:
            answers, self.answers = self.answers, []
            return answers
        return []

    def walk(self) -> None:
        visited: set[str] = set()
        pending: deque[str] = deque([self.start])
        pending.extend(label for label in self.graph if label not in self.outcomes)
        pending.extend(self.graph.values())
        while pending:
            node: str | None = pending.popleft()
            while node is not None and node not in visited:
                visited.add(node)
                self.order.append(node)
                if node in self.graph:
                    self.edges[node] = (("next", self.graph[node]),)
                    node = self.graph[node]
                    continue
                decided = self._decision(node)
                if not decided:
                    break
                self.edges[node] = tuple((label, self.graph[label]) for label in decided)
                node = self.graph[decided[0]]
                pending.extendleft(reversed([self.graph[label] for label in decided[1:]]))
        for label in [*self.query_outcomes_left(), *self.answers]:
            self.order.append(label)
            self.edges[label] = (("next", self.graph[label]),)
        listed = set(self.order) | set(self.outcomes)
        self.order += [label for label in self.replies if label not in listed]

    def query_outcomes_left(self) -> list[str]:
        return [label for group in self.query_outcomes for label in group]


def read_star_flowchart(ref: MaterialRef, value: Mapping[str, Any]) -> OutlineSection:
    """The flowchart as one section (origin "flowchart"). Raises `ValueError` naming what is
    malformed (labels and texts must be strings)."""
    graph, replies = value["graph"], value["replies"]
    for mapping, name in ((graph, "graph"), (replies, "replies")):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise ValueError(f"`{name}` must map labels to strings")
    task = value.get("task")
    task = task if isinstance(task, str) and task.strip() else ref.name.rsplit(".", 1)[0]
    chart = _Flowchart(graph, replies)
    chart.walk()
    items = tuple(
        OutlineItem(
            key=label,
            text=chart.text(label),
            anchor=Anchor(
                kind="document",
                label=f"{task}{PATH_SEPARATOR}{label}",
                quote=chart.text(label),
                material=ref,
            ),
            hint=_hint(label, chart.text(label)) if label not in chart.outcomes else "reply",
            action=label,
            branches=chart.edges.get(label, ()),
        )
        for label in chart.order
    )
    return OutlineSection(
        title=task.replace("_", " ").strip().capitalize(),
        anchor=Anchor(kind="document", label=task, quote=task, material=ref),
        items=items,
        origin="flowchart",
    )
