"""Structured agent guidelines (ABCD's `guidelines.json`) as outline sections.

The file is `{flow: {description, subflows: {subflow: {actions: [{type, button, text,
subtext}], instructions: [...]}}}}`. Each subflow becomes one section (origin "guidelines",
path = its flow, intro = the flow's description and the subflow's instructions). Its items are
the actions in order, keyed `a1`, `a2`, ... (`action` = the button, `details` = the subtext),
then the instructions, keyed `i1`, `i2`, ... Hints:

- `interaction` and `kb query` actions are `action`s (the agent clicks something in its tools);
- `faq/policy` actions are `rule`s (a policy to check or an answer to look up);
- `communication` actions are `reply`s (what to tell the customer);
- an instruction that gives an order ("start by", "then", "wrap up", "before ending") is a
  `step`, any other a `note`.

Anchors are paths in the file ("Product Defect › Initiate Refund › action 2") and quote the
text found there exactly; a section's anchor quotes the subflow's name. Nothing else of ABCD
(the knowledge base of required actions, the ontology) is read: those are a benchmark's answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deputy.builder.read_common import PATH_SEPARATOR, quoted
from deputy.builder.sources import (
    Anchor,
    ItemHint,
    MaterialProblem,
    MaterialRef,
    OutlineItem,
    OutlineSection,
    ReadResult,
)

_ACTION_HINTS: dict[str, ItemHint] = {
    "interaction": "action",
    "kb query": "action",
    "faq/policy": "rule",
    "communication": "reply",
}
_ORDER_WORDS = re.compile(
    r"\b(?:start|first|then|next|before|after|afterwards|finally|wrap up|end by|begin)\b",
    re.IGNORECASE,
)
_NO_BUTTON = frozenset({"", "n/a", "none"})


def is_abcd_guidelines(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(
            isinstance(flow, Mapping) and isinstance(flow.get("subflows"), Mapping)
            for flow in value.values()
        )
    )


def _action_item(
    ref: MaterialRef, where: str, number: int, action: Mapping[str, Any]
) -> OutlineItem:
    text = action.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"action {number} has no text")
    button = action.get("button")
    subtext = action.get("subtext") or []
    return OutlineItem(
        key=f"a{number}",
        text=text,
        anchor=Anchor(
            kind="document",
            label=f"{where}{PATH_SEPARATOR}action {number}",
            quote=text,
            material=ref,
        ),
        hint=_ACTION_HINTS.get(str(action.get("type", "")).lower(), "action"),
        action=button.strip()
        if isinstance(button, str) and button.strip().lower() not in _NO_BUTTON
        else None,
        details=tuple(str(line) for line in subtext) if isinstance(subtext, list) else (),
    )


def _instruction_item(ref: MaterialRef, where: str, number: int, text: str) -> OutlineItem:
    return OutlineItem(
        key=f"i{number}",
        text=text,
        anchor=Anchor(
            kind="document",
            label=f"{where}{PATH_SEPARATOR}instruction {number}",
            quote=text,
            material=ref,
        ),
        hint="step" if _ORDER_WORDS.search(text) else "note",
    )


def _section(
    ref: MaterialRef, flow: str, description: str, name: str, subflow: Any
) -> OutlineSection:
    if not isinstance(subflow, Mapping):
        raise ValueError("it is not an object")
    actions = subflow.get("actions") or []
    instructions = subflow.get("instructions") or []
    if not isinstance(actions, list) or not isinstance(instructions, list):
        raise ValueError("`actions` and `instructions` must be lists")
    where = f"{flow}{PATH_SEPARATOR}{name}"
    items = [
        _action_item(ref, where, number, action if isinstance(action, Mapping) else {})
        for number, action in enumerate(actions, start=1)
    ]
    notes = [text for text in instructions if isinstance(text, str) and text.strip()]
    items += [
        _instruction_item(ref, where, number, text)
        for number, text in enumerate(instructions, start=1)
        if isinstance(text, str) and text.strip()
    ]
    if not items:
        raise ValueError("it has no actions or instructions")
    return OutlineSection(
        title=name,
        anchor=Anchor(kind="document", label=where, quote=name, material=ref),
        items=tuple(items),
        origin="guidelines",
        path=(flow,),
        intro="\n".join(part.strip() for part in [description, *notes] if part.strip()),
        level=2,
    )


def read_abcd_guidelines(ref: MaterialRef, flows: Mapping[str, Any]) -> ReadResult:
    """One section per subflow; a malformed subflow is left out with a problem naming it."""
    sections: list[OutlineSection] = []
    problems: list[MaterialProblem] = []
    for flow, body in flows.items():
        description = body.get("description")
        description = description if isinstance(description, str) else ""
        for name, subflow in body["subflows"].items():
            try:
                sections.append(_section(ref, str(flow), description, str(name), subflow))
            except ValueError as exc:
                problems.append(
                    MaterialProblem(
                        ref,
                        "invalid_content",
                        f"{quoted(ref.name)}: {flow}{PATH_SEPARATOR}{name} was left out because "
                        f"{exc}.",
                    )
                )
    return ReadResult(
        ref,
        "guidelines" if sections else None,
        outlines=tuple(sections),
        problems=tuple(problems),
    )
