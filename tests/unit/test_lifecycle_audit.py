"""The audit log's hash chain: an intact chain verifies with its head hash; a changed field, a
removed entry, reordered entries and a relinked entry each fail at the entry where the chain
breaks; a chain rewritten from some entry on verifies only with a different head hash (which is
why the head is anchored elsewhere)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deputy.lifecycle.audit import GENESIS, ChainEntry, entry_hash, verify_chain

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def chain(count: int = 5) -> list[tuple[ChainEntry, str]]:
    """`count` linked entries, each with its stored hash."""
    entries: list[tuple[ChainEntry, str]] = []
    prev = GENESIS
    for seq in range(1, count + 1):
        entry = ChainEntry(
            seq=seq,
            at=START + timedelta(seconds=seq),
            actor=f"key_{seq}",
            actor_kind="member",
            action="proposal.commented",
            subject_type="proposal",
            subject_id=f"prp_{seq}",
            data={"body": f"comment {seq}", "n": seq},
            prev_hash=prev,
        )
        prev = entry_hash(entry)
        entries.append((entry, prev))
    return entries


def relinked(entries: list[tuple[ChainEntry, str]]) -> list[tuple[ChainEntry, str]]:
    """The entries renumbered from 1 and re-hashed: what a forger with write access does."""
    out: list[tuple[ChainEntry, str]] = []
    prev = GENESIS
    for seq, (entry, _) in enumerate(entries, start=1):
        fixed = dataclasses.replace(entry, seq=seq, prev_hash=prev)
        prev = entry_hash(fixed)
        out.append((fixed, prev))
    return out


def test_an_intact_chain_verifies_with_its_head_hash() -> None:
    entries = chain()
    check = verify_chain(entries)
    assert (check.ok, check.entries, check.first_bad_seq, check.problem) == (True, 5, None, None)
    assert check.head_hash == entries[-1][1]
    assert verify_chain([]).ok and verify_chain([]).head_hash is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", START),
        ("actor", "key_forged"),
        ("actor_kind", "system"),
        ("action", "proposal.approved"),
        ("subject_type", "deployment"),
        ("subject_id", "prp_other"),
        ("data", {"body": "comment 3", "n": 33}),
    ],
)
def test_a_changed_field_fails_at_that_entry(field: str, value: Any) -> None:
    entries = chain()
    entry, stored = entries[2]
    entries[2] = (dataclasses.replace(entry, **{field: value}), stored)
    check = verify_chain(entries)
    assert not check.ok and check.first_bad_seq == 3
    assert check.problem == "entry 3 was changed after it was written"
    assert check.head_hash == entries[1][1]  # the last entry that checked


def test_the_same_time_in_another_zone_hashes_the_same() -> None:
    entry, stored = chain(1)[0]
    elsewhere = entry.at.astimezone(datetime.now().astimezone().tzinfo)
    assert entry_hash(dataclasses.replace(entry, at=elsewhere)) == stored


def test_a_removed_entry_fails_at_the_entry_after_the_gap() -> None:
    entries = chain()
    del entries[2]
    check = verify_chain(entries)
    assert not check.ok and check.first_bad_seq == 4
    assert check.problem == "entry 3 is missing (found 4)"


def test_a_removed_first_entry_fails_at_once() -> None:
    check = verify_chain(chain()[1:])
    assert not check.ok and check.first_bad_seq == 2 and check.entries == 1


def test_reordered_entries_fail_where_the_order_breaks() -> None:
    entries = chain()
    entries[1], entries[2] = entries[2], entries[1]
    check = verify_chain(entries)
    assert not check.ok and check.first_bad_seq == 3
    # Renumbered to hide the swap, the entries no longer link.
    swapped = [
        (dataclasses.replace(entry, seq=position), stored)
        for position, (entry, stored) in enumerate(entries, start=1)
    ]
    check = verify_chain(swapped)
    assert not check.ok and check.first_bad_seq == 2
    assert check.problem == "entry 2 does not link to the entry before"


def test_a_relinked_entry_fails_at_that_entry() -> None:
    entries = chain()
    entry, _ = entries[3]
    moved = dataclasses.replace(entry, prev_hash=entries[1][1])  # skips entry 3
    entries[3] = (moved, entry_hash(moved))  # its own hash made consistent again
    check = verify_chain(entries)
    assert not check.ok and check.first_bad_seq == 4
    assert check.problem == "entry 4 does not link to the entry before"


def test_the_first_entry_must_link_to_genesis() -> None:
    entries = chain(2)
    first, _ = entries[0]
    forged = dataclasses.replace(first, prev_hash="f" * 64)
    check = verify_chain([(forged, entry_hash(forged)), entries[1]])
    assert not check.ok and check.first_bad_seq == 1


def test_a_rewritten_chain_verifies_only_with_another_head() -> None:
    entries = chain()
    anchored = verify_chain(entries).head_hash
    rewritten = relinked(entries[:2] + entries[3:])  # entry 3 dropped, the rest re-hashed
    check = verify_chain(rewritten)
    assert check.ok and check.entries == 4
    assert check.head_hash != anchored
