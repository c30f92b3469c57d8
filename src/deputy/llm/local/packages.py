"""Find the data files of pinned model packages through their installed metadata only.

The packages are from unknown publishers: we never import them. `importlib.metadata` reads their
`.dist-info` (METADATA for the version, RECORD for the file list) and tells us where a file is; we
then check that the file stays inside the distribution's directory and has the pinned size.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deputy.llm.local.catalog import PartSpec


@dataclass(frozen=True, slots=True)
class PartLocation:
    part: PartSpec
    path: Path | None  # set when the file is present with the pinned version and size
    problem: str | None = None  # why it cannot be used, for people

    @property
    def ok(self) -> bool:
        return self.path is not None


def locate_part(part: PartSpec, search_path: Sequence[str] | None = None) -> PartLocation:
    """Where `part` is installed, or why it is not usable. Reads metadata; imports nothing."""
    path = list(search_path) if search_path is not None else sys.path
    found = next(iter(importlib.metadata.distributions(name=part.distribution, path=path)), None)
    if found is None:
        return PartLocation(part, None, f"{part.distribution} is not installed")
    if found.version != part.version:
        return PartLocation(
            part,
            None,
            f"{part.distribution} {found.version} is installed; {part.version} is pinned",
        )
    listed = {file.as_posix() for file in found.files or ()}
    if part.path not in listed:
        return PartLocation(
            part, None, f"{part.distribution} {part.version} does not list {part.path}"
        )
    base = Path(str(found.locate_file(""))).resolve()
    file = Path(str(found.locate_file(part.path))).resolve()
    if not file.is_relative_to(base):
        return PartLocation(part, None, f"{part.distribution} points {part.path} outside itself")
    try:
        size = file.stat().st_size
    except OSError:
        return PartLocation(part, None, f"{file} is missing ({part.distribution} is damaged)")
    if size != part.size:
        return PartLocation(
            part, None, f"{file} has {size} bytes; {part.size} are pinned (damaged or replaced)"
        )
    return PartLocation(part, file)


def locate_parts(
    parts: Sequence[PartSpec], search_path: Sequence[str] | None = None
) -> list[PartLocation]:
    return [locate_part(part, search_path) for part in parts]
