"""What an attachment is, decided from its bytes: images, PDF and text pass; executables,
scripts, HTML, unknown binaries and names that lie about the bytes do not. And the message
that announces an upload to the agent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deputy.domain.errors import UnsupportedMediaType
from deputy.domain.widget import ConversationAttachment
from deputy.services.conversation_attachments import announcement, attachment_type


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "photo.png", "image/png"),
        (b"\xff\xd8\xff\xe0JFIF", "photo.JPG", "image/jpeg"),
        (b"GIF89a....", "anim.gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "pic.webp", "image/webp"),
        (b"%PDF-1.7\n", "invoice.pdf", "application/pdf"),
        (b"%PDF-1.7\n", "scan", "application/pdf"),
        ("Hello, I ordered \u00e9clairs".encode(), "note.txt", "text/plain"),
        (b"a,b\n1,2\n", "data.csv", "text/csv"),
        (b"# Title\n", "readme.md", "text/markdown"),
        (b'{"order": 1}', "order.json", "application/json"),
        (b"plain words", "no-suffix", "text/plain"),
        ("caf\u00e9".encode()[:-1], "cut.txt", "text/plain"),  # a character cut by the window
    ],
)
def test_accepted_types(head: bytes, name: str, expected: str) -> None:
    assert attachment_type(head, name) == expected


@pytest.mark.parametrize(
    ("head", "name", "reason"),
    [
        (b"MZ\x90\x00", "setup.exe", "executable"),
        (b"MZ\x90\x00", "invoice.pdf", "executable"),
        (b"\x7fELF\x02", "tool", "executable"),
        (b"\xcf\xfa\xed\xfe", "app", "executable"),
        (b"#!/bin/bash\n", "notes.txt", "executable"),
        (b"\x00asm\x01", "module", "executable"),
        (b"echo hi", "run.bat", "executable"),
        (b"<svg onload=alert(1)>", "logo.svg", "executable"),
        (b"<html></html>", "page.html", "executable"),
        (b"alert(1)", "x.js", "executable"),
        (b"%PDF-1.4", "photo.png", "named .png"),
        (b"\x89PNG\r\n\x1a\n", "doc.pdf", "named .pdf"),
        (b"\x00\x01\x02\x03", "data.bin", "executable"),
        (b"\x00\x01\x02\x03", "data.dat", "accepted attachments"),
        (b"PK\x03\x04", "archive.zip", "accepted attachments"),
        (b"\x01\x02binary without a zero byte", "data", "accepted attachments"),
    ],
)
def test_refused_types(head: bytes, name: str, reason: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=reason):
        attachment_type(head, name)


def test_the_announcement_is_the_gateways_format_with_the_caption_first() -> None:
    attachment = ConversationAttachment(
        id="att_" + "0" * 32,
        conversation_id="cnv_x",
        filename="receipt.png",
        media_type="image/png",
        size_bytes=2048,
        sha256="0" * 64,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    line = "[attachment: receipt.png (image/png, 2048 bytes)]"
    assert announcement(attachment, None) == line
    assert announcement(attachment, "  ") == line
    assert announcement(attachment, " My receipt ") == f"My receipt\n{line}"
