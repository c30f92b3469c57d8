from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deputy.domain.errors import InvalidCursor
from deputy.domain.ids import is_id, new_id
from deputy.services.pagination import decode_cursor, encode_cursor


def test_ids_are_prefixed_unique_and_time_sortable() -> None:
    ids = [new_id("agt") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(is_id(i, "agt") and not is_id(i, "ws") for i in ids)
    # ids made in later milliseconds sort later
    assert new_id("agt")[:14] >= ids[0][:14]


@given(st.text(min_size=1, max_size=60))
def test_cursor_roundtrip(value: str) -> None:
    assert decode_cursor(encode_cursor(value)) == value


@pytest.mark.parametrize("junk", ["", "%%%", "e30", "eyJhZnRlciI6IDF9", "bm90IGpzb24"])
def test_foreign_cursors_are_refused(junk: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(junk)
