"""Stored responses of POSTs sent with an `Idempotency-Key`, so a retried request is answered
with the first response instead of acting twice.

Records are scoped by a hash of the caller's credential, so two tenants can use the same key.
A record is claimed (`in_progress`) before the request runs and completed with the response
before that response is sent; a failed request (5xx) releases its claim so a retry runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from deputy.store import tables as t
from deputy.store.db import Database

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "in_progress", "mismatch", "replay"]
    record_id: int | None = None
    response: StoredResponse | None = None


def claim(db: Database, credential_hash: str, key: str, fingerprint: str) -> Claim:
    now = datetime.now(UTC)
    with db.session() as session:
        session.execute(
            delete(t.IdempotencyRecord).where(
                t.IdempotencyRecord.credential_hash == credential_hash,
                t.IdempotencyRecord.key == key,
                t.IdempotencyRecord.created_at < now - RETENTION,
            )
        )
    try:
        with db.session() as session:
            record = t.IdempotencyRecord(
                credential_hash=credential_hash,
                key=key,
                fingerprint=fingerprint,
                state="in_progress",
                created_at=now,
            )
            session.add(record)
            session.flush()
            return Claim("claimed", record_id=record.id)
    except IntegrityError:
        pass
    with db.session() as session:
        existing = session.scalar(
            select(t.IdempotencyRecord).where(
                t.IdempotencyRecord.credential_hash == credential_hash,
                t.IdempotencyRecord.key == key,
            )
        )
        if existing is None:  # released between our insert and this read: the caller may retry
            return Claim("in_progress")
        if existing.fingerprint != fingerprint:
            return Claim("mismatch")
        if existing.state != "done" or existing.response_status is None:
            return Claim("in_progress")
        headers: dict[str, Any] = existing.response_headers or {}
        return Claim(
            "replay",
            response=StoredResponse(
                status=existing.response_status,
                headers={str(k): str(v) for k, v in headers.items()},
                body=existing.response_body or b"",
            ),
        )


def complete(db: Database, record_id: int, response: StoredResponse) -> None:
    with db.session() as session:
        session.execute(
            update(t.IdempotencyRecord)
            .where(t.IdempotencyRecord.id == record_id)
            .values(
                state="done",
                response_status=response.status,
                response_headers=response.headers,
                response_body=response.body,
            )
        )


def release(db: Database, record_id: int) -> None:
    with db.session() as session:
        session.execute(delete(t.IdempotencyRecord).where(t.IdempotencyRecord.id == record_id))
