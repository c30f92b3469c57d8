"""Writing usage events exactly once.

Every billable fact is written in the same transaction as the fact itself (the conversation row,
the outcome, the finished tool call), under an `event_id` derived from the fact: a retried
request, a resumed turn or a second process writing the same fact inserts nothing. A crash
before the commit loses the fact and its event together; after it, both are there."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from deputy.domain.billing import UsageKind, UsageUnit
from deputy.domain.ids import new_id
from deputy.domain.probes import PROBE_METADATA_KEY
from deputy.store import tables as t

MINUTE_PLACES = Decimal("0.000001")
"""Voice minutes are kept to the millionth (a second is 1/60 of a minute, not a finite
decimal); the exact whole seconds are in the event's `data`."""


@dataclass(frozen=True, slots=True)
class UsageFact:
    event_id: str
    kind: UsageKind
    workspace_id: str
    quantity: Decimal
    unit: UsageUnit
    occurred_at: datetime
    agent_id: str | None = None
    conversation_id: str | None = None
    channel: str | None = None
    subject: str | None = None
    outcome: str | None = None
    reverses_event_id: str | None = None
    cost_usd: Decimal | None = None
    data: dict[str, Any] = field(default_factory=dict)


def meter(session: Session, fact: UsageFact) -> bool:
    """Insert `fact` unless its event id is already recorded; True when this call wrote it."""
    values = {
        "id": new_id("use"),
        "event_id": fact.event_id,
        "workspace_id": fact.workspace_id,
        "kind": fact.kind,
        "agent_id": fact.agent_id,
        "conversation_id": fact.conversation_id,
        "channel": fact.channel,
        "subject": fact.subject,
        "quantity": str(fact.quantity),
        "unit": fact.unit,
        "reverses_event_id": fact.reverses_event_id,
        "data": fact.data,
        "outcome": fact.outcome,
        "cost_usd": None if fact.cost_usd is None else str(fact.cost_usd),
        "occurred_at": fact.occurred_at,
        "recorded_at": t.utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(t.UsageEventRow).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["event_id"])
    # RETURNING says whether a row went in (psycopg reports no rowcount for this insert).
    return session.execute(statement.returning(t.UsageEventRow.id)).first() is not None


def conversation_fact(row: t.Conversation) -> UsageFact | None:
    """The conversation's own event; None for a synthetic probe's (never billed)."""
    if row.meta.get(PROBE_METADATA_KEY):
        return None
    return UsageFact(
        event_id=f"conversation:{row.id}",
        kind="conversation",
        workspace_id=row.workspace_id,
        quantity=Decimal(1),
        unit="conversation",
        occurred_at=row.created_at,
        agent_id=row.agent_id,
        conversation_id=row.id,
        channel=row.channel,
        data={"agent_version": row.agent_version},
    )


def outcome_fact(row: t.Conversation) -> UsageFact | None:
    """The outcome of a closed conversation (one per conversation); None for a probe's."""
    if row.outcome is None or row.meta.get(PROBE_METADATA_KEY):
        return None
    return UsageFact(
        event_id=f"outcome:{row.id}",
        kind="outcome",
        workspace_id=row.workspace_id,
        quantity=Decimal(1),
        unit="outcome",
        occurred_at=row.closed_at or t.utcnow(),
        agent_id=row.agent_id,
        conversation_id=row.id,
        channel=row.channel,
        subject=row.outcome,
        outcome=row.outcome,
        data={"agent_version": row.current_agent_version},
    )


def tool_call_fact(row: t.ToolCallRow) -> UsageFact:
    """A finished tool call (one per ledger row, however many attempts it took)."""
    return UsageFact(
        event_id=f"tool_call:{row.id}",
        kind="tool_call",
        workspace_id=row.workspace_id,
        quantity=Decimal(1),
        unit="call",
        occurred_at=row.started_at,
        agent_id=row.agent_id,
        # Calls outside a conversation (a tool test) carry a longer correlation id: not kept.
        conversation_id=row.conversation_id if len(row.conversation_id) <= 40 else None,
        subject=row.tool,
        outcome=row.status,
        data={"attempts": row.attempts, "effect": row.effect},
    )


def seat_fact(member: t.Member, month_start: datetime) -> UsageFact:
    """A member's seat for the calendar month starting at `month_start` (UTC): one per member
    and month, dated when the month began or, if later, when the member joined."""
    return UsageFact(
        event_id=f"seat:{member.id}:{month_start:%Y-%m}",
        kind="seat",
        workspace_id=member.workspace_id,
        quantity=Decimal(1),
        unit="seat",
        occurred_at=max(month_start, member.created_at),
        subject=member.id,
        data={"role": member.role, "month": f"{month_start:%Y-%m}"},
    )


def call_minutes(duration_seconds: float) -> tuple[int, Decimal]:
    """A call's billed length: whole seconds (rounded up) and those seconds in minutes."""
    seconds = max(0, math.ceil(duration_seconds))
    return seconds, (Decimal(seconds) / 60).quantize(MINUTE_PLACES, ROUND_HALF_EVEN)


def voice_minutes_fact(
    row: t.Conversation,
    *,
    call_sid: str,
    stream_sid: str,
    started_at: datetime,
    duration_seconds: float,
) -> UsageFact | None:
    """The minutes of the phone call behind a voice conversation (one per call and
    conversation); None for a probe's."""
    if row.meta.get(PROBE_METADATA_KEY):
        return None
    seconds, minutes = call_minutes(duration_seconds)
    call = hashlib.sha256(call_sid.encode()).hexdigest()[:16]
    return UsageFact(
        event_id=f"voice:{row.id}:{call}",
        kind="voice_minutes",
        workspace_id=row.workspace_id,
        quantity=minutes,
        unit="minute",
        occurred_at=started_at,
        agent_id=row.agent_id,
        conversation_id=row.id,
        channel=row.channel,
        subject=call_sid[:200],
        data={"seconds": seconds, "call_sid": call_sid, "stream_sid": stream_sid},
    )
