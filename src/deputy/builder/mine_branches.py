"""Why conversations went different ways after the same item: the condition labels of a
learned flow's branches.

After a question, the customer's answer decides (yes / no). After a tool action, its result
decides: "nothing found" against "found" when the results say so, else the words that set one
follower's results apart from the others' ("available" / "unavailable", "confirmed" /
"failed"). Conversations that go different ways for no visible reason (one customer gave a
detail up front, another did not) give no branches: the learned order covers them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from deputy.builder.mine_text import STOP_WORDS
from deputy.builder.sources import ItemHint, Turn
from deputy.knowledge.text import tokenize

DISTINCT_SHARE = 0.8
"""A word labels a follower's results when at least this share of them has it and at most
1 - this share of the other followers' results do."""

_YES = re.compile(
    r"^\W*(yes|yeah|yep|yup|sure|ok|okay|please do|please|sounds good|that works|perfect|"
    r"correct|great|go ahead|book it|do it|absolutely|definitely)\b",
    re.IGNORECASE,
)
_NO = re.compile(r"^\W*(no|nope|nah|not really|don't|do not|never mind|cancel)\b", re.IGNORECASE)
_NOTHING = re.compile(
    r"\b(no (results?|items?|matches)|nothing|not found|none|empty|0 items)\b|^\s*(\[\]|\{\})\s*$",
    re.IGNORECASE,
)

Between = Sequence[Turn]
"""The turns of one conversation between an item and the item that followed it."""


def _answer(between: Between) -> str | None:
    reply = next((t for t in between if t.speaker == "customer"), None)
    if reply is None:
        return None
    if _YES.search(reply.text):
        return "yes"
    return "no" if _NO.search(reply.text) else None


def _results(between: Between) -> list[str]:
    return [t.text for t in between if t.speaker == "system"]


def _majority(labels: Sequence[str | None]) -> str | None:
    counted = Counter(label for label in labels if label is not None)
    return counted.most_common(1)[0][0] if counted else None


def _distinct(labels: Mapping[str, str | None]) -> dict[str, str] | None:
    """The labels when every follower has one and no two share it."""
    named = {follower: label for follower, label in labels.items() if label is not None}
    if len(named) < len(labels) or len(set(named.values())) < len(named):
        return None
    return named


def _words(text: str) -> set[str]:
    return {w for w in tokenize(text) if w not in STOP_WORDS and not w.isdigit()}


def _distinguishing_words(by_follower: Mapping[str, Sequence[Between]]) -> dict[str, str] | None:
    words = {
        follower: [_words(" ".join(_results(b))) for b in betweens]
        for follower, betweens in by_follower.items()
    }
    labels: dict[str, str | None] = {}
    for follower, own in words.items():
        others = [w for f, sets in words.items() if f != follower for w in sets]
        if not own or not others:
            return None
        counted = Counter(word for found in own for word in found)
        chosen = sorted(
            word
            for word, count in counted.items()
            if count >= DISTINCT_SHARE * len(own)
            and sum(word in found for found in others) <= (1 - DISTINCT_SHARE) * len(others)
        )
        labels[follower] = f"result: {' '.join(chosen[:2])}" if chosen else None
    return _distinct(labels)


def branch_labels(
    hint: ItemHint | None, text: str, by_follower: Mapping[str, Sequence[Between]]
) -> dict[str, str] | None:
    """A condition label for each follower of an item, or None when the conversations do not
    show why they went different ways."""
    if hint == "action":
        found = {
            follower: _majority(
                [
                    ("nothing found" if _NOTHING.search(" ".join(r)) else "found") if r else None
                    for r in map(_results, betweens)
                ]
            )
            for follower, betweens in by_follower.items()
        }
        return _distinct(found) or _distinguishing_words(by_follower)
    if "?" not in text:
        return None
    return _distinct(
        {
            follower: _majority([_answer(b) for b in betweens])
            for follower, betweens in by_follower.items()
        }
    )
