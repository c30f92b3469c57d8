"""Sample material shipped with Deputy (see each folder's README for its origin and licence)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def retail_material() -> tuple[Traversable, ...]:
    """The retail policy and tool descriptions the quickstart builds its first agent from."""
    folder = files("deputy.samples") / "retail"
    return (folder / "policy.md", folder / "tools.json")
