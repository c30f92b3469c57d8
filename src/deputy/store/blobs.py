"""File storage for uploaded materials: one folder per workspace, one file per blob name.

A blob is written to a temporary file, fsynced and renamed into place, so a crash never leaves a
half-written blob under its final name; callers record the row only after `put` returns.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size_bytes: int


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, workspace_id: str, name: str) -> Path:
        return self.root / workspace_id / name

    def put(self, workspace_id: str, name: str, source: BinaryIO, *, max_bytes: int) -> StoredBlob:
        folder = self.root / workspace_id
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp_name, self._path(workspace_id, name))
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return StoredBlob(sha256=digest.hexdigest(), size_bytes=size)

    def read_chunks(self, workspace_id: str, name: str) -> Iterator[bytes]:
        with self._path(workspace_id, name).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def exists(self, workspace_id: str, name: str) -> bool:
        return self._path(workspace_id, name).is_file()

    def delete(self, workspace_id: str, name: str) -> None:
        self._path(workspace_id, name).unlink(missing_ok=True)
