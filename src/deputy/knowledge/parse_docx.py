"""DOCX to blocks with python-docx, located by body paragraph.

The body is read in order: paragraphs styled `Title` or `Heading N` are headings, numbered or
bulleted paragraphs (a numbering property or a `List…` style) are list items (`- ` prefixed,
their numbering level as their level), tables become one row per line with cells joined by
` | `. Locators count the body's paragraphs and tables (a table counts as one), from 1.
"""

from __future__ import annotations

import io
import re

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from deputy.knowledge.document import (
    Locator,
    ParsedDocument,
    TextBuilder,
    first_heading,
    squash,
    unreadable,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return ""
    return (style.name or "") if style is not None else ""


def _list_level(paragraph: Paragraph, style: str) -> int:
    """1 + the numbering level for a list paragraph, 0 for any other."""
    properties = paragraph._p.pPr
    numbering = properties.find(qn("w:numPr")) if properties is not None else None
    if numbering is not None:
        level = numbering.find(qn("w:ilvl"))
        value = level.get(qn("w:val")) if level is not None else None
        return 1 + (int(value) if value is not None and value.isdigit() else 0)
    return 1 if style.lower().startswith("list") else 0


def _add_paragraph(out: TextBuilder, paragraph: Paragraph, index: int) -> None:
    text = squash(paragraph.text)
    if not text:
        return
    locator = Locator("paragraphs", index, index)
    style = _style_name(paragraph)
    heading = _HEADING_STYLE.match(style)
    if style.lower() == "title" or heading:
        level = min(int(heading.group(1)), 6) if heading else 1
        out.add("heading", text, locator, level=max(level, 1), title=text)
        return
    level = _list_level(paragraph, style)
    if level:
        tight = out.last_kind == "list_item"
        out.add("list_item", f"- {text}", locator, level=level, tight=tight)
        return
    out.add("paragraph", text, locator)


def _add_table(out: TextBuilder, table: Table, index: int) -> None:
    locator = Locator("paragraphs", index, index)
    first = True
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = squash(cell.text)
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            out.add("table", " | ".join(cells), locator, tight=not first)
            first = False


def _read(data: bytes) -> tuple[TextBuilder, str | None]:
    document = docx.Document(io.BytesIO(data))
    out = TextBuilder()
    index = 0
    for element in document.element.body.iterchildren():
        if element.tag == qn("w:p"):
            index += 1
            _add_paragraph(out, Paragraph(element, document), index)
        elif element.tag == qn("w:tbl"):
            index += 1
            _add_table(out, Table(element, document), index)
    title = squash(document.core_properties.title or "") or None
    return out, title


def parse_docx(data: bytes) -> ParsedDocument:
    try:
        out, title = _read(data)
    except Exception as exc:  # python-docx and lxml raise many kinds of error on a bad file
        raise unreadable(
            f"the DOCX file could not be read ({type(exc).__name__}: {exc})",
            reason="damaged",
            media_type=DOCX,
        ) from exc
    if out.empty:
        raise unreadable("the DOCX file has no text to index", reason="empty", media_type=DOCX)
    document = out.build(DOCX, None)
    return ParsedDocument(
        document.text, document.blocks, DOCX, title or first_heading(document.blocks)
    )
