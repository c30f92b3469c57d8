"""The effect tier of a described tool, and why, for the reviewer who confirms it.

A tool file says at most whether a tool reads or writes (tau2's READ / WRITE / GENERIC, an
HTTP method); whether a write can be undone it does not say. A write is taken as
`irreversible` when one of these holds, checked in this order, and the reason names it:

1. its description says so: "cannot be undone", "irreversible", "permanently", "can only be
   called once" (a wrong call cannot then be corrected by calling it again);
2. its name's verb cannot be taken back: cancel, delete, refund, return, exchange, pay,
   charge, purchase, buy;
3. it transfers money (a `transfer` whose name or description speaks of money, funds or a
   balance; `transfer_to_human_agents` hands over a conversation and stays `write`);
4. it takes an amount or a payment method (`amount`, `price`, `payment_method_id`, ...) and its
   verb is not one that merely changes a setting (update, modify, change, set, edit).

Otherwise a write stays `write`. Reads (tau2 READ, GENERIC helpers that compute an answer, GET
requests, or undeclared tools whose name starts with get/list/search/find/check/...) are `read`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deputy.builder.read_common import snake_name
from deputy.domain.spec import EffectTier

_STATED = re.compile(
    r"cannot be undone|can(?:not|'t) be reversed|irreversibl\w*|permanently"
    r"|can only be (?:called|used|done) once(?: per \w+)?",
    re.IGNORECASE,
)
_FINAL_VERBS = {
    "cancel": "cancelling cannot be undone",
    "delete": "deleting cannot be undone",
    "refund": "a refund sends money that cannot be taken back",
    "return": "a return sends the items back and refunds them",
    "exchange": "an exchange ships new items and settles the price difference",
    "pay": "a payment moves money",
    "charge": "a charge moves money",
    "purchase": "a purchase moves money",
    "buy": "a purchase moves money",
}
_MONEY_WORDS = re.compile(r"\b(?:money|funds?|balance|amount|payment)\b", re.IGNORECASE)
_MONEY_PARAMETERS = frozenset(
    {
        "amount",
        "price",
        "total",
        "payment_id",
        "payment_method",
        "payment_method_id",
        "payment_methods",
    }
)
_SETTING_VERBS = frozenset({"update", "modify", "change", "set", "edit"})
_READ_VERBS = frozenset(
    {
        "get",
        "list",
        "search",
        "find",
        "check",
        "lookup",
        "read",
        "fetch",
        "show",
        "query",
        "retrieve",
        "calculate",
        "count",
        "validate",
        "verify",
    }
)


def _words(name: str) -> list[str]:
    """`cancelOrder`, `cancel_order`, `Cancel order` → `["cancel", "order"]`."""
    return [word for word in (snake_name(name) or "").split("_") if word]


def irreversible_reason(name: str, description: str, parameters: Mapping[str, Any]) -> str | None:
    """Why a write cannot be undone, or None when nothing says so."""
    stated = _STATED.search(description)
    if stated:
        phrase = stated.group(0)
        if phrase.lower().startswith("can only be"):
            return f"its description says '{phrase}': a wrong call cannot be corrected"
        return f"its description says '{phrase}'"
    words = _words(name)
    for word in words:
        if word in _FINAL_VERBS:
            return f"'{word}' in its name: {_FINAL_VERBS[word]}"
    if "transfer" in words and _MONEY_WORDS.search(f"{name} {description}"):
        return "it transfers money"
    properties = parameters.get("properties")
    names = list(properties) if isinstance(properties, Mapping) else []
    money = [p for p in names if p.lower() in _MONEY_PARAMETERS]
    if money and not (words and words[0] in _SETTING_VERBS):
        return f"it takes '{money[0]}': the call moves money"
    return None


def declared_type_effect(
    declared: str | None, name: str, description: str, parameters: Mapping[str, Any]
) -> tuple[EffectTier, str]:
    """The tier of a tool from a tool file, given its tau2 `type` (READ, WRITE, GENERIC) or
    None when the file gives none."""
    kind = declared.upper() if declared else None
    if kind == "READ":
        return "read", "tau2 type READ: it only looks things up"
    if kind == "GENERIC":
        return "read", "tau2 type GENERIC: it computes an answer and changes no data"
    source = "tau2 type WRITE" if kind == "WRITE" else "no type given"
    words = _words(name)
    if kind is None and words and words[0] in _READ_VERBS:
        return "read", f"no type given; '{words[0]}' in its name: it only looks things up"
    return write_effect(source, name, description, parameters)


def write_effect(
    source: str, name: str, description: str, parameters: Mapping[str, Any]
) -> tuple[EffectTier, str]:
    """`irreversible` when `irreversible_reason` finds why, else `write`; `source` says what
    made it a write ("tau2 type WRITE", "HTTP POST without x-effect")."""
    reason = irreversible_reason(name, description, parameters)
    if reason is not None:
        return "irreversible", f"{source}; {reason} → irreversible"
    return "write", (
        f"{source}; it changes data, and nothing in its name, description or parameters says "
        "it cannot be undone → write"
    )
