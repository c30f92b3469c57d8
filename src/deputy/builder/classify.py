"""What a section of the material is: a `procedure` (customers come for it: an action on their
account or order), a `policy` (standing rules), `knowledge` (background facts) or `ignore`
(boilerplate: contents, revision history).

Rules first, each adding to a kind's score:
- the title: an action verb ("Cancel pending order", "Reset a password", "Refund requests")
  or "how to" / "process" → procedure; "policy", "rules", "guidelines", "principles" →
  policy; "overview", "about", "glossary", "FAQ", "basics", or a bare noun ("Product") →
  knowledge; "contents", "revision history", "change log", "copyright" → ignore;
- the items: numbered steps and imperatives → procedure; "can only be ... if" preconditions
  → procedure; must / never / only sentences → policy; descriptions ("each order has",
  "there are") → knowledge;
- a write tool whose name the title matches → procedure.
Sections read from structured guidelines, flowcharts or transcripts are procedures by origin.
When the two best kinds are within `TIE_MARGIN`, `asker.choose` decides between them; without
a model (or when it fails) the better rule score stands and the reading says it was close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from deputy.builder.asker import Asker
from deputy.builder.outline import item_kind
from deputy.builder.sources import OutlineSection
from deputy.builder.tool_match import ACTION_VERBS, WRITES, ToolMatcher, terms

SectionKind = Literal["procedure", "policy", "knowledge", "ignore"]
KINDS: tuple[SectionKind, ...] = ("procedure", "policy", "knowledge", "ignore")
TIE_MARGIN = 1.0

_POLICY_TITLE = re.compile(
    r"\b(?:polic(?:y|ies)|rules?|guidelines?|principles?|conduct|standards?|dos and don'?ts|"
    r"requirements?|compliance|general|limits?|thresholds?)\b",
    re.IGNORECASE,
)
_KNOWLEDGE_TITLE = re.compile(
    r"\b(?:overview|about|background|glossary|definitions?|faqs?|frequently asked|reference|"
    r"basics?|introduction|pricing|prices|plans?|fees|hours|contacts?|information|domain|"
    r"terminology|catalog(?:ue)?)\b",
    re.IGNORECASE,
)
_IGNORE_TITLE = re.compile(
    r"^(?:table of contents|contents|revision history|revisions?|change ?log|version history|"
    r"document (?:control|history|information)|approvals?|copyright|licen[cs]e|index|"
    r"distribution list)$",
    re.IGNORECASE,
)
_PROCEDURE_TITLE = re.compile(r"\b(?:how to|process(?:ing)?|procedure|steps|workflow)\b", re.I)
_PRECONDITION = re.compile(r"\bcan only be \w+ (?:if|when)\b|\bonly (?:if|when)\b", re.I)
_NORMATIVE = re.compile(r"\b(?:must|never|only|should|shall|always|cannot|do not|don't)\b", re.I)
_DESCRIPTIVE = re.compile(
    r"^(?:each|every|there (?:are|is)|our|the \w+ (?:of|has|have|is|are|can be)|\w+s? (?:has|"
    r"have|is|are|consists?|contains?|includes?))\b|\b(?:following attributes|for example)\b",
    re.IGNORECASE,
)
_QUESTION = (
    "Which best describes this section of a business's support material? procedure: steps the "
    "agent follows when a customer asks for something; policy: standing rules the agent always "
    "follows; knowledge: background facts; ignore: not about serving customers."
)


@dataclass(frozen=True, slots=True)
class SectionReading:
    section: OutlineSection
    kind: SectionKind
    scores: tuple[tuple[SectionKind, float], ...]
    decided_by: Literal["rules", "model", "origin"]
    close: bool = False
    """The rules could not tell the two best kinds apart (and no model settled it)."""


def rule_scores(section: OutlineSection, matcher: ToolMatcher) -> dict[SectionKind, float]:
    """Each kind's score by the rules in the module docstring."""
    scores: dict[SectionKind, float] = dict.fromkeys(KINDS, 0.0)
    title = section.title.strip()
    title_terms = terms(title)
    if _IGNORE_TITLE.match(title):
        scores["ignore"] += 6
    if title_terms and title_terms[0] in ACTION_VERBS:
        scores["procedure"] += 3
    elif set(title_terms) & ACTION_VERBS or _PROCEDURE_TITLE.search(title):
        scores["procedure"] += 2
    if _POLICY_TITLE.search(title):
        scores["policy"] += 3
    if _KNOWLEDGE_TITLE.search(title):
        scores["knowledge"] += 2
    elif len(title_terms) <= 2 and not set(title_terms) & ACTION_VERBS:
        scores["knowledge"] += 1
    if matcher.best(" ".join([title, *section.path[-1:]]), effects=WRITES) is not None:
        scores["procedure"] += 1.5 if title_terms and title_terms[0] in ACTION_VERBS else 0.5
    steps = normative = descriptive = imperative = 0
    for entry in section.items:
        if item_kind(entry) == "list_item" and entry.hint == "step":
            steps += 1
        elif entry.hint == "step":
            imperative += 1
        if _PRECONDITION.search(entry.text):
            scores["procedure"] += 1
        if _NORMATIVE.search(entry.text):
            normative += 1
        elif _DESCRIPTIVE.search(entry.text) or item_kind(entry) == "list_item":
            descriptive += 1
    scores["procedure"] += min(3.0, 0.75 * steps) + min(1.5, 0.5 * imperative)
    scores["policy"] += min(3.0, 0.5 * normative)
    scores["knowledge"] += min(3.0, 0.5 * descriptive)
    if not section.items:
        scores["knowledge"] += 0.5
    return scores


def _context(section: OutlineSection, limit: int = 1500) -> str:
    lines = [f"Section: {' > '.join([*section.path, section.title])}"]
    lines += [f"- {entry.text}" for entry in section.items]
    return "\n".join(lines)[:limit]


async def classify_section(
    section: OutlineSection, matcher: ToolMatcher, asker: Asker
) -> SectionReading:
    """The kind of `section` (see the module docstring)."""
    if section.origin != "document":
        kind: SectionKind = "procedure" if section.items else "ignore"
        return SectionReading(section, kind, ((kind, 1.0),), "origin")
    scores = rule_scores(section, matcher)
    if not section.items:
        return SectionReading(section, "knowledge", (("knowledge", scores["knowledge"]),), "rules")
    ranked = sorted(KINDS, key=lambda k: (-scores[k], KINDS.index(k)))
    ordered = tuple((kind, round(scores[kind], 2)) for kind in ranked)
    best, second = ranked[0], ranked[1]
    if scores[best] - scores[second] >= TIE_MARGIN:
        return SectionReading(section, best, ordered, "rules")
    answer = await asker.choose(_QUESTION, _context(section), (best, second))
    if answer in KINDS:
        chosen = next(kind for kind in KINDS if kind == answer)
        return SectionReading(section, chosen, ordered, "model")
    return SectionReading(section, best, ordered, "rules", close=True)
