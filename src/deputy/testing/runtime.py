"""Fakes for runtime tests: a turn journal that can crash on purpose and an event sink that
collects."""

from __future__ import annotations

from dataclasses import dataclass, field

from deputy.runtime.journal import Entry, MemoryJournal, RecordedEntry
from deputy.runtime.ports import Passage


class InMemoryJournal(MemoryJournal):
    """`MemoryJournal` that can fail on purpose: `crash_after(n)` makes the n-th next append
    raise `SimulatedCrash` after it was stored, to test resumption."""

    def __init__(self) -> None:
        super().__init__()
        self._crash_in: int | None = None

    def crash_after(self, appends: int) -> None:
        self._crash_in = appends

    async def append(self, entry: Entry) -> RecordedEntry:
        recorded = await super().append(entry)
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
