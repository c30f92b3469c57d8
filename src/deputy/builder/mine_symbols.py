"""Conversations as sequences of symbols, the raw material of a learned flow.

A tool action is its name, plus the value of a "mode" argument when the same tool is used in a
few distinct ways (a check and a booking); an agent turn is its canned-reply label; when neither
exists, an agent question or an unnamed action is the group of similar wordings it falls in
("ask_name_order" for "What is your name and order number?" and its rewordings). Labels whose
turns read differently each time mark free text, not a canned reply, and count as unlabelled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deputy.builder.mine_text import TfIdf, average_linkage, content_words
from deputy.builder.sources import ItemHint, Transcript, Turn
from deputy.knowledge.text import tokenize

CANNED_COHESION = 0.6
"""Mean cosine (TF-IDF of all their words) to their centroid that the turns of one reply label
need to count as a canned reply; below it the label marks free text (like STAR's `custom`) and
the turns count as unlabelled. On STAR, canned replies with slots filled in score 0.7 or more,
`custom` about 0.5."""
WORDING_THRESHOLD = 0.3
MAX_MODE_VALUES = 4


@dataclass(frozen=True, slots=True)
class Event:
    """One turn of a conversation as a flow symbol; `action` is the tool or reply label the
    turn names (None for a wording group)."""

    symbol: str
    turn: Turn
    hint: ItemHint  # "action", "question" or "reply"
    action: str | None


def _canned_labels(transcripts: Sequence[Transcript]) -> set[str]:
    """Agent reply labels whose turns read alike (a canned reply, slots filled in)."""
    texts: dict[str, list[list[str]]] = {}
    for transcript in transcripts:
        for turn in transcript.turns:
            if turn.speaker == "agent" and turn.action:
                texts.setdefault(turn.action, []).append(tokenize(turn.text))
    canned: set[str] = set()
    for label, documents in texts.items():
        if len(documents) == 1:
            canned.add(label)
            continue
        matrix = TfIdf(documents).matrix(documents)
        centroid = matrix.mean(axis=0)
        norm = float(np.linalg.norm(centroid))
        if norm > 0 and float((matrix @ (centroid / norm)).mean()) >= CANNED_COHESION:
            canned.add(label)
    return canned


def _mode_arguments(transcripts: Sequence[Transcript]) -> dict[str, str]:
    """Per action name, the argument whose few distinct values tell its uses apart (a
    `RequestType` of Check or Book), when there is one: 2 to 4 values, each used in at least a
    quarter of the conversations that call the action (and twice), chosen by the agent rather
    than said by the customer before the call (a doctor's name is the customer's, not a mode)."""
    values: dict[str, dict[str, Counter[str]]] = {}
    said: Counter[tuple[str, str]] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    callers: Counter[str] = Counter()
    for transcript in transcripts:
        seen: dict[str, dict[str, set[str]]] = {}
        heard = ""
        for turn in transcript.turns:
            if turn.speaker == "customer":
                heard += f" {turn.text.lower()}"
            if turn.speaker == "action" and turn.action:
                for key, value in turn.arguments.items():
                    seen.setdefault(turn.action, {}).setdefault(key, set()).add(value.strip())
                    calls[(turn.action, key)] += 1
                    said[(turn.action, key)] += value.strip().lower() in heard
        for action, used in seen.items():
            callers[action] += 1
            for key, found in used.items():
                values.setdefault(action, {}).setdefault(key, Counter()).update(found)
    modes: dict[str, str] = {}
    for action, counters in values.items():
        candidates = [
            (len(counter), key)
            for key, counter in counters.items()
            if 2 <= len(counter) <= MAX_MODE_VALUES
            and all(count >= max(2, callers[action] / 4) for count in counter.values())
            and all(len(value) <= 30 for value in counter)
            and said[(action, key)] < calls[(action, key)] / 2
        ]
        if candidates:
            modes[action] = min(candidates)[1]
    return modes


def _wording_groups(turns: Sequence[Turn], prefix: str) -> dict[int, str]:
    """Similar wordings grouped; a symbol per group, from its most frequent words."""
    documents = [content_words(turn.text) for turn in turns]
    if not documents:
        return {}
    tfidf = TfIdf(documents)
    matrix = tfidf.matrix(documents)
    symbols: dict[int, str] = {}
    for members in average_linkage(matrix, WORDING_THRESHOLD):
        words: Counter[str] = Counter(w for m in members for w in dict.fromkeys(documents[m]))
        top = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
        symbol = "_".join([prefix, *top]) if top else f"{prefix}_{members[0]}"
        for member in members:
            symbols[id(turns[member])] = symbol
    return symbols


def conversation_events(transcripts: Sequence[Transcript]) -> list[list[Event]]:
    """Each conversation's symbols in turn order, a symbol repeated at once counted once."""
    canned = _canned_labels(transcripts)
    modes = _mode_arguments(transcripts)
    questions = [
        t
        for tr in transcripts
        for t in tr.turns
        if t.speaker == "agent" and (t.action not in canned) and "?" in t.text
    ]
    unnamed = [t for tr in transcripts for t in tr.turns if t.speaker == "action" and not t.action]
    worded = _wording_groups(questions, "ask") | _wording_groups(unnamed, "do")
    sequences: list[list[Event]] = []
    for transcript in transcripts:
        events: list[Event] = []
        for turn in transcript.turns:
            if turn.speaker == "action" and turn.action:
                mode = modes.get(turn.action)
                value = turn.arguments.get(mode, "").strip() if mode else ""
                symbol = f"{turn.action}:{mode}={value}" if value else turn.action
                events.append(Event(symbol, turn, "action", turn.action))
            elif turn.speaker == "agent" and turn.action in canned:
                hint: ItemHint = "question" if "?" in turn.text else "reply"
                events.append(Event(turn.action or "", turn, hint, turn.action))
            elif id(turn) in worded:
                kind: ItemHint = "action" if turn.speaker == "action" else "question"
                events.append(Event(worded[id(turn)], turn, kind, None))
        sequences.append(
            [e for i, e in enumerate(events) if i == 0 or events[i - 1].symbol != e.symbol]
        )
    return sequences
