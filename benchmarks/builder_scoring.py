"""Scoring for the builder benchmark: pure functions over names, sequences and graphs, so the
rules that decide what counts as a match are small, readable and tested on their own
(tests/unit/test_builder_benchmark_scoring.py).

Everything that knows the answer lives here or in benchmarks/builder.py (the ground-truth
side): mapping ABCD's `kb.json` keys to subflow names, button names to `kb.json` action names,
and STAR flowchart labels to graph nodes and edges. The builder never sees any of it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONDITION_WORDS = 3
"""A STAR flowchart label whose reply text is this short and that no edge leads to is an
outcome (yes, no, query_success, available...), not a node the agent says or does."""
MIN_ACTION_OVERLAP = 1 / 3


def normalise(text: str) -> str:
    """Lower case, words of letters and digits joined by single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class TitleMatch:
    pairs: tuple[tuple[str, str], ...]  # (procedure title, subflow name)
    precision: float | None
    recall: float | None


def match_titles(titles: Sequence[str], names: Sequence[str]) -> TitleMatch:
    """One-to-one matching of procedure titles to expected names: equal after `normalise`
    first, then one containing the other as whole words (longest name first, so "Manage
    Shipping" does not take "Shipping Status"'s procedure). Precision over titles, recall over
    names."""
    free_titles = list(dict.fromkeys(titles))
    pairs: list[tuple[str, str]] = []
    remaining = sorted(dict.fromkeys(names), key=lambda n: -len(normalise(n)))
    for exact in (True, False):
        for name in list(remaining):
            wanted = normalise(name)
            for title in free_titles:
                got = normalise(title)
                if got == wanted or (
                    not exact and (f" {wanted} " in f" {got} " or f" {got} " in f" {wanted} ")
                ):
                    pairs.append((title, name))
                    free_titles.remove(title)
                    remaining.remove(name)
                    break
    return TitleMatch(
        pairs=tuple(pairs),
        precision=_ratio(len(pairs), len(set(titles))),
        recall=_ratio(len(pairs), len(set(names))),
    )


def _tokens(name: str) -> set[str]:
    return {word.removesuffix("s") for word in normalise(name).split()}


def map_action(name: str, vocabulary: Iterable[str]) -> str | None:
    """The vocabulary entry a button or tool name stands for: equal after `normalise`, else the
    entry sharing the largest share of words (Jaccard, plurals folded; at least a third, ties
    broken alphabetically). "Pull up Account" → pull-up-account, "Notify Internal Team" →
    notify-team, "Boots" → search-boots, "N/A" → None."""
    wanted = normalise(name)
    entries = sorted(vocabulary)
    for entry in entries:
        if normalise(entry) == wanted:
            return entry
    words = _tokens(name)
    best: tuple[float, str] | None = None
    for entry in entries:
        theirs = _tokens(entry)
        overlap = len(words & theirs) / len(words | theirs) if words | theirs else 0.0
        if overlap >= MIN_ACTION_OVERLAP and (best is None or overlap > best[0]):
            best = (overlap, entry)
    return best[1] if best else None


def edit_distance(left: Sequence[str], right: Sequence[str]) -> int:
    """Levenshtein distance between two sequences of names."""
    previous = list(range(len(right) + 1))
    for i, a in enumerate(left, start=1):
        current = [i]
        for j, b in enumerate(right, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def lcs(left: Sequence[str], right: Sequence[str]) -> int:
    table = [[0] * (len(right) + 1) for _ in range(len(left) + 1)]
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def sequence_scores(predicted: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    """Action precision / recall (as multisets), exact sequence match and edit distance
    normalised by the longer sequence (0: same, 1: nothing in common)."""
    remaining = list(gold)
    hits = 0
    for name in predicted:
        if name in remaining:
            remaining.remove(name)
            hits += 1
    longer = max(len(predicted), len(gold))
    return {
        "precision": _ratio(hits, len(predicted)),
        "recall": _ratio(hits, len(gold)),
        "exact": list(predicted) == list(gold),
        "edit_distance": round(edit_distance(predicted, gold) / longer, 4) if longer else 0.0,
    }


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def collapse(names: Iterable[str | None]) -> list[str]:
    """Names in order, None dropped, consecutive repeats collapsed."""
    result: list[str] = []
    for name in names:
        if name is not None and (not result or result[-1] != name):
            result.append(name)
    return result


# ---- STAR flowcharts ------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowchartTruth:
    """A STAR flowchart as a graph of what the agent says or does: `nodes` (labels, outcome
    labels left out), `edges` (the graph's edges between two nodes; an edge from an outcome is
    left out, the JSON does not say which node an outcome belongs to), `main_path` (the chain of
    edges from `hello`) and `ordered` (pairs (a, b) where b is reachable from a, not back)."""

    nodes: frozenset[str]
    edges: frozenset[tuple[str, str]]
    main_path: tuple[str, ...]
    ordered: frozenset[tuple[str, str]]
    outcomes: frozenset[str]


def flowchart_truth(flowchart: Mapping[str, Any]) -> FlowchartTruth:
    graph: Mapping[str, str] = flowchart["graph"]
    replies: Mapping[str, str] = flowchart["replies"]
    start = "hello" if "hello" in graph else next(iter(graph))
    targets = set(graph.values())
    outcomes = {
        label
        for label in graph
        if label != start
        and label not in targets
        and len(str(replies.get(label, label)).split()) <= CONDITION_WORDS
        and "{" not in str(replies.get(label, ""))
    }
    nodes = (set(graph) | targets) - outcomes
    edges = {(a, b) for a, b in graph.items() if a in nodes and b in nodes and a != b}
    path = [start]
    while path[-1] in graph and graph[path[-1]] in nodes and graph[path[-1]] not in path:
        path.append(graph[path[-1]])
    following: dict[str, set[str]] = {}
    for a, b in edges:
        following.setdefault(a, set()).add(b)
    reach: set[tuple[str, str]] = set()
    for node in nodes:
        seen: set[str] = set()
        todo = [node]
        while todo:
            for after in following.get(todo.pop(), set()) - seen:
                seen.add(after)
                todo.append(after)
        reach |= {(node, other) for other in seen if other != node}
    ordered = {(a, b) for a, b in reach if (b, a) not in reach}
    return FlowchartTruth(
        frozenset(nodes), frozenset(edges), tuple(path), frozenset(ordered), frozenset(outcomes)
    )


def graph_scores(
    nodes: set[str], edges: set[tuple[str, str]], order: Sequence[str], truth: FlowchartTruth
) -> dict[str, Any]:
    """Node and edge precision / recall against the flowchart, the share of the flowchart's
    ordered pairs (both found) that `order` puts the same way (a Kendall-style concordance),
    and the LCS of `order` with the main path over the main path's length."""
    position = {name: order.index(name) for name in dict.fromkeys(order)}
    judged = [(a, b) for a, b in truth.ordered if a in position and b in position]
    concordant = sum(1 for a, b in judged if position[a] < position[b])
    return {
        "node_precision": _ratio(len(nodes & truth.nodes), len(nodes)),
        "node_recall": _ratio(len(nodes & truth.nodes), len(truth.nodes)),
        "edge_precision": _ratio(len(edges & truth.edges), len(edges)),
        "edge_recall": _ratio(len(edges & truth.edges), len(truth.edges)),
        "order_concordance": _ratio(concordant, len(judged)),
        "ordered_pairs_judged": len(judged),
        "main_path_lcs": _ratio(lcs(collapse(order), truth.main_path), len(truth.main_path)),
    }
