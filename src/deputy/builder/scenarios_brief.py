"""What a simulated customer is told: goals in the second person and plausible values for the
slots a procedure asks for.

Values are deterministic (seeded by the procedure id) so a suite written twice for the same spec
is the same suite, and they are obviously fictional (example.com addresses, 555-01xx phone
numbers). A slot's regex pattern is honoured when it is simple enough to generate from (literal
characters, `\\d`, `\\w`, character classes, fixed or bounded repeats); otherwise the value comes
from the slot's type and the words of its id and description."""

from __future__ import annotations

import random
import re
import zlib
from datetime import date, timedelta

from deputy.domain.scenarios import CustomerBrief
from deputy.domain.spec import Procedure, Slot

_WHO = r"(?:customer|user|caller|client|buyer|shopper|member|guest|patient|passenger)"
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"\b(?:the|a|an) {_WHO}'s\b", re.IGNORECASE), "your"),
    (re.compile(rf"\b(?:the|a|an) {_WHO}\b", re.IGNORECASE), "you"),
    (re.compile(r"\b(?:he or she|he/she|they)\b", re.IGNORECASE), "you"),
    (re.compile(r"\btheir\b", re.IGNORECASE), "your"),
    (re.compile(r"\bthem\b", re.IGNORECASE), "you"),
    (re.compile(r"\bthemselves\b", re.IGNORECASE), "yourself"),
)
_VERBS = {
    "wants": "want",
    "needs": "need",
    "asks": "ask",
    "has": "have",
    "is": "are",
    "was": "were",
    "requests": "request",
    "says": "say",
    "reports": "report",
    "contacts": "contact",
    "calls": "call",
    "writes": "write",
    "mentions": "mention",
    "does": "do",
    "doesn't": "don't",
    "tries": "try",
    "inquires": "inquire",
    "complains": "complain",
    "claims": "claim",
    "receives": "receive",
    "likes": "like",
    "forgot": "forgot",
    "forgets": "forget",
}
_YOU_VERB = re.compile(r"\b(you) (\w+(?:n't)?)\b", re.IGNORECASE)
_FIRST_NAMES = ("Jordan", "Avery", "Riley", "Casey", "Morgan", "Quinn", "Taylor", "Rowan")
_LAST_NAMES = ("Lee", "Patel", "Garcia", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kim")
_LISTED = re.compile(r"\b(?:one of|e\.g\.|for example|such as)[:,]?\s+['\"]?([^,;)'\"]+)", re.I)
_YES_NO_QUESTION = re.compile(
    r"(?:^|[.!?]\s+)(?:should|shall|can|could|may|do|does|did|is|are|would|will|have|has)\s[^?]*\?",
    re.IGNORECASE,
)
_STREETS = ("Market Street", "Oak Avenue", "Harbor Road", "Maple Lane", "Station Square")


def second_person(text: str) -> str:
    """`text` with the customer as "you" ("The customer wants to cancel their order" → "You
    want to cancel your order"); None of the rewrites apply → the text unchanged."""
    rewritten = text.strip()
    for pattern, replacement in _REWRITES:
        rewritten = pattern.sub(replacement, rewritten)
    rewritten = _YOU_VERB.sub(
        lambda m: f"{m.group(1)} {_VERBS.get(m.group(2).lower(), m.group(2))}", rewritten
    )
    return rewritten[:1].upper() + rewritten[1:] if rewritten else rewritten


def goal_for(procedure: Procedure) -> str:
    """The customer's goal for a procedure, in the second person, from its trigger and title."""
    when = procedure.when.strip().rstrip(".")
    rewritten = second_person(when)
    if re.search(r"\byou(r)?\b", rewritten, re.IGNORECASE) and rewritten != when:
        sentence = rewritten
    else:
        sentence = f"You contact support about this: {when[:1].lower()}{when[1:]}"
    return f"{sentence}. What you want: {procedure.title}."[:2000]


def rng_for(key: str) -> random.Random:
    return random.Random(zlib.crc32(key.encode()))


def _from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching a simple regex, or None when the regex uses anything else."""
    body = pattern.removeprefix("^").removesuffix("$")
    token = re.compile(
        r"(\\d|\\w|\\s|\\.|\\-|\\#|\[[^\]]+\]|[A-Za-z0-9 #@_\-:/.])(\{(\d+)(?:,(\d+))?\}|\+|\*|\?)?"
    )
    out: list[str] = []
    position = 0
    while position < len(body):
        match = token.match(body, position)
        if match is None:
            return None
        atom, quantifier, low, high = match.groups()
        if quantifier is None:
            count = 1
        elif quantifier in ("+", "*"):
            count = 3
        elif quantifier == "?":
            count = 1
        else:
            count = int(low) if high is None else rng.randint(int(low), int(high))
        choices = _atom_choices(atom)
        if choices is None:
            return None
        out.extend(rng.choice(choices) for _ in range(count))
        position = match.end()
    value = "".join(out)
    try:
        return value if re.fullmatch(pattern, value) else None
    except re.error:
        return None


def _atom_choices(atom: str) -> str | None:
    if atom == r"\d":
        return "0123456789"
    if atom == r"\w":
        return "abcdefghijklmnopqrstuvwxyz0123456789"
    if atom == r"\s":
        return " "
    if atom.startswith("\\"):
        return atom[1:]
    if atom.startswith("["):
        inner = atom[1:-1]
        if inner.startswith("^"):
            return None
        chars: list[str] = []
        for low, dash, high in re.findall(r"(\\?.)(-)?(\\?.)?", inner):
            low = low.removeprefix("\\")
            if dash and high:
                chars.extend(chr(c) for c in range(ord(low), ord(high.removeprefix("\\")) + 1))
            else:
                chars.append(low)
                if high:
                    chars.append(high.removeprefix("\\"))
        table = {"d": "0123456789"}
        return "".join(table.get(c, c) for c in chars) or None
    return atom


def _by_words(slot: Slot, rng: random.Random) -> str | None:
    """A value from what the slot's id and description say it is (an email, a phone number, a
    name, an id, a place...), or None when they do not say."""
    words = f"{slot.id} {slot.description}".lower()
    listed = _LISTED.search(slot.description)
    if listed:
        return listed.group(1).strip()
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    if "email" in words or "e-mail" in words:
        return f"{first.lower()}.{last.lower()}@example.com"
    if "phone" in words:
        return f"+1 555 01{rng.randint(0, 99):02d} {rng.randint(0, 999):03d}"
    if re.search(r"\bzip|postal|postcode", words):
        return f"{rng.randint(10000, 99999)}"
    if re.search(r"address|location|destination|departure|street|place\b", words):
        return f"{rng.randint(1, 999)} {rng.choice(_STREETS)}, Springfield"
    if re.search(r"\b(amount|price|total|cost|refund|budget)\b", words):
        return f"{rng.randint(10, 90)}.00"
    if re.search(r"\bdate|day\b", words):
        return (date(2025, 1, 1) + timedelta(days=rng.randint(0, 364))).isoformat()
    if re.search(r"\b(id|number|code|reference|confirmation)\b|_id\b", words):
        return "".join(rng.choice("0123456789") for _ in range(7))
    if re.search(r"\bname\b|_name\b", words):
        return f"{first} {last}"
    return None


def _by_type(slot: Slot, rng: random.Random) -> str | None:
    if slot.type in ("email", "phone"):
        return _by_words(slot.model_copy(update={"id": slot.type, "description": ""}), rng)
    if slot.type == "integer":
        return str(rng.randint(1, 5))
    if slot.type == "number":
        return f"{rng.randint(10, 90)}.00"
    if slot.type == "boolean":
        return "yes"
    if slot.type == "date":
        return (date(2025, 1, 1) + timedelta(days=rng.randint(0, 364))).isoformat()
    return None


def slot_value(slot: Slot, rng: random.Random, question: str = "") -> str | None:
    """A plausible value for a customer slot, by its pattern, type, the words of its id and
    description, then the question that asks for it ("Should I book it?" → yes); None when
    nothing says what it looks like (the simulated customer then makes one up)."""
    if slot.type == "enum":
        return slot.values[0]
    if slot.pattern:
        generated = _from_pattern(slot.pattern, rng)
        if generated is not None:
            return generated
    typed = _by_type(slot, rng)
    if typed is not None:
        return typed
    by_words = _by_words(slot, rng)
    if by_words is not None:
        return by_words
    return "yes" if _YES_NO_QUESTION.search(question) else None


def customer_knows(procedure: Procedure) -> dict[str, str]:
    """Values for the customer slots of the procedure that have a plausible one, the same on
    every call."""
    rng = rng_for(procedure.id)
    questions = {s.slot: s.text for s in procedure.steps if s.kind == "ask" and s.slot}
    known: dict[str, str] = {}
    for slot in procedure.slots:
        if slot.source == "customer":
            value = slot_value(slot, rng, questions.get(slot.id, ""))
            if value is not None:
                known[slot.id] = value
    return known


COOPERATIVE = (
    "A cooperative customer: answers each question directly and gives the details asked for."
)


def scenario_id(*parts: str) -> str:
    """A snake_case id from `parts`, within 64 characters (a checksum keeps long ones apart)."""
    base = re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_") or "scenario"
    base = base if base[0].isalpha() else f"s_{base}"
    if len(base) <= 64:
        return base
    return f"{base[:55].rstrip('_')}_{zlib.crc32(base.encode()):08x}"


def brief(
    procedure: Procedure, persona: str = COOPERATIVE, extra: str = "", **fields: object
) -> CustomerBrief:
    """A brief for a customer of `procedure`: its goal (plus `extra`), the slot values."""
    goal = f"{goal_for(procedure)} {extra}".strip()
    return CustomerBrief.model_validate(
        {"persona": persona, "goal": goal[:2000], "knows": customer_knows(procedure), **fields}
    )
