"""Cursor pagination over time-sortable ids, newest first. Cursors are opaque to callers."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from deputy.domain.errors import InvalidCursor
from deputy.domain.resources import Page

T = TypeVar("T")
MAX_LIMIT = 200


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if not isinstance(after, str):
        raise InvalidCursor("the cursor is not one this API returned")
    return after


def paginate(
    session: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    cursor: str | None,
    to_resource: Callable[[Any], T],
) -> Page[T]:
    if cursor:
        query = query.where(id_column < decode_cursor(cursor))
    rows: Sequence[Any] = session.scalars(query.order_by(id_column.desc()).limit(limit + 1)).all()
    items = [to_resource(row) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(str(getattr(rows[limit - 1], id_column.key))) if len(rows) > limit else None
    )
    return Page[T](data=items, next_cursor=next_cursor)
