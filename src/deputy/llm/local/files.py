"""File plumbing for model weights: sha256, verification stamps, atomic writes, a cross-process
lock. A stamp remembers that a file was verified (its size, mtime and inode with the sha256), so a
1 GB file is hashed once, not on every start; any change to the file invalidates the stamp."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
CHUNK = 1 << 20


def hash_stream(
    source: BinaryIO,
    size: int | None,
    *,
    into: tuple[hashlib._Hash, ...],
    sink: BinaryIO | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Read `size` bytes (all when None) from `source`, feeding every hasher in `into` and
    writing them to `sink` when given. Returns the number of bytes read."""
    done = 0
    while size is None or done < size:
        want = CHUNK if size is None else min(CHUNK, size - done)
        chunk = source.read(want)
        if not chunk:
            break
        for hasher in into:
            hasher.update(chunk)
        if sink is not None:
            sink.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return done


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        hash_stream(source, None, into=(hasher,), progress=progress)
    return hasher.hexdigest()


@dataclass(frozen=True, slots=True)
class Stamp:
    path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str

    @classmethod
    def of(cls, path: Path, sha256: str) -> Stamp:
        info = path.stat()
        return cls(str(path), info.st_size, info.st_mtime_ns, info.st_ino, sha256)


def read_stamp(stamp_file: Path) -> Stamp | None:
    try:
        raw = json.loads(stamp_file.read_text(encoding="utf-8"))
        return Stamp(
            path=str(raw["path"]),
            size=int(raw["size"]),
            mtime_ns=int(raw["mtime_ns"]),
            inode=int(raw["inode"]),
            sha256=str(raw["sha256"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stamp_is_valid(stamp_file: Path, path: Path, sha256: str) -> bool:
    """True when `path` was verified against `sha256` and has not changed since (a stat only)."""
    stamp = read_stamp(stamp_file)
    if stamp is None or stamp.sha256 != sha256 or stamp.path != str(path):
        return False
    try:
        current = Stamp.of(path, sha256)
    except OSError:
        return False
    return current == stamp


def write_stamp(stamp_file: Path, path: Path, sha256: str) -> None:
    atomic_write_bytes(stamp_file, json.dumps(asdict(Stamp.of(path, sha256))).encode())


def verify_file(
    path: Path, sha256: str, stamp_file: Path, progress: Callable[[int], None] | None = None
) -> bool:
    """Does `path` have this sha256? Answered from the stamp when it is still valid; otherwise
    the file is hashed and, when it matches, the stamp is (re)written."""
    if stamp_is_valid(stamp_file, path, sha256):
        return True
    if not path.is_file():
        return False
    if sha256_file(path, progress) != sha256:
        with contextlib.suppress(FileNotFoundError):
            stamp_file.unlink()
        return False
    write_stamp(stamp_file, path, sha256)
    return True


def fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":  # directories cannot be opened for fsync there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temp file in the same directory, fsync, rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(path.parent)


def commit_file(temp: Path, final: Path) -> None:
    """Make a finished temp file visible under its final name, durably."""
    with temp.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)
    fsync_directory(final.parent)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock shared by threads and processes (flock on a lock file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        else:  # pragma: no cover - Deputy runs on Linux and macOS
            yield
