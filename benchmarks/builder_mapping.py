"""Reading a built spec for the builder benchmark: the action names of a procedure's steps
(ABCD) and the flowchart node each step stands for (STAR). This is the ground-truth side's view
of the builder's output; the rules are stated in the results file."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from benchmarks.builder_scoring import FlowchartTruth, collapse, map_action

from deputy.domain.spec import Procedure, Step
from deputy.domain.spec.flow import build_flow

BUTTON = re.compile(r"\[([^\]]+)\]|\*\*([^*]+)\*\*")
REPLY_MATCH = 0.5
PATH_SEPARATOR = " › "

ACTION_RULES = {
    "tools": "a call_tool step's tool name, mapped to kb.json's action vocabulary (map_action)",
    "tools_or_quoted": "the same, plus any other step whose provenance quote names a button "
    "([Button] or **Button**): the first one named",
}
NODE_RULE = (
    "a step maps to a flowchart label when its provenance path ends with the label (built from "
    "the flowchart); a step drawn from a transcript maps by its turn: an action turn to the "
    "query node whose suffix is one of its argument values (query_check for RequestType=Check) "
    "or to the only query node, an agent turn to the reply whose words it shares most "
    f"(Jaccard >= {REPLY_MATCH}, template fields removed); other steps map to nothing"
)


def step_action(step: Step, vocabulary: Iterable[str], *, quoted: bool) -> str | None:
    if step.kind == "call_tool" and step.tool:
        return map_action(step.tool.replace("_", " "), vocabulary)
    quote = step.provenance.quote if step.provenance else None
    if quoted and quote:
        found = BUTTON.search(quote)
        if found:
            return map_action(found.group(1) or found.group(2), vocabulary)
    return None


def procedure_actions(
    procedure: Procedure, vocabulary: Iterable[str], *, quoted: bool
) -> list[str]:
    """The action names of the procedure's steps in step order, repeats collapsed."""
    words = list(vocabulary)
    return collapse(step_action(step, words, quoted=quoted) for step in procedure.steps)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", re.sub(r"\{[^}]*\}", " ", text.lower())))


class NodeMapper:
    """Flowchart labels for the steps of a STAR procedure (see `NODE_RULE`)."""

    def __init__(self, replies: Mapping[str, str], truth: FlowchartTruth) -> None:
        self.truth = truth
        self.labels = set(replies) | set(truth.nodes)
        self.replies = {
            label: _words(text)
            for label, text in replies.items()
            if label not in truth.outcomes and not label.startswith("query")
        }
        self.queries = sorted(n for n in self.labels if n == "query" or n.startswith("query_"))

    def _query(self, call: str) -> str | None:
        values = {v.strip().lower() for v in re.findall(r"=([^,()]+)", call)}
        for node in self.queries:
            if node.removeprefix("query_") in values:
                return node
        if "query" in self.queries:
            return "query"
        return self.queries[0] if len(self.queries) == 1 else None

    def _reply(self, text: str) -> str | None:
        said = _words(text)
        best: tuple[float, str] | None = None
        for label, words in sorted(self.replies.items()):
            union = said | words
            score = len(said & words) / len(union) if union else 0.0
            if score >= REPLY_MATCH and (best is None or score > best[0]):
                best = (score, label)
        return best[1] if best else None

    def node(self, step: Step) -> str | None:
        if step.provenance is None or step.kind in ("check", "end"):
            return None
        span = step.provenance.span or ""
        if PATH_SEPARATOR in span:
            label = span.rsplit(PATH_SEPARATOR, 1)[1]
            return label if label in self.labels else None
        speaker, _, text = (step.provenance.quote or "").partition(": ")
        if speaker == "action":
            return self._query(text)
        if speaker == "agent":
            return self._reply(text)
        return None

    def read(self, procedure: Procedure) -> tuple[list[str], set[str], set[tuple[str, str]]]:
        """The nodes in step order (repeats collapsed), the node set, and the edges between
        nodes (following the procedure's flow through steps that map to no node or to the
        same node)."""
        nodes = {step.id: self.node(step) for step in procedure.steps}
        flow = build_flow(procedure)
        edges: set[tuple[str, str]] = set()
        for step_id, node in nodes.items():
            if node is None:
                continue
            seen: set[str] = set()
            todo = [e.target for e in flow.edges[step_id] if e.target is not None]
            while todo:
                target = todo.pop()
                if target in seen:
                    continue
                seen.add(target)
                other = nodes.get(target)
                if other is not None and other != node:
                    edges.add((node, other))
                    continue
                todo.extend(e.target for e in flow.edges[target] if e.target is not None)
        order = collapse(nodes[step.id] for step in procedure.steps)
        return order, {n for n in nodes.values() if n is not None}, edges


def largest_learned(procedures: Sequence[Procedure]) -> Procedure | None:
    """The procedure learned from the most conversations (its provenance says "N
    conversation(s)"), or None when none was learned from conversations."""
    counted = []
    for procedure in procedures:
        span = procedure.provenance.span if procedure.provenance else None
        found = re.match(r"(\d+) conversation", span or "")
        if found:
            counted.append((int(found.group(1)), procedure))
    return max(counted, key=lambda pair: pair[0])[1] if counted else None
