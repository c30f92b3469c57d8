"""What agents remember: facts stored by the `remember_fact` built-in, about one conversation or
about one customer of one agent (never shared across agents or workspaces). The runtime recalls
them when it assembles a turn's context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from deputy.domain.ids import new_id
from deputy.store import tables as t
from deputy.store.db import Database

MemoryScope = Literal["conversation", "customer"]
RECALL_LIMIT = 50


@dataclass(frozen=True)
class MemoryFact:
    id: str
    scope: MemoryScope
    fact: str
    conversation_id: str
    customer_id: str | None
    created_at: datetime


def _fact(row: t.MemoryFactRow) -> MemoryFact:
    scope: MemoryScope = "customer" if row.scope == "customer" else "conversation"
    return MemoryFact(row.id, scope, row.fact, row.conversation_id, row.customer_id, row.created_at)


class SqlMemory:
    def __init__(self, db: Database, workspace_id: str) -> None:
        self._db = db
        self.workspace_id = workspace_id

    def remember(
        self,
        *,
        agent_id: str,
        conversation_id: str,
        step_key: str,
        scope: MemoryScope,
        customer_id: str | None,
        fact: str,
    ) -> bool:
        """Store a fact; False when this call site stored one already (a resumed turn)."""
        if scope == "customer" and not customer_id:
            raise ValueError("a customer fact needs an identified customer")
        try:
            with self._db.tenant_session(self.workspace_id) as session:
                session.add(
                    t.MemoryFactRow(
                        id=new_id("fact"),
                        workspace_id=self.workspace_id,
                        agent_id=agent_id,
                        scope=scope,
                        customer_id=customer_id,
                        conversation_id=conversation_id,
                        step_key=step_key,
                        fact=fact,
                    )
                )
                session.flush()
        except IntegrityError:
            return False
        return True

    def recall(
        self,
        *,
        agent_id: str,
        conversation_id: str,
        customer_id: str | None,
        limit: int = RECALL_LIMIT,
    ) -> list[MemoryFact]:
        """This conversation's facts and, for an identified customer, what this agent remembers
        about them from any conversation; the newest `limit`, oldest first."""
        about = t.MemoryFactRow.conversation_id == conversation_id
        if customer_id:
            about = or_(
                about,
                (t.MemoryFactRow.scope == "customer")
                & (t.MemoryFactRow.customer_id == customer_id),
            )
        query = (
            select(t.MemoryFactRow)
            .where(t.MemoryFactRow.agent_id == agent_id, about)
            .order_by(t.MemoryFactRow.created_at.desc(), t.MemoryFactRow.id.desc())
            .limit(limit)
        )
        with self._db.tenant_session(self.workspace_id) as session:
            return [_fact(row) for row in reversed(session.scalars(query).all())]
