from __future__ import annotations

import io
import zipfile

import pytest

from deputy.domain.errors import InvalidRequest, UnsupportedMediaType
from deputy.services.sniff import DOCX, check_docx, sniff


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("sop.md", b"# Returns\n", "text/markdown"),
        ("notes", b"plain words", "text/plain"),
        ("page", b"<!DOCTYPE html><html></html>", "text/html"),
        ("call.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi", "text/vtt"),
        ("subs", b"WEBVTT\n", "text/vtt"),
        ("dialog", b'{"turns": []}', "application/json"),
        ("tools.yaml", b"tools: []\n", "application/yaml"),
        ("t.csv", "speaker,text\nagent,h\u00e9llo\n".encode(), "text/csv"),
        ("policy.pdf", b"%PDF-1.4\n", "application/pdf"),
        ("call.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        ("call.mp3", b"ID3\x03\x00\x00\x00", "audio/mpeg"),
        ("guide.docx", b"PK\x03\x04rest", DOCX),
    ],
)
def test_known_types(name: str, head: bytes, expected: str) -> None:
    assert sniff(head, name) == expected


def test_text_cut_inside_a_multibyte_character_is_still_text() -> None:
    assert sniff(("é" * 10).encode()[:-1], "a.txt") == "text/plain"


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("policy.pdf", b"hello"),
        ("song.mp3", b"%PDF-1.4"),
        ("x.bin", b"\x00\x01\x02\x03"),
        ("bundle.zip", b"PK\x03\x04"),
        ("latin1.txt", b"caf\xe9 au lait " * 3),
    ],
)
def test_disguised_or_unknown_files_are_refused(name: str, head: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        sniff(head, name)


def test_empty_file_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        sniff(b"", "a.txt")


def test_docx_must_hold_a_word_document() -> None:
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    check_docx(io.BytesIO(good.getvalue()), "ok.docx")
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("payload.exe", "MZ")
    with pytest.raises(UnsupportedMediaType):
        check_docx(io.BytesIO(other.getvalue()), "fake.docx")
    with pytest.raises(UnsupportedMediaType):
        check_docx(io.BytesIO(b"PK\x03\x04broken"), "broken.docx")
