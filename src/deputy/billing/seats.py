"""Seats: every member of a workspace (all roles have console access) is one seat per calendar
month (UTC). A member's seat for the month is metered when they are added, in the same
transaction, and by `ensure_seat_events` for every member at the start of each month (run
hourly by the server), so a month nobody touches still bills its seats. A member removed during
a month keeps that month's seat: events are never taken back."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.billing.meter import meter, seat_fact
from deputy.store import tables as t
from deputy.store.db import Database


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the calendar month holding `moment`."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def meter_seat(session: Session, member: t.Member) -> bool:
    """The seat of a member just added, for the month they joined in (in the caller's
    transaction); True when this call wrote it."""
    session.flush()  # `created_at` is set by the insert
    return meter(session, seat_fact(member, month_start(member.created_at)))


def ensure_seat_events(db: Database, month: datetime) -> int:
    """Meter the seat of every member of every workspace for the month holding `month` (those
    who joined before it ended), once: repeating it writes nothing. One transaction per
    workspace; returns how many events this call wrote."""
    start, end = month_start(month), next_month_start(month)
    with db.session() as session:
        workspace_ids = list(session.scalars(select(t.Workspace.id).order_by(t.Workspace.id)))
    written = 0
    for workspace_id in workspace_ids:
        with db.tenant_session(workspace_id) as session:
            members = session.scalars(
                select(t.Member).where(t.Member.created_at < end).order_by(t.Member.id)
            ).all()
            written += sum(meter(session, seat_fact(member, start)) for member in members)
    return written
