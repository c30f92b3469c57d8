"""The identity check: a sentence (or section) about authenticating the customer becomes its own
procedure, `verify_identity`, that the others rely on.

    "you have to authenticate the user identity by locating their user id via email, or via
     name + zip code"  →  verify_identity: email | name + zip code, each branch calling the tool
                           that takes those details and saving its result as `user_id`

How other procedures rely on it: the slot the identity tool fills (`user_id`: the id parameter
most tools require, else the "user id" the sentence names) is declared by every other
procedure as a `context` slot. The runtime then treats `verify_identity` as a prerequisite
(`deputy.runtime.guided_flow.prerequisite`, `deputy.runtime.prompt_select.select_procedures`:
a procedure that saves a context slot another one reads runs first, or is shown first), and
`deputy.runtime.outcomes` does not count it as the conversation's outcome. Without a tool to
verify with, the procedure asks for the details and checks them, and the report asks for a tool.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deputy.builder.extract_slots import head_phrase, make_slot, slot_id
from deputy.builder.rules import unique_id
from deputy.builder.sources import OutlineItem, ToolDescription
from deputy.builder.tool_match import ToolMatcher, terms
from deputy.domain.spec import Exit, Procedure, Slot, Step

PROCEDURE_ID = "verify_identity"

_IDENTITY = re.compile(
    r"\bauthenticat\w*|\b(?:verif\w*|confirm\w*|check\w*|identif\w*|establish\w*)\b[^.]*?"
    r"\b(?:identity|identities|who (?:they|the \w+) (?:are|is))\b",
    re.IGNORECASE,
)
_IDENTITY_TITLE = re.compile(r"\b(?:identity|authenticat\w*|verif\w+ (?:the )?\w+)\b", re.I)
_METHODS = re.compile(
    r"\b(?:via|using|through|with|by (?:providing|giving|asking for|asking|checking|"
    r"confirming|requesting|matching))\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
_ID_PARAMETER = re.compile(
    r"^(?:user|customer|account|member|client|subscriber|caller|patient)_?(?:id|number|no)$"
)
_NAMED_ID = re.compile(r"\b(user|customer|account|member|client)\s+(id|number)\b", re.I)
_EARLY = re.compile(r"\b(?:beginning|start|first|before|begin)\b", re.IGNORECASE)


def is_identity_sentence(text: str) -> bool:
    return bool(_IDENTITY.search(text))


def is_identity_title(title: str) -> bool:
    return bool(_IDENTITY_TITLE.search(title))


def methods(text: str) -> list[list[str]]:
    """The alternative sets of details ("via email, or via name + zip code" → [[email],
    [name, zip code]])."""
    anchor = _IDENTITY.search(text)
    found = _METHODS.search(text, anchor.end() if anchor else 0)
    if found is None:
        return []
    rest = re.split(r"[.;](?:\s|$)", found.group("rest"), maxsplit=1)[0]
    alternatives = re.split(r",?\s+or\s+(?:via\s+|by\s+|using\s+|with\s+)?", rest)
    chosen: list[list[str]] = []
    for alternative in alternatives:
        parts = re.split(r"\s*(?:\+|&|,|\band\b)\s*", alternative)
        labels = [head_phrase(part) for part in parts if part.strip()]
        labels = [label for label in labels if 0 < len(label.split()) <= 5]
        if labels:
            chosen.append(labels)
    return chosen


def identity_slot(tools: Sequence[ToolDescription], text: str) -> str:
    """The slot the identity check fills: the id parameter most tools require, else the one
    the sentence names, else `customer_id`."""
    counts = Counter(
        name for tool in tools for name in tool.required if _ID_PARAMETER.match(name.lower())
    )
    if counts:
        return counts.most_common(1)[0][0]
    named = _NAMED_ID.search(text)
    return f"{named.group(1).lower()}_{named.group(2).lower()}" if named else "customer_id"


def _parameters(label: str, tool: ToolDescription) -> list[str]:
    """The parameters of `tool` that take the detail `label`: those named like it, else a
    tool's only required parameter when its description names the detail (a search by
    "phone number, email, or name")."""
    wanted = set(terms(label))
    if len(tool.required) == 1 and wanted and wanted <= set(terms(tool.description)):
        named = [n for n in tool.parameter_names if set(terms(n)) & wanted]
        return named[:1] or [tool.required[0]]
    exact = [
        n
        for n in tool.parameter_names
        if set(terms(n)) - {"id"} <= wanted and wanted & set(terms(n))
    ]
    if exact:
        return exact[:1]
    return [n for n in tool.parameter_names if wanted and wanted <= set(terms(n))]


def _tool_for(
    labels: list[str], sentence: str, matcher: ToolMatcher
) -> tuple[ToolDescription, dict[str, list[str]]] | None:
    for match in matcher.rank(f"{sentence} {' '.join(labels)}"):
        mapping = {label: _parameters(label, match.tool) for label in labels}
        if all(mapping.values()):
            return match.tool, mapping
    return None


@dataclass(frozen=True, slots=True)
class IdentityProcedure:
    procedure: Procedure
    context_slot: str | None
    """The slot other procedures read from the context; None when no tool fills it."""
    tools: tuple[str, ...]
    missing_tool: bool


def _branch(
    labels: list[str],
    sentence: str,
    matcher: ToolMatcher,
    slots: dict[str, Slot],
) -> tuple[list[dict[str, Any]], ToolDescription | None]:
    """The asks (and the lookup call) of one set of details."""
    found = _tool_for(labels, sentence, matcher)
    steps: list[dict[str, Any]] = []
    arguments: dict[str, str] = {}
    for label in labels:
        parameters = found[1][label] if found else [slot_id(label)]
        for parameter in parameters:
            named = set(terms(parameter)) & set(terms(label))
            name = parameter if named else slot_id(label)
            if name not in slots:
                tool = found[0] if found and named else None
                slots[name] = make_slot(
                    name,
                    description=f"The customer's {label}.",
                    tool=tool,
                    parameter=parameter if tool else None,
                )
            text = f"What is your {name.replace('_', ' ')}?"
            steps.append({"id": f"ask_{name}", "kind": "ask", "slot": name, "text": text})
            arguments[parameter] = f"{{{name}}}"
    if found is None:
        return steps, None
    names = "_".join(dict.fromkeys(str(value).strip("{}") for value in arguments.values()))
    steps.append(
        {
            "id": f"find_by_{names}",
            "kind": "call_tool",
            "tool": found[0].name,
            "arguments": arguments,
        }
    )
    return steps, found[0]


def build_identity(
    item: OutlineItem, matcher: ToolMatcher, tools: Sequence[ToolDescription]
) -> IdentityProcedure:
    """`verify_identity` from the sentence `item` (see the module docstring): a greeting that
    asks for the details, then for each alternative but the last a check "has the customer
    given X?" leading to its asks and lookup, then "was the account found?"."""
    sentence = item.text
    alternatives = methods(sentence) or [["account email"]]
    saved = identity_slot(tools, sentence)
    slots: dict[str, Slot] = {}
    wording = ", or ".join(" and ".join(labels) for labels in alternatives)
    steps: list[dict[str, Any]] = [
        {
            "id": "ask_identity",
            "kind": "say",
            "text": f"To help you, I first need to verify your identity: please give me your "
            f"{wording}.",
        }
    ]
    branches = [_branch(labels, sentence, matcher, slots) for labels in alternatives]
    used_tools = [tool.name for _, tool in branches if tool is not None]
    for number, (labels, (branch, _)) in enumerate(zip(alternatives, branches, strict=True)):
        last = number == len(alternatives) - 1
        if not last:
            steps.append(
                {
                    "id": f"gave_{slot_id(labels[0])}",
                    "kind": "check",
                    "condition": f"Has the customer given their {' and '.join(labels)}?",
                    "then": len(steps) + 1,
                    "otherwise": len(steps) + 1 + len(branch),
                }
            )
        steps.extend(branch)
        if not last:
            steps[-1]["next"] = "verified_check"
    for step in steps:
        if step["kind"] == "call_tool":
            step["save_as"] = saved
    condition = (
        "Was the customer's account found?"
        if used_tools
        else "Do these details match the customer's account?"
    )
    steps += [
        {"id": "verified_check", "kind": "check", "condition": condition, "then": "verified"},
        {
            "id": "not_verified",
            "kind": "end",
            "exit": "not_verified",
            "text": "I'm sorry, I could not verify your identity with these details.",
        },
        {
            "id": "verified",
            "kind": "end",
            "exit": "verified",
            "text": "Thank you, your identity is verified. How can I help you?",
        },
    ]
    taken: set[str] = set()
    for step in steps:
        step["id"] = unique_id(slot_id(str(step["id"])), taken)
        taken.add(step["id"])
    for step in steps:
        for name in ("then", "otherwise"):
            if isinstance(step.get(name), int):
                step[name] = steps[step[name]]["id"]
    provenance = item.anchor.provenance()
    procedure = Procedure(
        id=PROCEDURE_ID,
        title="Verify the customer's identity",
        when=(
            "At the start of every conversation, before any other request: the customer's "
            "identity is verified first."
            if _EARLY.search(sentence)
            else "The customer's identity has to be verified before their request is handled."
        ),
        slots=tuple(slots.values()),
        steps=tuple(Step(**step, provenance=provenance) for step in steps),
        exits=(
            Exit(id="verified", outcome="resolved", description="The identity is verified."),
            Exit(
                id="not_verified",
                outcome="abandoned",
                description="The identity could not be verified; nothing else can be done.",
            ),
        ),
        provenance=provenance,
    )
    context = saved if used_tools else None
    return IdentityProcedure(procedure, context, tuple(dict.fromkeys(used_tools)), not used_tools)
