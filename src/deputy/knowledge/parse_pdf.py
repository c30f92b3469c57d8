"""PDF to blocks with pypdf, located by page.

pypdf gives text in content order with the font size of every fragment. The size most of the
text is set in is the body size; a short line set at least 15% larger is a heading, and the
distinct heading sizes, largest first, are levels 1, 2, 3... Body lines are grouped into
paragraphs (a blank line, or a line ending a sentence, ends one) and list items (a line that
starts with a bullet or a number). Lines are unwrapped, soft hyphens at line ends removed.
Blocks never span pages. Scanned PDFs have no text layer and are refused: there is no OCR.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from deputy.knowledge.document import (
    BlockKind,
    Locator,
    ParsedDocument,
    TextBuilder,
    first_heading,
    squash,
    unreadable,
)

PDF = "application/pdf"
HEADING_RATIO = 1.15
# a bullet (dots, squares, arrows, hyphen bullet, asterisk, en dash, hyphen) or "1." "(2)" "a)"
_MARKER = re.compile(
    "^(?:[\u2022\u00b7\u25aa\u25e6\u25cf\u25cb\u25a0\u25a1\u27a2\u25ba\u2023\u2043*\u2013-]"
    r"|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+\S"
)
_ENDS_SENTENCE = re.compile("[.!?:;\u3002\uff01\uff1f]['\")\\]]*$")


@dataclass
class _Line:
    page: int
    text: str
    size: float


def _scale(matrix: Any) -> float:
    try:
        value = math.hypot(float(matrix[2]), float(matrix[3]))
    except (TypeError, ValueError, IndexError):
        return 1.0
    return value if value > 0 else 1.0


def _page_lines(page: Any, number: int) -> list[_Line]:
    lines: list[_Line] = []
    text: list[str] = []
    sizes: Counter[float] = Counter()

    def end_line() -> None:
        joined = "".join(text)
        if joined.strip():
            size = sizes.most_common(1)[0][0] if sizes else 0.0
            lines.append(_Line(number, joined, size))
        text.clear()
        sizes.clear()

    def visit(fragment: str, cm: Any, tm: Any, _font: Any, font_size: Any) -> None:
        size = round(float(font_size or 0) * _scale(tm) * _scale(cm), 1)
        parts = fragment.split("\n")
        for index, part in enumerate(parts):
            if index:
                end_line()
            if part:
                text.append(part)
                if part.strip():
                    sizes[size] += len(part.strip())

    page.extract_text(visitor_text=visit)
    end_line()
    return lines


def _join(lines: list[str]) -> str:
    joined = ""
    for line in lines:
        line = line.strip()
        if joined.endswith("-") and len(joined) > 1 and joined[-2].isalpha() and line[:1].islower():
            joined = joined[:-1] + line
        else:
            joined = f"{joined} {line}" if joined else line
    return squash(joined)


def _heading_levels(lines: list[_Line]) -> tuple[float, dict[float, int]]:
    weights: Counter[float] = Counter()
    for line in lines:
        weights[line.size] += len(line.text.strip())
    body = weights.most_common(1)[0][0] if weights else 0.0
    sizes = sorted({line.size for line in lines if _is_heading_candidate(line, body)}, reverse=True)
    return body, {size: min(index + 1, 6) for index, size in enumerate(sizes)}


def _is_heading_candidate(line: _Line, body: float) -> bool:
    text = line.text.strip()
    return (
        body > 0
        and line.size >= body * HEADING_RATIO
        and len(text) <= 150
        and len(text.split()) <= 20
        and any(char.isalpha() for char in text)
    )


def _blocks(lines: list[_Line], out: TextBuilder) -> None:
    body, levels = _heading_levels(lines)
    current: list[str] = []
    kind: BlockKind = "paragraph"
    page = 0

    def flush() -> None:
        if current:
            tight = kind == "list_item" and out.last_kind == "list_item"
            level = 1 if kind == "list_item" else 0
            out.add(kind, _join(current), Locator("pages", page, page), tight=tight, level=level)
            current.clear()

    for line in lines:
        text = line.text.strip()
        if line.page != page:
            flush()
            page = line.page
        if not text:
            flush()
            continue
        if line.size in levels and _is_heading_candidate(line, body):
            flush()
            locator = Locator("pages", page, page)
            out.add("heading", text, locator, level=levels[line.size], title=squash(text))
            continue
        if _MARKER.match(text):
            flush()
            kind = "list_item"
        elif not current:
            kind = "paragraph"
        current.append(text)
        if _ENDS_SENTENCE.search(text) and kind == "paragraph":
            flush()
    flush()


class _Encrypted(Exception):
    pass


def _read(data: bytes) -> tuple[list[_Line], str | None]:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = bool(reader.decrypt(""))  # many PDFs only restrict printing or copying
        except Exception:  # an unsupported cipher
            opened = False
        if not opened:
            raise _Encrypted
    lines = [
        line for number, page in enumerate(reader.pages, 1) for line in _page_lines(page, number)
    ]
    title = reader.metadata.title if reader.metadata is not None else None
    return lines, str(title) if title else None


def parse_pdf(data: bytes) -> ParsedDocument:
    try:
        lines, metadata_title = _read(data)
    except _Encrypted:
        raise unreadable(
            "the PDF is password-protected; upload an unprotected copy",
            reason="encrypted",
            media_type=PDF,
        ) from None
    except Exception as exc:  # pypdf raises many kinds of error on a damaged file
        raise unreadable(
            f"the PDF could not be read ({type(exc).__name__}: {exc})",
            reason="damaged",
            media_type=PDF,
        ) from exc
    out = TextBuilder()
    _blocks(lines, out)
    if out.empty:
        raise unreadable(
            "the PDF has no text to index (a scanned PDF needs OCR, which is not supported)",
            reason="empty",
            media_type=PDF,
        )
    document = out.build(PDF, None)
    title = squash(metadata_title) if metadata_title else first_heading(document.blocks)
    return ParsedDocument(document.text, document.blocks, PDF, title or None)
