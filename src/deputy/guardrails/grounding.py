"""What a reply may state as fact: concrete claims must come from the evidence.

`Evidence` is what the agent knew when it drafted the reply: retrieved passages, tool results
(tool, status, output as JSON) and the customer's own messages. `concrete_claims(reply)` finds
money amounts, percentages, dates, identifiers (order, item, product, tracking numbers) and
counts with units ("5 business days", "2 items"); `ungrounded(claims, evidence)` returns those
the evidence does not contain:

- amounts and percentages by value (`$1,299.00` matches `1299` in a tool's JSON); an amount that
  is the sum or difference of two amounts in the tool results also counts (refund totals, price
  differences); larger arithmetic does not;
- dates by calendar day, whatever the format on either side (`2024-05-01`, `May 1, 2024`);
- identifiers by their characters with `#` and spacing ignored;
- counts by number and unit together."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ClaimKind = Literal["amount", "percentage", "date", "identifier", "count"]
MAX_PAIR_NUMBERS = 200


@dataclass(frozen=True, slots=True)
class ToolEvidence:
    tool: str
    status: str
    """`succeeded`, `failed`, `refused` or `outcome_unknown` (the executor's statuses)."""
    output: Any = None


@dataclass(frozen=True, slots=True)
class Evidence:
    passages: tuple[str, ...] = ()
    tool_results: tuple[ToolEvidence, ...] = ()
    customer_messages: tuple[str, ...] = ()

    def texts(self) -> list[str]:
        """Every piece of evidence as text (tool outputs as JSON)."""
        rendered = [
            json.dumps(result.output, ensure_ascii=False, default=str)
            for result in self.tool_results
        ]
        return [*self.passages, *rendered, *self.customer_messages]

    def succeeded(self) -> tuple[ToolEvidence, ...]:
        return tuple(r for r in self.tool_results if r.status == "succeeded")


@dataclass(frozen=True, slots=True)
class Claim:
    kind: ClaimKind
    text: str
    start: int
    end: int
    key: str = field(compare=False)
    """The normalised form compared with the evidence."""


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT = re.compile(
    rf"(?:[$€£]|\b(?:USD|EUR|GBP)\s?)\s?(?P<a>{_NUMBER})"
    rf"|(?P<b>{_NUMBER})\s?(?:USD|EUR|GBP|dollars?|euros?|pounds)\b",
    re.IGNORECASE,
)
_PERCENT = re.compile(rf"(?P<n>{_NUMBER})\s?(?:%|percent\b)", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_SLASH_DATE = re.compile(r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})\b")
_NAMED_DATE = re.compile(
    rf"\b(?:(?P<m1>{_MONTH})\.? (?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?:,? (?P<y1>\d{{4}}))?"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<m2>{_MONTH})\.?(?:,? (?P<y2>\d{{4}}))?)\b",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"(?<![\w.,$€£])#?[A-Za-z]{0,3}\d{5,}(?![\w.,]\d|\w)")
_COUNT = re.compile(
    r"\b(?P<n>\d+)\s(?P<u>(?:business |working |calendar )?(?:days?|hours?|weeks?|months?|years?"
    r"|items?|units?|pieces?|orders?|packages?|minutes?))\b",
    re.IGNORECASE,
)
_ANY_NUMBER = re.compile(rf"(?<![\w.])-?(?:{_NUMBER})(?![\w])")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _day(year: str | None, month: int, day: str) -> str | None:
    try:
        return date(int(year) if year else 2000, month, int(day)).strftime(
            "%Y-%m-%d" if year else "--%m-%d"
        )
    except ValueError:
        return None


def _dates(text: str) -> Iterator[tuple[int, int, str]]:
    for match in _ISO_DATE.finditer(text):
        key = _day(match["y"], int(match["m"]), match["d"])
        if key:
            yield match.start(), match.end(), key
    for match in _SLASH_DATE.finditer(text):
        key = _day(match["y"], int(match["m"]), match["d"])
        if key:
            yield match.start(), match.end(), key
    for match in _NAMED_DATE.finditer(text):
        month = _MONTHS[(match["m1"] or match["m2"]).lower()]
        key = _day(match["y1"] or match["y2"], month, match["d1"] or match["d2"])
        if key:
            yield match.start(), match.end(), key


def concrete_claims(text: str) -> tuple[Claim, ...]:
    """The checkable facts stated in `text`, without overlaps (dates, then amounts,
    percentages, counts, identifiers)."""
    found: list[Claim] = []

    def add(kind: ClaimKind, start: int, end: int, key: str) -> None:
        if not any(start < c.end and c.start < end for c in found):
            found.append(Claim(kind, text[start:end], start, end, key))

    for start, end, key in _dates(text):
        add("date", start, end, key)
    for match in _AMOUNT.finditer(text):
        value = _decimal(match["a"] or match["b"])
        if value is not None:
            add("amount", match.start(), match.end(), str(value))
    for match in _PERCENT.finditer(text):
        value = _decimal(match["n"])
        if value is not None:
            add("percentage", match.start(), match.end(), str(value))
    for match in _COUNT.finditer(text):
        unit = match["u"].lower().rstrip("s")
        add("count", match.start(), match.end(), f"{int(match['n'])} {unit}")
    for match in _IDENTIFIER.finditer(text):
        add("identifier", match.start(), match.end(), match.group().lstrip("#").upper())
    return tuple(sorted(found, key=lambda claim: claim.start))


def _numbers_in(value: Any, out: set[Decimal]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        number = _decimal(repr(value))
        if number is not None:
            out.add(number)
    elif isinstance(value, str):
        for match in _ANY_NUMBER.finditer(value):
            number = _decimal(match.group())
            if number is not None:
                out.add(number)
    elif isinstance(value, dict):
        for item in value.values():
            _numbers_in(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _numbers_in(item, out)


@dataclass(frozen=True, slots=True)
class _Index:
    numbers: frozenset[Decimal]
    derived: frozenset[Decimal]
    dates: frozenset[str]
    identifiers: str
    counts: frozenset[str]


def _index(evidence: Evidence) -> _Index:
    numbers: set[Decimal] = set()
    tool_numbers: set[Decimal] = set()
    for result in evidence.tool_results:
        _numbers_in(result.output, tool_numbers)
    for text in [*evidence.passages, *evidence.customer_messages]:
        _numbers_in(text, numbers)
    numbers |= tool_numbers
    amounts = sorted(n for n in tool_numbers if n != n.to_integral_value() or abs(n) < 100_000)
    amounts = amounts[:MAX_PAIR_NUMBERS]
    derived: set[Decimal] = set()
    for i, first in enumerate(amounts):
        for second in amounts[i + 1 :]:
            derived.add((first + second).normalize())
            derived.add(abs(first - second).normalize())
    texts = evidence.texts()
    dates = {key for text in texts for _, _, key in _dates(text)}
    dates |= {"--" + key[5:] for key in dates if not key.startswith("--")}
    counts = {
        f"{int(m['n'])} {m['u'].lower().rstrip('s')}"
        for text in texts
        for m in _COUNT.finditer(text)
    }
    identifiers = "\n".join(re.sub(r"[#\s]", "", text).upper() for text in texts)
    return _Index(
        frozenset(numbers), frozenset(derived), frozenset(dates), identifiers, frozenset(counts)
    )


def _grounded(claim: Claim, index: _Index) -> bool:
    if claim.kind in ("amount", "percentage"):
        value = Decimal(claim.key)
        return value in index.numbers or (claim.kind == "amount" and value in index.derived)
    if claim.kind == "date":
        return claim.key in index.dates
    if claim.kind == "count":
        return claim.key in index.counts
    return claim.key in index.identifiers


def ungrounded(claims: Iterable[Claim], evidence: Evidence) -> tuple[Claim, ...]:
    """The claims that no part of `evidence` supports."""
    claims = tuple(claims)
    if not claims:
        return ()
    index = _index(evidence)
    return tuple(claim for claim in claims if not _grounded(claim, index))
