"""Upload sources and download destinations, with byte-level progress callbacks.

A progress callback receives `(bytes_done, bytes_total)`; `bytes_total` is None when unknown.
On a retried upload the count starts again from zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from deputy.sdk.errors import IntegrityMismatch

Progress = Callable[[int, int | None], None]
UploadSource = str | os.PathLike[str] | bytes | BinaryIO
Destination = str | os.PathLike[str] | BinaryIO


class _ProgressReader:
    """A read-only, seekable view of a binary file that reports how far it has been read."""

    def __init__(self, raw: BinaryIO, total: int | None, progress: Progress | None) -> None:
        self._raw = raw
        self._total = total
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if self._progress is not None and chunk:
            self._progress(self._raw.tell(), self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        if self._progress is not None and position == 0:
            self._progress(0, self._total)
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()


@dataclass(frozen=True)
class PreparedUpload:
    filename: str
    stream: IO[bytes]
    size: int | None


def _size_of(handle: BinaryIO) -> int | None:
    try:
        return os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    try:
        position = handle.tell()
        size = handle.seek(0, os.SEEK_END)
        handle.seek(position)
        return size
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def prepare_upload(
    source: UploadSource, filename: str | None, progress: Progress | None
) -> Iterator[PreparedUpload]:
    """Open `source` (a path, bytes or a binary file) for a multipart upload."""
    with contextlib.ExitStack() as stack:
        handle: BinaryIO
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            handle = stack.enter_context(path.open("rb"))
            name = filename or path.name
        elif isinstance(source, bytes):
            handle = io.BytesIO(source)
            if not filename:
                raise ValueError("uploading bytes needs a filename")
            name = filename
        else:
            handle = source
            name = filename or Path(str(getattr(source, "name", ""))).name
            if not name:
                raise ValueError("uploading a file object without a name needs a filename")
        size = _size_of(handle)
        reader = _ProgressReader(handle, size, progress)
        yield PreparedUpload(filename=name, stream=cast(IO[bytes], reader), size=size)


class DownloadSink:
    """Where downloaded bytes go: a path (written to a temporary file, renamed into place only
    once complete and verified) or an open binary file. Counts and hashes as it writes."""

    def __init__(self, destination: Destination, total: int | None, progress: Progress | None):
        self._progress = progress
        self._total = total
        self._sha256 = hashlib.sha256()
        self.written = 0
        self._path: Path | None = None
        self._temp: Path | None = None
        if isinstance(destination, (str, os.PathLike)):
            self._path = Path(destination)
            # Created like any new file (the umask applies), under a name nothing else uses.
            temp = self._path.parent / f".{self._path.name}.{uuid.uuid4().hex[:12]}.part"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self._temp = temp
            self._handle: BinaryIO = os.fdopen(fd, "wb")
        else:
            self._handle = destination
        if progress is not None:
            progress(0, total)

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._sha256.update(chunk)
        self.written += len(chunk)
        if self._progress is not None:
            self._progress(self.written, self._total)

    def finish(self, expected_sha256: str | None) -> None:
        digest = self._sha256.hexdigest()
        if expected_sha256 and digest != expected_sha256:
            raise IntegrityMismatch(
                f"downloaded bytes have sha256 {digest}, the server announced {expected_sha256}",
                details={"expected": expected_sha256, "actual": digest},
            )
        if self._temp is not None and self._path is not None:
            self._handle.close()
            os.replace(self._temp, self._path)
            self._temp = None

    def abort(self) -> None:
        if self._temp is not None:
            self._handle.close()
            with contextlib.suppress(OSError):
                self._temp.unlink()
            self._temp = None


def etag_sha256(etag: str | None) -> str | None:
    """The materials endpoint's ETag is the quoted sha256 of the content."""
    if not etag:
        return None
    value = etag.removeprefix("W/").strip('"')
    return value if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else None
