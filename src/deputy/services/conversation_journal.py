"""`SqlTurnJournal`: a turn's `TurnJournal` on the conversation's transcript table.

Each append is its own committed transaction (the entry is on disk when `append` returns), takes
the conversation's next sequence number in that transaction, and is then published as a live
`entry` event. Entries
are unique by (turn, key): a turn run again finds what it recorded before
(`recorded`), and two runners racing on one key both get the first entry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from deputy.domain import resources as r
from deputy.domain.errors import NotFound
from deputy.domain.ids import new_id
from deputy.runtime.journal import Entry, RecordedEntry
from deputy.services.conversation_events import ConversationEvents
from deputy.services.conversation_store import plain_json, recorded_entry, transcript_entry
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

_CONVERSATIONS = cast(Table, t.Conversation.__table__)
_ENTRIES = cast(Table, t.ConversationEntry.__table__)
_TAKE_SEQ = (
    update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == bindparam("cid"),
        _CONVERSATIONS.c.workspace_id == bindparam("ws"),
    )
    .values(last_seq=_CONVERSATIONS.c.last_seq + 1, updated_at=bindparam("now"))
    .returning(_CONVERSATIONS.c.last_seq)
)
_INSERT_ENTRY = insert(_ENTRIES)


def publish_entry(
    events: ConversationEvents, conversation_id: str, entry: r.TranscriptEntry
) -> None:
    events.publish(conversation_id, r.ConversationEvent(type="entry", entry=entry))


class SqlTurnJournal:
    """The journal of one agent's work in a turn: its entries carry `agent_id`, the agent that
    runs (the conversation's current agent, or the one a route passed the turn to)."""

    def __init__(
        self,
        db: Database,
        events: ConversationEvents,
        *,
        workspace_id: str,
        conversation_id: str,
        turn_id: str,
        agent_id: str,
        recorded: Iterable[RecordedEntry] = (),
    ) -> None:
        self._db = db
        self._events = events
        self.workspace_id = workspace_id
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self.agent_id = agent_id
        self._recorded = {entry.key: entry for entry in recorded}

    def recorded(self, key: str) -> RecordedEntry | None:
        return self._recorded.get(key)

    async def append(self, entry: Entry) -> RecordedEntry:
        earlier = self._recorded.get(entry.key)
        if earlier is not None:
            return earlier
        stored, new = await self._db.run(self._insert, entry)
        self._recorded[entry.key] = stored
        if new:
            publish_entry(self._events, self.conversation_id, transcript_entry(stored))
        return stored

    def _insert(self, entry: Entry) -> tuple[RecordedEntry, bool]:
        """One transaction, two prepared statements (the hot path of every turn, so plain SQL
        rather than an ORM session): take the next `seq` on the conversation row, insert the
        entry. Both are scoped to the workspace explicitly."""
        now = utcnow()
        try:
            with self._db.engine.begin() as connection:
                taken = connection.execute(
                    _TAKE_SEQ, {"cid": self.conversation_id, "ws": self.workspace_id, "now": now}
                ).one_or_none()
                if taken is None:
                    raise NotFound("conversation", self.conversation_id)
                stored = RecordedEntry(
                    id=new_id("ent"),
                    seq=int(taken.last_seq),
                    turn_id=self.turn_id,
                    kind=entry.kind,
                    key=entry.key,
                    text=entry.text,
                    data=plain_json(entry.data),
                    created_at=now,
                    agent_id=self.agent_id,
                )
                connection.execute(
                    _INSERT_ENTRY,
                    {
                        "id": stored.id,
                        "workspace_id": self.workspace_id,
                        "conversation_id": self.conversation_id,
                        "seq": stored.seq,
                        "turn_id": stored.turn_id,
                        "kind": stored.kind,
                        "key": stored.key,
                        "text": stored.text,
                        "data": stored.data,
                        "agent_id": stored.agent_id,
                        "created_at": now,
                    },
                )
                return stored, True
        except IntegrityError:
            with self._db.tenant_session(self.workspace_id) as session:
                existing = session.scalar(
                    select(t.ConversationEntry).where(
                        t.ConversationEntry.turn_id == self.turn_id,
                        t.ConversationEntry.key == entry.key,
                    )
                )
                if existing is None:
                    raise
                return recorded_entry(existing), False
