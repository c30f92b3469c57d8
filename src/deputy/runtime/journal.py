"""A conversation's transcript is an append-only list of entries; a turn appends its entries
through a `TurnJournal`, which persists each one before `append` returns.

Every entry of a turn has a `key` unique within that turn. Work that is not deterministic (a
model answer, a tool call, a retrieval) is recorded under its key, and a turn that is run again
after a crash finds the recorded entry (`recorded(key)`) and reuses it instead of doing the work
twice. The service implements the journal on the database (`deputy.services.conversations`);
`deputy.testing.runtime.InMemoryJournal` is the fake."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, get_args

from deputy.domain.resources import EntryKind

ENTRY_KINDS: tuple[EntryKind, ...] = get_args(EntryKind)
MESSAGE_KINDS: frozenset[EntryKind] = frozenset(
    {"customer_message", "agent_message", "human_message"}
)
INBOUND_KEY = "inbound"
"""The key of the customer message that starts a turn (recorded before the turn runs)."""


@dataclass(frozen=True)
class Entry:
    """What a turn records. `data` is JSON-safe; `text` is the message text for message kinds
    (stored in the form the guardrails allow: PII masked under `mask_pii`)."""

    kind: EntryKind
    key: str
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEntry:
    id: str
    seq: int
    """Position in the conversation's transcript, from 1."""
    turn_id: str | None
    kind: EntryKind
    key: str
    text: str
    data: dict[str, Any]
    created_at: datetime
    agent_id: str | None = None
    """The agent that was speaking (conversations routed between agents keep one transcript)."""


class TurnJournal(Protocol):
    def recorded(self, key: str) -> RecordedEntry | None:
        """The entry this turn recorded under `key` in an earlier attempt, if any."""
        ...

    async def append(self, entry: Entry) -> RecordedEntry:
        """Persist `entry` (committed when this returns). A key this turn already recorded is
        not written again: the first entry is returned."""
        ...


class NamespacedJournal:
    """A `TurnJournal` whose keys live under `prefix` in another journal: a second agent that
    answers the same turn (a route was taken) records its steps without colliding with the
    first agent's, and a re-run of the turn finds each agent's own entries."""

    def __init__(self, inner: TurnJournal, prefix: str) -> None:
        self._inner = inner
        self.prefix = prefix

    def recorded(self, key: str) -> RecordedEntry | None:
        return self._inner.recorded(self.prefix + key)

    async def append(self, entry: Entry) -> RecordedEntry:
        return await self._inner.append(replace(entry, key=self.prefix + entry.key))


class MemoryJournal:
    """A whole conversation's transcript in memory, turn by turn: the sandbox's journal (a
    simulated conversation is never written to the conversation store). `start_turn` begins a
    new turn; keys are unique per turn; `entries` is the transcript."""

    def __init__(self) -> None:
        self.entries: list[RecordedEntry] = []
        self.turn_id = "turn_1"
        self._ids = itertools.count(1)

    def start_turn(self, turn_id: str) -> None:
        self.turn_id = turn_id

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
        return recorded
