"""Procedures from dialogues alone: the typical ordered sequence of agent actions across the
conversations of one intent, as an outline the extractor turns into a procedure.

Each conversation becomes a sequence of symbols (`mine_symbols`). A symbol is kept when at
least a third of the conversations have it; kept symbols are ordered by majority vote over
their first occurrences (Copeland ranking). Where conversations go on differently after the
same item for a visible reason (a query that found something or nothing, a customer's yes or
no: `mine_branches`), the item gets condition branches; every other item goes on to the
earliest later item its conversations often go to next (so an item a condition leads to, like
"nothing found", goes on to the goodbye rather than to the other branch's items). The outline
uses the flowchart convention: `("next", key)` or condition branches on every item that leads
on, none where the flow ends. Every item is anchored to a real turn of the
conversation that agrees best with the learned order."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from deputy.builder.mine_branches import branch_labels
from deputy.builder.mine_symbols import Event, conversation_events
from deputy.builder.sources import Anchor, OutlineItem, OutlineSection, Transcript, Turn

MIN_SHARE = 1 / 3
BRANCH_SHARE = 0.2

Pair = tuple[Transcript, Sequence[Event]]


def _first_positions(events: Sequence[Event]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, event in enumerate(events):
        positions.setdefault(event.symbol, position)
    return positions


def _majority_order(kept: Sequence[str], sequences: Sequence[Sequence[Event]]) -> list[str]:
    """Copeland ranking: a symbol scores one for every other it comes before in more
    conversations than after; ties by mean relative first position, then name."""
    firsts = [_first_positions(events) for events in sequences]
    relative: dict[str, list[float]] = {symbol: [] for symbol in kept}
    for events, first in zip(sequences, firsts, strict=True):
        for symbol in kept:
            if symbol in first:
                relative[symbol].append(first[symbol] / max(len(events), 1))
    score = Counter[str]()
    for a in kept:
        for b in kept:
            if a < b:
                before = sum(1 for f in firsts if a in f and b in f and f[a] < f[b])
                after = sum(1 for f in firsts if a in f and b in f and f[b] < f[a])
                if before != after:
                    score[a if before > after else b] += 1
    return sorted(kept, key=lambda s: (-score[s], sum(relative[s]) / max(len(relative[s]), 1), s))


def _lcs(left: Sequence[str], right: Sequence[str]) -> int:
    table = [[0] * (len(right) + 1) for _ in range(len(left) + 1)]
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


Followers = dict[str, list[list[Turn]]]
"""Per symbol that came next (among kept ones), the turns between in each conversation."""


def _followers(symbol: str, kept: set[str], pairs: Sequence[Pair]) -> tuple[Followers, int]:
    """What came after `symbol`'s first occurrence in each conversation that has it (repeats
    collapsed), and how many conversations have it."""
    followers: Followers = {}
    support = 0
    for transcript, events in pairs:
        seq = [e for e in events if e.symbol in kept]
        seq = [e for i, e in enumerate(seq) if i == 0 or seq[i - 1].symbol != e.symbol]
        position = next((i for i, e in enumerate(seq) if e.symbol == symbol), None)
        if position is None:
            continue
        support += 1
        if position + 1 < len(seq):
            first, then = seq[position].turn.index, seq[position + 1].turn.index
            followers.setdefault(seq[position + 1].symbol, []).append(
                [t for t in transcript.turns if first < t.index < then]
            )
    return followers, support


def _conditions(
    source: Event, followers: Followers, support: int, order: Sequence[str]
) -> list[tuple[str, str]]:
    """(label, symbol) for each follower that at least `BRANCH_SHARE` of the conversations
    (and two) take, when `mine_branches` can say why; later items first, then frequent ones."""
    needed = max(2, math.ceil(BRANCH_SHARE * support))
    frequent = {s: b for s, b in followers.items() if len(b) >= needed}
    if len(frequent) < 2:
        return []
    labels = branch_labels(source.hint, source.turn.text, frequent)
    if labels is None:
        return []
    here = order.index(source.symbol)
    ranked = sorted(frequent, key=lambda s: (order.index(s) < here, -len(frequent[s]), s))
    return [(labels[s], s) for s in ranked]


def _next(symbol: str, followers: Followers, support: int, order: Sequence[str]) -> str | None:
    """Where an item without conditions goes on: the earliest later item that at least
    `BRANCH_SHARE` of its conversations (and two) go to next, else the later item they go to
    most, else the following item of the order (None after the last)."""
    later = order[order.index(symbol) + 1 :]
    seen = {s: len(b) for s, b in followers.items() if s in later}
    needed = max(2, math.ceil(BRANCH_SHARE * support))
    frequent = [s for s in later if seen.get(s, 0) >= needed]
    if frequent:
        return frequent[0]
    if seen:
        return max(seen, key=lambda s: (seen[s], -later.index(s)))
    return later[0] if later else None


def _wiring(
    order: Sequence[str], sources: dict[str, Event], pairs: Sequence[Pair]
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Branches (label, symbol) per symbol: its conditions, else `next` (see `_next`); the
    last item has none."""
    kept = set(order)
    wiring: dict[str, tuple[tuple[str, str], ...]] = {}
    for symbol in order:
        followers, support = _followers(symbol, kept, pairs)
        conditions = _conditions(sources[symbol], followers, support, order)
        if conditions:
            wiring[symbol] = tuple(conditions)
            continue
        following = _next(symbol, followers, support, order)
        wiring[symbol] = (("next", following),) if following else ()
    return wiring


def _item_key(symbol: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", symbol.lower()).strip("_") or "item"
    key, counter = base, 2
    while key in taken:
        key, counter = f"{base}_{counter}", counter + 1
    taken.add(key)
    return key


def learn_flow(
    title: str, transcripts: Sequence[Transcript], opening: Anchor
) -> OutlineSection | None:
    """The outline shared by `transcripts` (one intent's conversations), or None when they
    share no agent action."""
    sequences = conversation_events(transcripts)
    pairs = [(t, s) for t, s in zip(transcripts, sequences, strict=True) if s]
    if not pairs:
        return None
    needed = max(1, math.ceil(MIN_SHARE * len(pairs)))
    support = Counter(symbol for _, events in pairs for symbol in {e.symbol for e in events})
    kept = sorted(symbol for symbol, count in support.items() if count >= needed)
    if not kept:
        return None
    order = _majority_order(kept, [events for _, events in pairs])
    taken: set[str] = set()
    keys = {symbol: _item_key(symbol, taken) for symbol in order}
    ranked = sorted(
        pairs,
        key=lambda pair: (
            -_lcs([e.symbol for e in pair[1] if e.symbol in keys], order),
            pair[0].id,
        ),
    )
    chosen = {
        symbol: next((t, e) for t, events in ranked for e in events if e.symbol == symbol)
        for symbol in order
    }
    wiring = _wiring(order, {s: event for s, (_, event) in chosen.items()}, pairs)
    items = tuple(
        OutlineItem(
            key=keys[symbol],
            text=event.turn.text.strip() or symbol,
            anchor=transcript.anchor(event.turn.index),
            hint=event.hint,
            action=event.action,
            details=(f"seen in {support[symbol]} of {len(pairs)} conversations",),
            branches=tuple((label, keys[target]) for label, target in wiring[symbol]),
        )
        for symbol, (transcript, event) in chosen.items()
    )
    ids = [t.id for t, _ in pairs]
    shown = ", ".join(ids[:12]) + (", …" if len(ids) > 12 else "")
    return OutlineSection(
        title=title,
        anchor=Anchor(
            kind="transcript",
            label=f"{len(ids)} conversation(s): {shown}",
            quote=opening.quote,
            material=opening.material,
            conversation=opening.conversation,
            turns=opening.turns,
        ),
        items=items,
        origin="transcripts",
        intro=(
            f"Learned from {len(ids)} conversation(s): the agent actions that at least a third "
            "of them share, in their usual order."
        ),
    )
