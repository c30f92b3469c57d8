"""Fakes for runtime tests: a turn journal in memory and an event sink that collects."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deputy.runtime.journal import Entry, RecordedEntry
from deputy.runtime.ports import Passage


class InMemoryJournal:
    """`TurnJournal` over a list. `entries` is the whole transcript (every turn); `start_turn`
    begins a new turn (keys are unique per turn); `crash_after(n)` makes the n-th next append
    raise `SimulatedCrash` after it was stored, to test resumption."""

    def __init__(self) -> None:
        self.entries: list[RecordedEntry] = []
        self.turn_id = "turn_1"
        self._ids = itertools.count(1)
        self._crash_in: int | None = None

    def start_turn(self, turn_id: str) -> None:
        self.turn_id = turn_id

    def crash_after(self, appends: int) -> None:
        self._crash_in = appends

    def turn_entries(self, turn_id: str | None = None) -> list[RecordedEntry]:
        wanted = turn_id or self.turn_id
        return [e for e in self.entries if e.turn_id == wanted]

    def recorded(self, key: str) -> RecordedEntry | None:
        return next((e for e in self.turn_entries() if e.key == key), None)

    async def append(self, entry: Entry) -> RecordedEntry:
        earlier = self.recorded(entry.key)
        if earlier is not None:
            return earlier
        recorded = RecordedEntry(
            id=f"ent_{next(self._ids):06d}",
            seq=len(self.entries) + 1,
            turn_id=self.turn_id,
            kind=entry.kind,
            key=entry.key,
            text=entry.text,
            data=dict(entry.data),
            created_at=datetime.now(UTC),
        )
        self.entries.append(recorded)
        if self._crash_in is not None:
            self._crash_in -= 1
            if self._crash_in <= 0:
                self._crash_in = None
                raise SimulatedCrash(f"crash after recording {entry.kind} {entry.key!r}")
        return recorded


class SimulatedCrash(RuntimeError):
    """Raised by `InMemoryJournal` to stand for a process dying mid-turn."""


@dataclass
class CollectingSink:
    entries: list[RecordedEntry] = field(default_factory=list)
    deltas: list[str] = field(default_factory=list)

    async def entry(self, entry: RecordedEntry) -> None:
        self.entries.append(entry)

    async def reply_delta(self, text: str) -> None:
        self.deltas.append(text)


@dataclass
class StaticRetriever:
    """Passages ranked by word overlap with the query (no index)."""

    passages: list[Passage] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def search(self, query: str, k: int) -> list[Passage]:
        self.queries.append(query)
        words = {w.lower().strip(".,?!") for w in query.split()}

        def overlap(passage: Passage) -> int:
            return len(words & {w.lower().strip(".,?!") for w in passage.text.split()})

        ranked = sorted(self.passages, key=overlap, reverse=True)
        return [p for p in ranked if overlap(p) > 0][:k]
