"""Customer signals: what a conversation's transcript says about how it went, without a model.

- `turns`: the customer's messages (each starts an agent turn).
- `repeated_questions`: customer messages that are near-duplicates of an earlier one (the same
  content words, or at least 60% of them shared, Jaccard): the customer had to ask again.
  Messages of fewer than two content words ("yes", "ok") never count.
- `escalated`: the outcome is `escalated`, the conversation waits for or is with a human, or the
  transcript has a handoff event.
- `negative_feedback` / `positive_feedback`: from the explicit feedback entries (a rating such
  as "2/5", "4 stars" or "rating: 9 out of 10", a bare number being out of 5: at most 40% of
  the scale is negative, at least 80% positive; otherwise the phrases below) and from the
  phrases below in the customer's own messages. A positive phrase right after a negation
  ("not very helpful") does not count.
- `tool_errors`: tool lines that did not succeed; `guardrail_blocks`: guardrail events that
  stopped a turn (block or escalate); `failed_turns`: turns the runtime could not complete.

The phrase lists are deliberately small and plain: they catch what a customer says when a
conversation clearly failed or clearly worked, and leave the rest to the model judge."""

from __future__ import annotations

import re

from deputy.domain.improvement import Signals
from deputy.improve.conversations import (
    ProductionConversation,
    customer_messages,
    is_failed_turn,
    is_guardrail_stop,
    is_handoff,
)
from deputy.improve.text import terms

NEGATIVE_PHRASES: tuple[str, ...] = (
    "this is useless",
    "you are useless",
    "you're useless",
    "not helpful",
    "not very helpful",
    "not really helpful",
    "unhelpful",
    "you're not helping",
    "you are not helping",
    "that doesn't help",
    "that does not help",
    "this doesn't help",
    "that's not what i asked",
    "that is not what i asked",
    "i already told you",
    "i already said",
    "you already asked",
    "waste of time",
    "this is ridiculous",
    "this is frustrating",
    "terrible service",
    "worst service",
    "let me talk to a human",
    "let me speak to a human",
    "can i talk to a real person",
    "can i speak to a real person",
    "thumbs down",
    "\N{THUMBS DOWN SIGN}",
)
POSITIVE_PHRASES: tuple[str, ...] = (
    "that solved it",
    "that fixed it",
    "that solves it",
    "problem solved",
    "that helped",
    "that helps a lot",
    "that was helpful",
    "very helpful",
    "really helpful",
    "you've been very helpful",
    "you have been very helpful",
    "perfect, thanks",
    "perfect, thank you",
    "great, thanks",
    "great, thank you",
    "thanks, that's all i needed",
    "thank you, that's all i needed",
    "thumbs up",
    "\N{THUMBS UP SIGN}",
)
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s+(?:\w+\s+)?$")
"""A negation just before a phrase, perhaps with one word between ("not really helpful")."""
REPEAT_SIMILARITY = 0.6
MIN_REPEAT_WORDS = 2
_NUMBER = r"(\d+(?:\.\d+)?)"
_RATINGS: tuple[tuple[re.Pattern[str], float | None], ...] = (
    (re.compile(rf"{_NUMBER}\s*(?:/|out\s+of|of)\s*(5|10)\b", re.IGNORECASE), None),
    (re.compile(rf"{_NUMBER}\s*stars?\b", re.IGNORECASE), 5.0),
    (re.compile(rf"\brat(?:ing|ed)\s*:?\s*{_NUMBER}\b", re.IGNORECASE), 5.0),
    (re.compile(rf"^\s*{_NUMBER}\s*$"), 5.0),
)
"""Ratings and their scale (None: the pattern's second group is the scale)."""


def _plain(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").lower().split())


def _has(text: str, phrases: tuple[str, ...], *, negatable: bool = False) -> bool:
    """Whether `text` says one of `phrases` (`negatable`: and not right after a negation)."""
    plain = _plain(text)
    for phrase in phrases:
        start = plain.find(phrase)
        while start >= 0:
            if not (negatable and _NEGATED.search(plain[:start])):
                return True
            start = plain.find(phrase, start + 1)
    return False


def rating_share(text: str) -> float | None:
    """A rating's share of its scale ("2/5" → 0.4, "4 stars" → 0.8, "rating: 9 out of 10" →
    0.9, a bare "3" → 0.6 on a 5-point scale); None when the text holds no rating."""
    for pattern, scale in _RATINGS:
        match = pattern.search(text)
        if match is not None:
            score, out_of = float(match[1]), scale or float(match[2])
            return score / out_of if 0 <= score <= out_of else None
    return None


def _feedback_tone(entry: str) -> tuple[bool, bool]:
    """(negative, positive) of one explicit feedback entry."""
    share = rating_share(entry)
    if share is not None:
        return share <= 0.4, share >= 0.8
    return _has(entry, NEGATIVE_PHRASES), _has(entry, POSITIVE_PHRASES, negatable=True)


def repeated_messages(messages: list[str]) -> int:
    """How many of `messages` repeat an earlier one (see the module)."""
    seen: list[frozenset[str]] = []
    repeats = 0
    for message in messages:
        words = terms(message)
        if len(words) < MIN_REPEAT_WORDS:
            continue
        if any(len(words & old) / len(words | old) >= REPEAT_SIMILARITY for old in seen):
            repeats += 1
        seen.append(words)
    return repeats


def conversation_signals(conversation: ProductionConversation) -> Signals:
    """The signals of one conversation (see the module for each)."""
    said = customer_messages(conversation)
    transcript = conversation.transcript
    tones = [_feedback_tone(entry) for entry in conversation.feedback]
    negative = any(n for n, _ in tones) or any(_has(m, NEGATIVE_PHRASES) for m in said)
    positive = any(p for _, p in tones) or any(
        _has(m, POSITIVE_PHRASES, negatable=True) for m in said
    )
    escalated = (
        conversation.outcome == "escalated"
        or conversation.status in ("queued", "human")
        or any(is_handoff(line) for line in transcript)
    )
    return Signals(
        turns=len(said),
        repeated_questions=repeated_messages(said),
        escalated=escalated,
        negative_feedback=negative,
        positive_feedback=positive,
        tool_errors=sum(1 for line in transcript if line.role == "tool" and line.ok is False),
        guardrail_blocks=sum(1 for line in transcript if is_guardrail_stop(line)),
        failed_turns=sum(1 for line in transcript if is_failed_turn(line)),
    )
