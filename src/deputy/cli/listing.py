"""The options every list command shares, and fetching one page or all of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from deputy.domain.resources import Page

T = TypeVar("T")

Limit = Annotated[int, typer.Option("--limit", min=1, max=200, help="Items per page.")]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="Continue from the `next_cursor` of a previous page.")
]
AllPages = Annotated[bool, typer.Option("--all", help="Fetch every page.")]


def fetch(
    list_page: Callable[[int, str | None], Page[T]], limit: int, cursor: str | None, all_pages: bool
) -> Page[T]:
    """One page, or (with --all) every page from `cursor` on, merged into one."""
    page = list_page(limit, cursor)
    if not all_pages:
        return page
    items = list(page.data)
    while page.next_cursor:
        page = list_page(limit, page.next_cursor)
        items.extend(page.data)
    return Page[T](data=items, next_cursor=None)
