"""Personal data in text: detection and masking, with few false positives on commerce text.

Kinds and how each is told apart from look-alikes (order ids `#W2378156`, 10-digit product and
item ids, 12-digit tracking numbers, prices, zip codes, ISO dates):

- `email`: the usual `local@domain.tld` shape.
- `card`: 13-19 digits, contiguous or grouped the way cards are printed (4-4-4-4, 4-6-5, ...),
  starting with a card network's first digit (2-6) and passing the Luhn check. Ten-digit
  product ids are too short to qualify.
- `iban`: two letters, two check digits and 11-30 letters/digits (grouped by 4 or not), valid
  under ISO 7064 mod 97.
- `ssn`: US social security numbers as `AAA-GG-SSSS` (impossible areas and groups excluded), or
  nine bare digits right after "SSN" / "social security".
- `phone`: a `+` and a country code then 7-14 more digits in any grouping, the North American
  `(AAA) EEE-NNNN` / `AAA-EEE-NNNN` / `AAA.EEE.NNNN` shapes, or a run of 7-15 digits (grouped or
  not) right after a word for phone ("phone", "call me at", "teléfono", "Telefon", ...). A bare
  10-digit number without such a word is not a phone: it is far more often an id.
- `ip_address`: IPv4 dotted quads and IPv6 addresses that the `ipaddress` module accepts.
- `date_of_birth`: a date right after "date of birth", "DOB", "born on", "birthday" (or the es,
  fr, de, pt equivalents). Other dates are not personal data by themselves.

`mask_pii` replaces each finding with a stable placeholder (`[EMAIL]`, `[CARD]`, or
`[CARD ending 4242]` when the last four digits are kept)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

PiiKind = Literal["email", "phone", "card", "iban", "ssn", "ip_address", "date_of_birth"]
PII_KINDS: tuple[PiiKind, ...] = (
    "email",
    "iban",
    "card",
    "ssn",
    "phone",
    "ip_address",
    "date_of_birth",
)
"""Every kind, in the order overlaps are resolved (an earlier kind wins)."""

PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "ip_address": "[IP]",
    "date_of_birth": "[DOB]",
}


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """A piece of personal data at `text[start:end]`. The value itself is not kept: read it
    from the text when needed (`finding.value(text)`), never store it in a decision."""

    kind: PiiKind
    start: int
    end: int

    def value(self, text: str) -> str:
        return text[self.start : self.end]


@dataclass(frozen=True, slots=True)
class MaskedText:
    text: str
    findings: tuple[PiiFinding, ...]
    """Where each finding was in the original text."""

    @property
    def masked(self) -> bool:
        return bool(self.findings)

    def counts(self) -> dict[str, int]:
        """How many findings of each kind (JSON-safe, no values)."""
        return count_kinds(self.findings)


def count_kinds(findings: Iterable[PiiFinding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD = re.compile(r"(?<![\w-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\w-])")
_CARD_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 3)})
"""How card numbers are written when grouped (16/19 digits, Amex, Diners, 15-digit cards)."""
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?|[A-Z0-9]{11,30})"
    r"(?![A-Za-z0-9])"
)
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_SSN_CONTEXT = re.compile(
    r"\b(?:ssn|social security(?: number| no\.?)?)\b\W{0,5}(?:is\s+)?"
    r"(?P<value>\d{9}|\d{3} \d{2} \d{4})\b",
    re.IGNORECASE,
)
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){2,6}(?![\w-])")
_PHONE_NANP = re.compile(
    r"(?<![\w-])(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[.\-])\d{3}[ .\-]\d{4}(?![\w-])"
)
_PHONE_WORDS = (
    r"phone(?: number)?|tel(?:ephone)?\.?|mobile|cell(?: ?phone)?|call me(?: at| on)?"
    r"|text me(?: at)?|reach me(?: at| on)?|tel[ée]fono|n[úu]mero(?: de tel[ée]fono)?"
    r"|m[óo]vil|celular"
    r"|t[ée]l[ée]phone|portable|num[ée]ro|telefon(?:nummer)?|handy(?:nummer)?|telem[óo]vel"
)
_PHONE_CONTEXT = re.compile(
    rf"\b(?:{_PHONE_WORDS})\b[^\w+]{{0,6}}(?:is\s+|es\s+|est\s+|ist\s+|é\s+)?"
    r"(?P<value>\+?\(?\d(?:[ .\-()]{0,2}\d){6,14})(?![\w-])",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre"
    r"|janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|novembre|d[ée]cembre"
    r"|januar|februar|m[äa]rz|juni|juli|oktober|dezember"
    r"|janeiro|fevereiro|mar[çc]o|maio|junho|julho|setembro|outubro|novembro|dezembro"
)
_DATE = (
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}[./\-]\d{1,2}[./\-]\d{2,4}"
    rf"|(?:{_MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er|\.)? (?:de )?(?:{_MONTHS})\.?,? (?:de )?\d{{4}}"
)
_DOB = re.compile(
    r"\b(?:date of birth|d\.?o\.?b\.?|birth ?date|born(?: on)?|birthday(?: is)?"
    r"|fecha de nacimiento|nac[íi]d[oa] el|date de naissance|n[ée]e? le|geburtsdatum"
    r"|geboren am|data de nascimento|nascid[oa] em)\b\W{0,4}(?:is\s+|es\s+|est\s+|ist\s+|é\s+)?"
    rf"(?P<value>{_DATE})(?!\w)",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d")
_VERSION = re.compile(r"(?:version|ver\.?|\bv)\s?$", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 / ISO 7064 mod-97 check of an IBAN (spaces ignored)."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = "".join(str(int(char, 36)) for char in rearranged)
    except ValueError:
        return False
    return int(number) % 97 == 1


def _digits(text: str) -> str:
    return "".join(_DIGITS.findall(text))


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for match in _CARD.finditer(text):
        digits = _digits(match.group())
        groups = tuple(len(group) for group in re.split(r"[ -]", match.group()))
        grouped = len(groups) == 1 or groups in _CARD_GROUPINGS
        if grouped and 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield match.span()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(text):
        if iban_valid(match.group()):
            yield match.span()


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(text):
        yield match.span()
    for match in _SSN_CONTEXT.finditer(text):
        yield match.span("value")


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for match in _PHONE_INTL.finditer(text):
        if 8 <= len(_digits(match.group())) <= 15:
            yield match.span()
    for match in _PHONE_NANP.finditer(text):
        yield match.span()
    for match in _PHONE_CONTEXT.finditer(text):
        if 7 <= len(_digits(match.group("value"))) <= 15:
            yield match.span("value")


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for match in _IPV4.finditer(text):
        if _VERSION.search(text, max(0, match.start() - 9), match.start()):
            continue
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield match.span()
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if candidate.count(":") < 2 or not any(c not in ":" for c in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield match.span()


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        yield match.span()


def _dobs(text: str) -> Iterator[tuple[int, int]]:
    for match in _DOB.finditer(text):
        yield match.span("value")


_DETECTORS: dict[PiiKind, Callable[[str], Iterator[tuple[int, int]]]] = {
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "ssn": _ssns,
    "phone": _phones,
    "ip_address": _ips,
    "date_of_birth": _dobs,
}


def detect_pii(text: str, kinds: Collection[PiiKind] = PII_KINDS) -> tuple[PiiFinding, ...]:
    """Every piece of personal data in `text`, in text order, without overlaps (on overlap the
    kind earlier in `PII_KINDS` wins, then the longer span)."""
    taken: list[PiiFinding] = []
    for kind in PII_KINDS:
        if kind not in kinds:
            continue
        spans = sorted(set(_DETECTORS[kind](text)), key=lambda span: (span[0], -span[1]))
        for start, end in spans:
            if not any(start < other.end and other.start < end for other in taken):
                taken.append(PiiFinding(kind, start, end))
    return tuple(sorted(taken, key=lambda finding: finding.start))


def placeholder(kind: PiiKind, value: str, *, keep_card_last4: bool = False) -> str:
    if kind == "card" and keep_card_last4:
        return f"[CARD ending {_digits(value)[-4:]}]"
    return PLACEHOLDERS[kind]


def mask_pii(
    text: str,
    *,
    keep_card_last4: bool = False,
    kinds: Collection[PiiKind] = PII_KINDS,
    keep: Callable[[PiiFinding], bool] | None = None,
) -> MaskedText:
    """`text` with each finding replaced by its placeholder. `keep(finding)` returning True
    leaves that finding as it is (e.g. the customer's own email in a reply to them)."""
    findings = [f for f in detect_pii(text, kinds) if keep is None or not keep(f)]
    pieces: list[str] = []
    cursor = 0
    for finding in findings:
        pieces.append(text[cursor : finding.start])
        pieces.append(
            placeholder(finding.kind, finding.value(text), keep_card_last4=keep_card_last4)
        )
        cursor = finding.end
    pieces.append(text[cursor:])
    return MaskedText("".join(pieces), tuple(findings))


def normalise(kind: PiiKind, value: str) -> str:
    """A comparable form of a value: digits only for numbers, lower case for the rest, so that
    `+1 (977) 625-2661` and `977.625.2661` compare equal (by their last 10 digits)."""
    if kind in ("phone", "card", "ssn"):
        digits = _digits(value)
        return digits[-10:] if kind == "phone" else digits
    if kind == "date_of_birth":
        return value.lower()
    return value.replace(" ", "").lower()
