"""Small text helpers of the improvement loop: content terms for comparing what customers asked,
and a short intent from a customer's first message."""

from __future__ import annotations

import re

from deputy.builder.mine_text import GREETINGS, STOP_WORDS, stem
from deputy.knowledge.text import tokenize

INTENT_WORDS = 8
_SUPPORT = """order orders item items product products help assist question questions issue
    issues problem problems request requests today something thing things someone anything store
    account"""
SUPPORT_WORDS = frozenset(_SUPPORT.split())
"""Words nearly every support request has: they say nothing about which request it is."""
_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|good\s+(?:morning|afternoon|evening)|dear\s+\w+|there|yes|so|"
    r"ok(?:ay)?|um+|well|thanks?|thank\s+you|please)\b[\s,!.:-]*)+",
    re.IGNORECASE,
)
_WANT = re.compile(
    r"^(?:i(?:'d|\s+would)\s+(?:like|love)\s+to|i\s+(?:want|need|wish|wanted|was\s+hoping)\s+to|"
    r"i(?:'m|\s+am)\s+(?:trying|looking|hoping|calling|writing|contacting\s+you)\s+(?:to|about)|"
    r"(?:can|could|may)\s+(?:i|you|we)(?:\s+please)?|is\s+it\s+possible\s+to|"
    r"how\s+(?:can|do)\s+i|please)\s+",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"(?<=[.!?;])\s+|,\s+|\s+-+\s+")
_ORDER_REF = re.compile(
    r"\s*\b(?:from|in|on|of|for|with)\s+(?:my\s+|the\s+|this\s+)?(?:pending\s+|last\s+|"
    r"recent\s+|latest\s+)?order\s+(?:number\s+|no\.?\s+)?#?[A-Za-z]*\d[\w-]*"
    r"|\s*#[A-Za-z]*\d[\w-]*",
    re.IGNORECASE,
)
"""A reference to one order ("from order #W6893533"): specific to one customer, not the
request."""
_ENDINGS = "a an the for to of with in on at my your and or i from by"
_DANGLING = frozenset(_ENDINGS.split())
"""Words a cut intent must not end on."""


def terms(text: str, *, drop: frozenset[str] = frozenset()) -> frozenset[str]:
    """The content words of `text`, lightly stemmed ("exchanges" and "exchanging" meet
    "exchange"; "address" and "addresses" meet), without stop words, greetings, numbers and
    the words in `drop`."""
    found: set[str] = set()
    for token in tokenize(text.replace("'", "").replace("\u2019", "")):
        if (
            token in STOP_WORDS
            or token in GREETINGS
            or token in drop
            or len(token) < 2
            or token.isdigit()
        ):
            continue
        found.add(token if token.endswith("ss") else stem(token))
    return frozenset(found)


def short_intent(message: str, words: int = INTENT_WORDS) -> str:
    """What a customer's message asks, in at most `words` words: the first clause that asks for
    something ("I'd like to...", "can you...", a question), else the first that says more than a
    greeting; without the lead-in and without order references ("Hi! I moved, can you update
    the address on order #W5918442?" → "update the address")."""
    clauses = _CLAUSE_END.split(" ".join(message.replace("\u2019", "'").split()))
    found: list[tuple[bool, str]] = []
    for clause in clauses:
        text = _LEAD_IN.sub("", clause).strip()
        asks = bool(_WANT.match(text)) or text.endswith("?")
        text = _ORDER_REF.sub("", _WANT.sub("", text)).strip(" .,;:!?")
        if terms(text):
            found.append((asks, text))
    if not found:
        return " ".join(message.split()[:words]).rstrip(".,;:!?")
    chosen = next((text for asks, text in found if asks), found[0][1]).split()[:words]
    while len(chosen) > 1 and chosen[-1].lower() in _DANGLING:
        chosen.pop()
    return " ".join(chosen).rstrip(".,;:!?")
