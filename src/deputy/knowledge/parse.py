"""Bytes and a media type to a `ParsedDocument`: plain text plus its structure.

    document = parse_document(data, "text/markdown")
    document.text                      # what spans point into
    document.blocks[0].kind            # heading | paragraph | list_item | table | code
    document.locate(120, 480).label    # "lines 5-12", "page 3", "paragraphs 4-7"

Markdown, plain text (and the other text types uploads accept: CSV, JSON, YAML, WebVTT, SRT,
read as plain text), HTML, PDF and DOCX. A file that cannot be read (damaged, password-protected,
without any text) raises `ValidationFailed` with `details.reason`; a type that holds no text
(audio) raises `UnsupportedMediaType`.
"""

from __future__ import annotations

from deputy.domain.errors import UnsupportedMediaType
from deputy.knowledge.document import ParsedDocument, unreadable
from deputy.knowledge.parse_docx import DOCX, parse_docx
from deputy.knowledge.parse_html import parse_html
from deputy.knowledge.parse_markdown import parse_markdown, parse_plain_text
from deputy.knowledge.parse_pdf import PDF, parse_pdf

MARKDOWN = "text/markdown"
HTML = "text/html"
PLAIN_TEXT_TYPES = frozenset(
    {
        "text/plain",
        "text/csv",
        "application/json",
        "application/yaml",
        "text/vtt",
        "application/x-subrip",
    }
)
SUPPORTED_TYPES = frozenset({MARKDOWN, HTML, PDF, DOCX} | PLAIN_TEXT_TYPES)


def decode_text(data: bytes) -> str:
    """Text from bytes: a BOM's encoding, else UTF-8, else Windows-1252; line endings become
    `\\n` and NUL characters are removed."""
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def parse_document(data: bytes, media_type: str) -> ParsedDocument:
    media = media_type.split(";", 1)[0].strip().lower()
    if media not in SUPPORTED_TYPES:
        raise UnsupportedMediaType(
            f"{media_type} cannot be indexed as knowledge: expected Markdown, text, HTML, PDF "
            "or DOCX",
            details={"media_type": media_type},
        )
    if media == PDF:
        document = parse_pdf(data)
    elif media == DOCX:
        document = parse_docx(data)
    elif media == HTML:
        document = parse_html(data)
    elif media == MARKDOWN:
        document = parse_markdown(decode_text(data))
    else:
        document = parse_plain_text(decode_text(data), media)
    if not document.blocks:
        raise unreadable("the document has no text to index", reason="empty", media_type=media)
    return document
