"""Check conditions decided without the model, where the wording leaves no doubt.

The small embedded model cannot judge conditions reliably (measured: the 0.5B answers nearly
every check the same way), so the common shapes of conditions are decided here and only the
rest is asked. A condition is split into clauses joined by "and" (one with "or" or a negation is
left to the model); each clause is decided by the first rule that understands it:

- *equality*: a data field named in the clause equals a quoted value ("is its status exactly
  'pending'");
- *ownership*: "X belongs to Y" where X and Y are slot values: the saved tool output that holds
  X must also hold Y;
- *given*: "did the customer give an email address": whether the slot it names is filled;
- *found*: "was an account found": whether the tool call just made returned something.

Any clause false makes the condition false, all true make it true; otherwise it is the model's.
The rules read English wording; conditions in other languages go to the model."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from pydantic import JsonValue

from deputy.runtime.guided_slots import SlotShape
from deputy.runtime.guided_templates import as_text, fields
from deputy.tools.results import ToolCallResult

_QUOTED = re.compile(
    r"(?<!\w)['\"\u2018\u201c]([^'\"\u2018\u2019\u201c\u201d]+)['\"\u2019\u201d](?!\w)"
)
_NEGATION = re.compile(r"\b(?:not|no|never|different|other than|unless)\b|n't\b", re.IGNORECASE)
_OR = re.compile(r"\bor\b", re.IGNORECASE)
_AND = re.compile(r",?\s+\band\b\s+|,\s+", re.IGNORECASE)
_BELONGS = re.compile(r"\bbelongs?\s+to\b", re.IGNORECASE)
_GAVE = re.compile(
    r"\b(?:did|has|have)\s+(?:the\s+)?(?:customer|user|caller|client|they)\s+"
    r"(?:give|given|provide|provided|share|shared|mention|mentioned|send|sent|state|stated)\b"
    r"(?P<rest>.*)",
    re.IGNORECASE,
)
_FOUND = re.compile(r"\b(?:was|were|is|are)\b(?:\s+[\w-]+){1,3}\s+found\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")


def _leaves(value: JsonValue, depth: int = 0) -> Iterator[tuple[int, str, str]]:
    """(depth, key, text) of every plain value inside `value` (a dict or list)."""
    if depth > 5:
        return
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(item, dict | list):
            yield from _leaves(item, depth + 1)
        elif item is not None:
            yield depth, str(key), as_text(item)


def _equality(clause: str, data: Mapping[str, JsonValue]) -> bool | None:
    """A field named before a quoted value equals it (the shallowest such fields count)."""
    quoted = _QUOTED.search(clause)
    if quoted is None:
        return None
    before = clause[: quoted.start()].lower()
    words = set(_WORD.findall(before))
    found = [
        (depth, text.strip().lower())
        for depth, key, text in _leaves(dict(data))
        if not key.isdigit() and (key.lower() in words or key.lower().replace("_", " ") in before)
    ]
    if not found:
        return None
    shallowest = min(depth for depth, _ in found)
    return quoted.group(1).strip().lower() in {t for depth, t in found if depth == shallowest}


def _ownership(
    clause: str, data: Mapping[str, JsonValue], values: Mapping[str, JsonValue]
) -> bool | None:
    """ "X belongs to Y" (X, Y slots): the saved output holding X also holds Y."""
    if not _BELONGS.search(clause):
        return None
    named = fields(clause)
    if len(named) < 2 or any(values.get(name) in (None, "") for name in named):
        return None
    said = [as_text(values[name]) for name in named]
    verdict = None
    for item in data.values():
        if not isinstance(item, dict):
            continue
        held = {text for _, _, text in _leaves(item)}
        if said[0] in held:
            verdict = all(text in held for text in said[1:])
            if verdict:
                return True
    return verdict


def _given(
    clause: str, shapes: Mapping[str, SlotShape], values: Mapping[str, JsonValue]
) -> bool | None:
    """ "Did the customer give X": whether the one slot X names is filled."""
    gave = _GAVE.search(clause)
    if gave is None:
        return None
    words = set(_WORD.findall(gave.group("rest").lower()))
    named = [
        shape
        for shape in shapes.values()
        if shape.slot.source != "context"
        and (set(_WORD.findall(shape.id.replace("_", " "))) <= words or shape.slot.type in words)
    ]
    if len(named) != 1:
        return None
    return values.get(named[0].id) not in (None, "", [])


def _found(clause: str, previous: ToolCallResult | None) -> bool | None:
    """ "Was an account found": whether the tool call just made returned something."""
    if not _FOUND.search(clause) or previous is None:
        return None
    return previous.ok and previous.output not in (None, "", [], {})


def decide_plainly(
    condition: str,
    *,
    data: Mapping[str, JsonValue],
    values: Mapping[str, JsonValue],
    shapes: Mapping[str, SlotShape],
    previous: ToolCallResult | None,
) -> bool | None:
    """True or false when the rules decide `condition`, else None. The rules read the spec's
    template (never slot values, which may come from the customer); `values` are the slots."""
    bare = _QUOTED.sub("''", condition)
    if _OR.search(bare) or _NEGATION.search(bare):
        return None
    verdicts: list[bool | None] = []
    for clause in (c for c in _AND.split(condition) if c.strip()):
        verdict = _equality(clause, data)
        if verdict is None:
            verdict = _ownership(clause, data, values)
        if verdict is None:
            verdict = _given(clause, shapes, values)
        if verdict is None:
            verdict = _found(clause, previous)
        verdicts.append(verdict)
    if False in verdicts:
        return False
    if verdicts and all(v is True for v in verdicts):
        return True
    return None
