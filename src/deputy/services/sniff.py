"""Decide what an uploaded file really is from its bytes, not from what the client claims.

Accepted: PDF, DOCX, HTML, Markdown, plain text, JSON, CSV, YAML, WebVTT, SRT, WAV, MP3. A file
whose name promises one type while its bytes are another is refused, so nothing downstream parses
a disguised file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import PurePath
from typing import BinaryIO

from deputy.domain.errors import InvalidRequest, UnsupportedMediaType

SNIFF_BYTES = 8192

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_BY_SUFFIX = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".csv": "text/csv",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
}
BINARY_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".docx": DOCX,
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
}


def _binary_type(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sniffed window is still text
        return exc.start >= len(head) - 3
    return True


def _text_type(head: bytes, suffix: str) -> str:
    if suffix in TEXT_BY_SUFFIX:
        return TEXT_BY_SUFFIX[suffix]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if stripped.startswith(b"webvtt"):
        return "text/vtt"
    if stripped[:1] in (b"{", b"["):
        try:
            json.loads(head)
            return "application/json"
        except ValueError:
            pass
    return "text/plain"


def sniff(head: bytes, filename: str) -> str:
    """The media type of a file from its first bytes and its name's suffix."""
    if not head:
        raise InvalidRequest("the file is empty", details={"filename": filename})
    suffix = PurePath(filename).suffix.lower()
    binary = _binary_type(head)
    if binary is not None:
        expected = BINARY_BY_SUFFIX.get(suffix)
        if binary == "application/zip":
            if suffix != ".docx":
                raise UnsupportedMediaType(
                    "archives are not accepted; upload the documents themselves",
                    details={"filename": filename},
                )
            return DOCX
        if expected not in (None, binary):
            raise UnsupportedMediaType(
                f"the content of {filename!r} is {binary}, not what its name says",
                details={"filename": filename, "detected": binary},
            )
        return binary
    if suffix in BINARY_BY_SUFFIX:
        raise UnsupportedMediaType(
            f"{filename!r} is not a valid {suffix[1:].upper()} file",
            details={"filename": filename},
        )
    if _is_text(head):
        return _text_type(head, suffix)
    raise UnsupportedMediaType(
        "unsupported file type: expected PDF, DOCX, HTML, Markdown, text, JSON, CSV, YAML, "
        "WebVTT, SRT, WAV or MP3",
        details={"filename": filename},
    )


def check_docx(source: BinaryIO, filename: str) -> None:
    """A .docx must be a readable zip holding word/document.xml."""
    try:
        with zipfile.ZipFile(source) as archive:
            if "word/document.xml" not in archive.namelist():
                raise UnsupportedMediaType(
                    f"{filename!r} is a zip archive, not a Word document",
                    details={"filename": filename},
                )
    except zipfile.BadZipFile as exc:
        raise UnsupportedMediaType(
            f"{filename!r} is a damaged DOCX file", details={"filename": filename}
        ) from exc
