"""Slot values: what the model may answer for a slot (a JSON Schema), what can be read from the
customer's text without a model, and whether a value is valid and was really said.

Reading without a model is done only where it is reliable: an email address, a date, a number, a
slot's own `pattern`, an enum value named in the text, ids (tokens with four digits or more)
for slots named `…_id` / `…_ids` (whose values must be single tokens with a digit), and a
one-word answer to the question asking for a text slot ("Yusuf", "My last name is Rossi."). A
value the model extracts must pass the same validation, and must be *grounded*: the customer said it
(strictly: verbatim, when the slot was not asked for; loosely: sharing a word with the answer,
when it was)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import JsonValue

from deputy.domain.spec import Slot
from deputy.runtime.answers import plain_yes_no

MAX_TEXT = 500
MAX_ITEMS = 20
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_INTEGER = re.compile(r"(?<![\w.])-?\d+(?!\w|\.\d)")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")
_ID = re.compile(r"#?[A-Za-z0-9_-]*\d{4,}[A-Za-z0-9_-]*")
_ID_LIKE = re.compile(r"#?[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*")
_EDGES = "\"'.,;:!?()[]{}<>"
_WORD = re.compile(r"[^\W_]{2,}")
_LEAD_IN = re.compile(
    r"^(?:(?:my|the|his|her|our)\s+[\w ]{1,30}?\s+(?:is|=)|it'?s|it\s+is|that'?s|sure,?)\s+",
    re.IGNORECASE,
)
_ONE_WORD = re.compile(r"[^\W\d_][\w'-]*")
# fmt: off
_CHATTER = frozenset((
    "hi", "hello", "hey", "ok", "okay", "sure", "thanks", "what", "why", "how", "help", "please",
    "sorry", "no", "yes", "yeah", "nope", "maybe", "idk", "nothing", "none",
))
# fmt: on


@dataclass(frozen=True)
class SlotShape:
    """A slot and whether its value is a list (a tool takes it as an array)."""

    slot: Slot
    is_list: bool = False

    @property
    def id(self) -> str:
        return self.slot.id

    @property
    def is_id(self) -> bool:
        """Named like an identifier (`order_id`, `item_ids`): its values contain digits."""
        return self.slot.id.endswith(("_id", "_ids"))

    def label(self) -> str:
        """How to name the slot to the model and the customer."""
        return self.slot.description.strip() or self.slot.id.replace("_", " ")


def compiled(pattern: str | None) -> re.Pattern[str] | None:
    """The slot's pattern, or None when it has none or Python cannot compile it."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def value_schema(shape: SlotShape) -> dict[str, Any]:
    """The JSON Schema of the slot's value, null meaning "not given"."""
    slot = shape.slot
    if shape.is_list:
        array = {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 10}
        return {"anyOf": [array, {"type": "string", "maxLength": 200}, {"type": "null"}]}
    if slot.type == "enum":
        return {"enum": [*dict.fromkeys(slot.values), None]}
    if slot.type in ("integer", "number", "boolean"):
        return {"type": [slot.type, "null"]}
    text: dict[str, Any] = {"type": "string", "maxLength": 200}
    if compiled(slot.pattern) is not None and slot.pattern is not None:
        text["pattern"] = slot.pattern
    elif slot.type in ("date", "email"):
        text["format"] = slot.type
    return {"anyOf": [text, {"type": "null"}]}


def _pattern_search(pattern: re.Pattern[str], text: str) -> list[str]:
    """Matches of an anchored pattern inside a longer text, not inside a longer token."""
    core = pattern.pattern.removeprefix("^").removesuffix("$")
    try:
        inner = re.compile(rf"(?<![0-9A-Za-z])(?:{core})(?![0-9A-Za-z])")
    except re.error:
        return []
    return [m.group(0) for m in inner.finditer(text) if pattern.fullmatch(m.group(0))]


def _unique(found: list[str]) -> str | None:
    distinct = list(dict.fromkeys(found))
    return distinct[0] if len(distinct) == 1 else None


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stems(text: str) -> set[str]:
    """The text's words of three letters or more, without common English endings."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2}


def enum_match(values: Collection[str], text: str) -> str | None:
    """The enum value the text names: verbatim, else the one whose words all occur in it."""
    lowered = text.lower()
    verbatim = [v for v in values if v.strip() and v.lower() in lowered]
    if verbatim:
        return max(verbatim, key=len)
    said = _stems(text)
    covered = [v for v in values if _stems(v) and _stems(v) <= said]
    return covered[0] if len(covered) == 1 else None


def read_plainly(
    shape: SlotShape, text: str, taken: Collection[str], *, answering: bool
) -> JsonValue:
    """The slot's value read from `text` without a model, or None. `taken` are values already
    given for other slots; `answering`: the text answers a question about this very slot."""
    slot = shape.slot
    pattern = compiled(slot.pattern)
    if shape.is_list or (shape.is_id and pattern is None and slot.type == "string"):
        ids = [t for t in ids_in(text) if t not in taken]
        if shape.is_list:
            return list[JsonValue](dict.fromkeys(ids))[:MAX_ITEMS] or None
        return _unique(ids)
    if pattern is not None and slot.type in ("string", "phone", "email", "date"):
        return _unique([m for m in _pattern_search(pattern, text) if m not in taken])
    if slot.type == "email":
        return _unique(_EMAIL.findall(text))
    if slot.type == "phone":
        return _unique([m.strip() for m in _PHONE.findall(text)])
    if slot.type == "date":
        return _unique([m.group(0) for m in _DATE.finditer(text) if _valid_date(m.group(0))])
    if slot.type == "enum":
        return enum_match(slot.values, text)
    if slot.type == "integer" and answering:
        numbers = _INTEGER.findall(text)
        return int(numbers[0]) if len(numbers) == 1 else None
    if slot.type == "number" and answering:
        numbers = _NUMBER.findall(text)
        return _number(numbers[0]) if len(numbers) == 1 else None
    if slot.type == "boolean" and answering:
        plain = plain_yes_no(text)
        return None if plain == "unclear" else plain == "yes"
    if slot.type == "string" and slot.pattern is None and answering:
        return one_word_answer(text, taken)
    return None


def one_word_answer(text: str, taken: Collection[str]) -> str | None:
    """The single word the customer answered with ("Yusuf", "My last name is Rossi."), unless
    it is conversation rather than a value ("ok", "why?") or fills another slot already."""
    answer = _LEAD_IN.sub("", text.strip().strip(_EDGES).strip())
    if not _ONE_WORD.fullmatch(answer) or answer.lower() in _CHATTER:
        return None
    return None if answer in taken else answer


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def validate(shape: SlotShape, value: Any) -> JsonValue:
    """The value in the slot's form when it is valid for the slot, else None."""
    slot = shape.slot
    if value is None:
        return None
    if shape.is_list:
        items = _split(value, ids=shape.is_id) if isinstance(value, str) else value
        if not isinstance(items, list):
            return None
        cleaned = [i.strip() for i in items if isinstance(i, str) and i.strip()][:MAX_ITEMS]
        if not cleaned or (shape.is_id and not all(_ID_LIKE.fullmatch(i) for i in cleaned)):
            return None
        return list[JsonValue](cleaned)
    if slot.type == "boolean":
        return value if isinstance(value, bool) else None
    if slot.type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if slot.type == "integer":
            return int(value) if float(value).is_integer() else None
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()[:MAX_TEXT]
    if slot.type == "enum":
        return next((v for v in slot.values if v.lower() == text.lower()), None)
    pattern = compiled(slot.pattern)
    if pattern is not None and not pattern.fullmatch(text):
        return None
    if slot.type == "email" and not _EMAIL.fullmatch(text):
        return None
    if slot.type == "date" and not _valid_date(text):
        return None
    if shape.is_id and pattern is None and not _ID_LIKE.fullmatch(text):
        return None
    return text


def ids_in(text: str) -> list[str]:
    """Whole tokens that look like ids (four digits or more; not inside an email or a URL)."""
    tokens = (token.strip(_EDGES) for token in text.split())
    return [token for token in tokens if _ID.fullmatch(token)]


def _split(text: str, *, ids: bool) -> list[str]:
    """A list given as one text: its ids, or its parts between commas and "and"."""
    if ids:
        return ids_in(text)
    return re.split(r"\s*[,;]\s*|\s+and\s+", text)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _alnum(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def grounded(shape: SlotShape, value: JsonValue, text: str, *, strict: bool) -> bool:
    """Whether the customer's `text` says `value` (see the module's docstring)."""
    said = _normal(text)
    if isinstance(value, bool):
        return not strict
    if isinstance(value, int | float):
        return _normal(str(value).removesuffix(".0")) in said
    if isinstance(value, list):
        return all(
            isinstance(v, str) and bool(_alnum(v)) and _alnum(v) in _alnum(text) for v in value
        )
    if not isinstance(value, str):
        return False
    if shape.slot.type == "enum":
        return not strict or bool(set(_WORD.findall(value.lower())) & set(_WORD.findall(said)))
    if not value.strip():
        return not strict
    if shape.is_id or shape.slot.pattern:
        return bool(_alnum(value)) and _alnum(value) in _alnum(text)
    if strict:
        return _normal(value) in said
    return bool(set(_WORD.findall(value.lower())) & set(_WORD.findall(said)))
