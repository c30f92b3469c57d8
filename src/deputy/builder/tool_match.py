"""Which tool a piece of a procedure means: its text (and the procedure's title) against each
tool's name, description and parameter names.

    matcher = ToolMatcher(tools)
    matcher.best("Cancel pending order", effects=WRITES)     # ToolMatch(cancel_order, 0.9) or None
    matcher.named("make a tool call to transfer_to_human_agents")   # the tool named verbatim

Words are compared as `terms`: lower-case stems with a few verbs folded together (update /
change / edit → modify, verify / authenticate → verify...), so "Modify their default user
address" meets `update_user_address`. A tool's score is mostly how much of its *name* the text
covers, plus how much of its description: names are what tool authors choose carefully, and a
text sharing one word with a long description means little. A tool whose action verb differs
from every action verb of the text scores half. BM25 (`deputy.knowledge.bm25`) over name,
description and parameters breaks ties. Below `MATCH_THRESHOLD` nothing matches: the caller
asks the client (`OpenQuestion(kind="unmatched_tool")`) rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deputy.builder.sources import ToolDescription
from deputy.domain.spec import EffectTier
from deputy.knowledge.bm25 import BM25Index

MATCH_THRESHOLD = 0.5
WRITES: frozenset[EffectTier] = frozenset({"write", "irreversible"})

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.split(
        r"\s+",
        """a an and are as at be been before by can could do does e eg etc for from g has have
    how i ie if in into is it its me my of on or our please should so that the their them
    they this to us was we what when which who will with would you your all any each some
    such than then there these those about also just not no may might must shall very via per
    one only own same other new""",
    )
)
_SYNONYMS = {
    "modify": "modify",
    "chang": "modify",
    "upd": "modify",
    "edit": "modify",
    "amend": "modify",
    "alter": "modify",
    "void": "cancel",
    "authentic": "verify",
    "verify": "verify",
    "identify": "verify",
    "look": "find",
    "lookup": "find",
    "search": "find",
    "locat": "find",
    "retriev": "find",
    "fetch": "find",
    "get": "find",
    "show": "find",
    "view": "find",
    "escal": "transfer",
    "handoff": "transfer",
    "customer": "user",
    "client": "user",
    "caller": "user",
    "reimburs": "refund",
    "payment": "pay",
    "remov": "delete",
    "delet": "delete",
    "postal": "zip",
    "postcode": "zip",
    "mobile": "phone",
    "telephone": "phone",
}


def _stem(word: str) -> str:
    if len(word) <= 3 or word.isdigit():
        return word
    stem = word
    for suffix, replacement in (
        ("ifications", "ify"),
        ("ification", "ify"),
        ("ations", ""),
        ("ation", ""),
        ("ies", "y"),
        ("ied", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if stem.endswith(suffix) and len(stem) - len(suffix) >= 3:
            if suffix == "s" and stem.endswith(("ss", "us", "is")):
                continue
            if suffix == "es" and not stem.endswith(("sses", "xes", "ches", "shes", "zes")):
                continue
            stem = stem[: len(stem) - len(suffix)] + replacement
            break
    if stem.endswith("e") and len(stem) > 3:
        stem = stem[:-1]
    if stem != word:
        if len(stem) > 4 and stem.endswith("at"):
            stem = stem[:-2]
        if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "sz":
            stem = stem[:-1]
    return stem


def terms(text: str) -> list[str]:
    """Content terms of `text` (snake_case split), stemmed and folded; in order."""
    out: list[str] = []
    for word in _WORD.findall(text.lower().replace("_", " ")):
        if word in _STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        stem = _stem(word)
        out.append(_SYNONYMS.get(stem, stem))
    return out


ACTION_VERBS = frozenset(
    terms(
        """modify cancel verify find transfer refund delete return exchange book reserve
        create add open close reset block unblock suspend reactivate activate replace pay
        process issue send submit schedule reschedule apply upgrade downgrade dispute report
        renew extend track register enrol subscribe unsubscribe restart toggle setup"""
    )
)
"""Verbs (as terms) that name what a tool or a procedure does."""


_HUMAN = re.compile(
    r"\b(?:human|humans|live agent|person|supervisor|manager|representative|operator)\b", re.I
)


def is_handoff_tool(tool: ToolDescription) -> bool:
    """Whether calling `tool` hands the conversation to a person (`transfer_to_human_agents`),
    as opposed to an action that merely transfers something (`transfer_funds`)."""
    words = f"{tool.name.replace('_', ' ')} {tool.description}"
    return "transfer" in terms(tool.name) and bool(_HUMAN.search(words))


@dataclass(frozen=True, slots=True)
class ToolMatch:
    tool: ToolDescription
    score: float


class ToolMatcher:
    """Ranks `tools` for a text; see the module docstring for the score."""

    def __init__(self, tools: Sequence[ToolDescription]) -> None:
        self.tools = tuple(tools)
        self._names = [frozenset(terms(tool.name)) for tool in self.tools]
        self._descriptions = [frozenset(terms(tool.description)) for tool in self.tools]
        documents = [
            terms(tool.name) * 2 + terms(tool.description) + terms(" ".join(tool.parameter_names))
            for tool in self.tools
        ]
        self._bm25 = BM25Index(documents)
        self._by_name = {tool.name: tool for tool in self.tools}

    def get(self, name: str) -> ToolDescription | None:
        return self._by_name.get(name)

    def named(self, text: str) -> ToolDescription | None:
        """The tool whose exact name the text mentions (the longest, when several are)."""
        found = [
            tool
            for tool in self.tools
            if re.search(rf"(?<![\w]){re.escape(tool.name)}(?![\w])", text, re.IGNORECASE)
        ]
        return max(found, key=lambda tool: len(tool.name)) if found else None

    def rank(self, query: str, *, effects: Collection[EffectTier] | None = None) -> list[ToolMatch]:
        """Every allowed tool with a positive score, best first."""
        wanted = set(terms(query))
        if not wanted or not self.tools:
            return []
        verbs = wanted & ACTION_VERBS
        bm25 = self._bm25.scores(list(wanted))
        ranked: list[tuple[float, float, int]] = []
        for index, tool in enumerate(self.tools):
            if effects is not None and tool.effect not in effects:
                continue
            name, description = self._names[index], self._descriptions[index]
            if not name:
                continue
            score = 0.75 * len(name & wanted) / len(name)
            score += 0.25 * min(1.0, len(description & wanted) / 4)
            own_verbs = name & ACTION_VERBS
            if verbs and own_verbs and not verbs & own_verbs:
                score *= 0.5
            if score > 0:
                ranked.append((score, float(bm25[index]), index))
        ranked.sort(key=lambda entry: (-entry[0], -entry[1], entry[2]))
        return [ToolMatch(self.tools[index], round(score, 3)) for score, _, index in ranked]

    def best(
        self,
        query: str,
        *,
        effects: Collection[EffectTier] | None = None,
        threshold: float = MATCH_THRESHOLD,
    ) -> ToolMatch | None:
        """The best tool for `query` scoring at least `threshold`, else None."""
        named = self.named(query)
        if named is not None and (effects is None or named.effect in effects):
            return ToolMatch(named, 1.0)
        ranked = self.rank(query, effects=effects)
        return ranked[0] if ranked and ranked[0].score >= threshold else None

    def lookup(self, noun: str, slot: str) -> ToolDescription | None:
        """A read tool that fetches one `noun` by its id `slot` (`get_order_details` for an
        order known by `order_id`): its name holds the noun and `slot` is its only required
        parameter."""
        noun_terms = set(terms(noun))
        if not noun_terms or set(terms(slot)) - {"id"} != noun_terms:
            return None
        for tool in self.tools:
            if tool.effect != "read" or tool.required != (slot,):
                continue
            if noun_terms <= set(terms(tool.name)):
                return tool
        return None
