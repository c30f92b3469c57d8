"""Slots: the details a procedure needs, from the document's wording and the tools' parameters.

A detail the document names ("the order id", "a payment method to receive the refund", "the
list of items to be returned") is reduced to its head ("order id", "payment method", "items")
and takes the name of the tool parameter it matches (`order_id`, `items`), so the call's
arguments are plain templates (`{order_id}`). A required parameter the document does not name
becomes a slot too, described by the parameter. Types: an enum when the document or the
parameter lists the allowed values (quoted alternatives, a JSON Schema `enum`), `email`,
`phone` and `date` by name or format, `integer` / `number` / `boolean` from the schema, text
otherwise (lists and objects included: the runtime reads the tool's schema for those).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deputy.builder.extract_read import quoted
from deputy.builder.sources import ToolDescription
from deputy.builder.tool_match import terms
from deputy.domain.spec import Slot
from deputy.domain.spec.procedures import SlotType

_LEADING = re.compile(
    r"^(?:(?:the|a|an|their|your|his|her|its|our|one|single|all|any|each|every|new|"
    r"valid|correct|full|complete|exact)\s+)+",
    re.IGNORECASE,
)
_LIST_OF = re.compile(
    r"^(?:list|set|ids?|names?|numbers?|details)\s+of\s+(?:the\s+)?(?P<what>.+)$", re.IGNORECASE
)
_CUT = re.compile(
    r"\s+(?:for|to|from|that|which|who|with|in|on|at|by|different|used|being|they|you|he|she|"
    r"so|if|when|before|after|as|of|or)\b.*$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\be-?mail\b", re.IGNORECASE)
_PHONE = re.compile(r"\b(?:phone|mobile|telephone|msisdn)\b", re.IGNORECASE)
_DATE = re.compile(r"\b(?:date|birthday|dob)\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[^a-z0-9]+")


def head_phrase(phrase: str) -> str:
    """The noun a detail is about: "the list of items to be returned" → "items"."""
    text = re.sub(r"\s+", " ", phrase).strip(" .,:;")
    text = _LEADING.sub("", text)
    listed = _LIST_OF.match(text)
    if listed:
        text = _LEADING.sub("", listed.group("what"))
    text = _CUT.sub("", text)
    return text.strip() or phrase.strip()


def slot_id(label: str) -> str:
    """A slot id from a label: "zip code" → `zip_code`."""
    base = _IDENTIFIER.sub("_", label.lower()).strip("_")[:48] or "detail"
    return base if base[0].isalpha() else f"slot_{base}"


def parameter_slot(parameter: str) -> str:
    """The slot that fills a tool parameter: the parameter's name in snake_case
    (`orderId` and `order-id` → `order_id`), since APIs name parameters as they like."""
    return slot_id(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parameter))


def matching_parameter(label: str, tool: ToolDescription | None) -> str | None:
    """The parameter of `tool` a detail's label names (all its words but `id`, and at least
    half of the label's words)."""
    if tool is None:
        return None
    wanted = set(terms(label))
    if not wanted:
        return None
    best: tuple[int, str] | None = None
    for name in tool.parameter_names:
        own = set(terms(name))
        core = own - {"id"} or own
        shared = len(wanted & own)
        if core <= wanted and shared * 2 >= len(wanted) and (best is None or shared > best[0]):
            best = (shared, name)
    return best[1] if best else None


def parameter_schema(tool: ToolDescription, name: str) -> Mapping[str, Any]:
    properties = tool.parameters.get("properties", {})
    schema = properties.get(name) if isinstance(properties, Mapping) else None
    return schema if isinstance(schema, Mapping) else {}


def _type(name: str, schema: Mapping[str, Any], values: tuple[str, ...]) -> SlotType:
    if values:
        return "enum"
    kind = schema.get("type")
    fmt = str(schema.get("format", ""))
    if fmt == "email" or _EMAIL.search(name.replace("_", " ")):
        return "email"
    if _PHONE.search(name.replace("_", " ")):
        return "phone"
    if fmt == "date" or _DATE.search(name.replace("_", " ")):
        return "date"
    if kind in ("integer", "number", "boolean"):
        return "integer" if kind == "integer" else "number" if kind == "number" else "boolean"
    return "string"


def parameter_values(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """Allowed values of a parameter: its `enum`, or quoted alternatives in its description."""
    enum = schema.get("enum")
    if isinstance(enum, list) and len(enum) >= 2 and all(isinstance(v, str) for v in enum):
        return tuple(enum)
    found = quoted(str(schema.get("description", "")))
    return found if len(found) >= 2 else ()


def make_slot(
    slot: str,
    *,
    description: str = "",
    values: tuple[str, ...] = (),
    tool: ToolDescription | None = None,
    parameter: str | None = None,
) -> Slot:
    """A slot, typed from its name, values and (when it fills one) the tool parameter."""
    schema = parameter_schema(tool, parameter) if tool is not None and parameter else {}
    values = values or parameter_values(schema)
    text = description or str(schema.get("description", ""))
    return Slot(
        id=slot,
        description=text[:1000],
        type=_type(slot, schema, values),
        values=values,
    )


def label_of(slot: Slot) -> str:
    return slot.id.replace("_", " ")
