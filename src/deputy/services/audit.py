"""The workspace's audit log: entries appended inside the transaction of the change they
record (so a change and its entry are stored together or not at all), listed, and verified.

Appending first takes the workspace row's write lock (a no-op update: a row lock on
PostgreSQL, the database's write lock on SQLite), so concurrent writers extend the chain one
after the other instead of both from the same entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.domain.errors import InvalidCursor
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.lifecycle.audit import GENESIS, ChainEntry, entry_hash, verify_chain
from deputy.services.access import tenant
from deputy.services.pagination import decode_cursor, encode_cursor
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

VERIFY_BATCH = 1000


def actor_of(principal: Principal) -> tuple[str, lc.ActorKind]:
    """Who the entry names: the key, or the platform itself (`access.system_principal`)."""
    if principal.key_id.startswith("system:"):
        return principal.key_id, "system"
    return principal.key_id, principal.key_kind


def record(
    session: Session,
    workspace_id: str,
    *,
    actor: str,
    actor_kind: lc.ActorKind,
    action: lc.AuditAction,
    subject_type: str,
    subject_id: str,
    data: dict[str, Any],
) -> t.AuditEntryRow:
    """Append an entry in `session`'s transaction (committed with the change it records)."""
    session.execute(
        update(t.Workspace).where(t.Workspace.id == workspace_id).values(id=t.Workspace.id)
    )
    last = session.scalar(select(t.AuditEntryRow).order_by(t.AuditEntryRow.seq.desc()).limit(1))
    entry = ChainEntry(
        seq=1 if last is None else last.seq + 1,
        at=utcnow(),
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
        prev_hash=GENESIS if last is None else last.hash,
    )
    row = t.AuditEntryRow(
        id=new_id("aud"),
        workspace_id=workspace_id,
        seq=entry.seq,
        at=entry.at,
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
        prev_hash=entry.prev_hash,
        hash=entry_hash(entry),
    )
    session.add(row)
    session.flush()
    return row


def record_by(
    session: Session,
    principal: Principal,
    action: lc.AuditAction,
    subject_type: str,
    subject_id: str,
    data: dict[str, Any],
) -> t.AuditEntryRow:
    """`record` with the acting principal as the actor."""
    actor, kind = actor_of(principal)
    return record(
        session,
        principal.workspace_id,
        actor=actor,
        actor_kind=kind,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
    )


def _chain_entry(row: t.AuditEntryRow) -> ChainEntry:
    return ChainEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        actor_kind=row.actor_kind,
        action=row.action,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        data=row.data,
        prev_hash=row.prev_hash,
    )


def list_entries(
    platform: Platform,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    action: str | None = None,
    subject_id: str | None = None,
) -> r.Page[lc.AuditEntry]:
    with tenant(platform, principal, "audit:read") as session:
        query = select(t.AuditEntryRow)
        if action is not None:
            query = query.where(t.AuditEntryRow.action == action)
        if subject_id is not None:
            query = query.where(t.AuditEntryRow.subject_id == subject_id)
        if cursor:
            query = query.where(t.AuditEntryRow.seq < _seq_cursor(cursor))
        rows = session.scalars(query.order_by(t.AuditEntryRow.seq.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        return r.Page[lc.AuditEntry](
            data=[lc.AuditEntry.model_validate(row) for row in rows[:limit]],
            next_cursor=encode_cursor(str(rows[limit - 1].seq)) if more else None,
        )


def _seq_cursor(cursor: str) -> int:
    """Entries list newest first by `seq` (ids are not ordered within a millisecond)."""
    value = decode_cursor(cursor)
    if not value.isdigit():
        raise InvalidCursor("the cursor is not one this API returned")
    return int(value)


def verify(platform: Platform, principal: Principal) -> lc.AuditVerification:
    """Check the workspace's whole chain, in batches of `VERIFY_BATCH` entries."""
    with tenant(platform, principal, "audit:read") as session:

        def rows() -> Any:
            after = 0
            while True:
                batch = session.scalars(
                    select(t.AuditEntryRow)
                    .where(t.AuditEntryRow.seq > after)
                    .order_by(t.AuditEntryRow.seq)
                    .limit(VERIFY_BATCH)
                ).all()
                if not batch:
                    return
                for row in batch:
                    yield _chain_entry(row), row.hash
                after = batch[-1].seq

        check = verify_chain(rows())
    return lc.AuditVerification(
        ok=check.ok,
        entries=check.entries,
        head_hash=check.head_hash,
        first_bad_seq=check.first_bad_seq,
        problem=check.problem,
    )
