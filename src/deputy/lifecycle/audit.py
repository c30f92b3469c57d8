"""The audit log's hash chain: each entry's hash covers the previous entry's hash and the
entry's own canonical JSON, so changing, removing or reordering any entry breaks every hash
after it. The first entry links to `GENESIS`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainEntry:
    """What the hash covers (everything stored but the hash itself)."""

    seq: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    prev_hash: str


def entry_hash(entry: ChainEntry) -> str:
    body = {
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    head_hash: str | None
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(entries: Iterable[tuple[ChainEntry, str]]) -> ChainCheck:
    """Check `(entry, stored hash)` pairs in `seq` order from the first entry."""
    expected_prev, expected_seq, count, head = GENESIS, 1, 0, None
    for entry, stored in entries:
        count += 1
        if entry.seq != expected_seq:
            return ChainCheck(
                False,
                count,
                head,
                entry.seq,
                f"entry {expected_seq} is missing (found {entry.seq})",
            )
        if entry.prev_hash != expected_prev:
            return ChainCheck(
                False,
                count,
                head,
                entry.seq,
                f"entry {entry.seq} does not link to the entry before",
            )
        if entry_hash(entry) != stored:
            return ChainCheck(
                False, count, head, entry.seq, f"entry {entry.seq} was changed after it was written"
            )
        expected_prev, expected_seq, head = stored, expected_seq + 1, stored
    return ChainCheck(True, count, head)
