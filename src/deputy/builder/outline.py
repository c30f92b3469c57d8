"""A document's outline: its sections (from headings, nested) and each section's own items.

    source = SourceDocument(MaterialRef("mat_1", "sop.md", "text/markdown"), parsed)
    sections = outline_document(source)

A heading opens a section; its `path` holds the titles of the enclosing sections (a section
runs to the next heading of the same or a higher level). A section's own items are what stands
between its heading and the next heading of any level, and its anchor covers the heading and
those items only (each sub-section has its own), so a procedure's provenance is its own text:

- a paragraph gives one item per sentence (key `s<block>.<n>`). A piece that starts in lower
  case is the tail of an abbreviation ("e.g. help the user") and stays with the sentence before
  it; a sentence that only points back ("This has to be done even when...", "It must...") joins
  the sentence it refers to, since it means nothing alone;
- a list item gives one item without its marker (key `li<block>`); a numbered one is a `step`;
- a table gives one item per data row (key `tr<block>.<row>`), its `details` the cells as
  `header: value` and its text those joined with "; ";
- a code block gives one `note` item (key `c<block>`).

Text before the first heading, or a document without headings, becomes a section titled from
the document's title or, failing that (or when the title is a heading's), its file name.
`intro` is the section's first paragraph.

Anchors are of kind "document": `start`/`end` are offsets into `source.document.text` covering
exactly the item's text (markers and surrounding whitespace excluded), `label` the document's
locator of that span, and `quote` that text with whitespace squashed (runs of spaces and
newlines as one space). Item `text` is the same wording with inline Markdown (emphasis, code
marks, links) removed, for reading; `quote` keeps the source as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

from deputy.builder.sources import Anchor, ItemHint, OutlineItem, OutlineSection, SourceDocument
from deputy.knowledge.document import Block, squash
from deputy.knowledge.text import sentence_spans

ItemKind = Literal["sentence", "list_item", "table_row", "code"]

_MARKER = re.compile(r"^\s*(?:[-*+\u2022\u25aa\u25cf]|(\d{1,3}|[a-zA-Z])[.)])\s+")
_BOLD = re.compile(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1")
_UNDERSCORE = re.compile(r"(?<![\w])(_{1,2})(?=\S)(.+?)(?<=\S)\1(?![\w])")
_CODE = re.compile(r"`+([^`]+)`+")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BACK_REFERENCE = re.compile(
    r"^(?:this|that|these|those|it)\s+(?:is|are|was|were|has|have|had|must|should|can|"
    r"cannot|will|may|might|applies|apply|means|includes|does|do|needs|need|only|also)\b",
    re.IGNORECASE,
)
_NORMATIVE = re.compile(
    r"\b(?:must|never|only|should|shall|always|cannot|can't|do not|don't|not allowed|"
    r"required|forbidden|prohibited|have to|has to|deny|refuse)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:please\s+)?(?:ask|check|confirm|verify|call|use|tell|inform|collect|obtain|get|"
    r"open|close|send|offer|explain|transfer|escalate|look|search|find|create|update|change|"
    r"cancel|refund|issue|process|record|log|make|ensure|review|select|enter|click|"
    r"book|reset|block|unblock|suspend|reactivate|apologi[sz]e|greet|end|provide|give|let|"
    r"advise|remind|validate|submit|schedule|return|exchange|replace|activate|add|remove)\b",
    re.IGNORECASE,
)


def _open_quote(text: str) -> bool:
    """Whether `text` leaves a quotation open (a sentence end inside a quoted message)."""
    opening = len(re.findall(r"(?:^|(?<=[\s(\[]))'(?=\w)", text))
    closing = len(re.findall(r"(?<=[\w.!?)\]])'(?=[\s.,;:!?)\]]|$)", text))
    return opening > closing or text.count('"') % 2 == 1


def clean(text: str) -> str:
    """Readable wording of a source span: inline Markdown removed, whitespace squashed."""
    text = _LINK.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _UNDERSCORE.sub(r"\2", text)
    return squash(text)


def item_kind(item: OutlineItem) -> ItemKind:
    """What layout an item came from, read from its key (see the module docstring)."""
    prefix = re.match(r"[a-z]+", item.key)
    kinds: dict[str, ItemKind] = {
        "s": "sentence",
        "li": "list_item",
        "tr": "table_row",
        "c": "code",
    }
    return kinds.get(prefix.group() if prefix else "", "sentence")


def hint_for(text: str, *, numbered: bool = False) -> ItemHint:
    """`step` for numbered items and imperatives, `rule` for normative wording, `question` for
    a question, `note` otherwise."""
    if numbered or _IMPERATIVE.match(text):
        return "step"
    if _NORMATIVE.search(text):
        return "rule"
    if text.endswith("?"):
        return "question"
    return "note"


@dataclass
class _Open:
    title: str
    level: int
    start: int
    path: tuple[str, ...]
    items: list[OutlineItem] = field(default_factory=list)
    intro: str = ""
    end: int = 0


class _Outliner:
    def __init__(self, source: SourceDocument) -> None:
        self.source = source
        self.text = source.document.text

    def anchor(self, start: int, end: int) -> Anchor:
        return Anchor(
            kind="document",
            label=self.source.document.locate(start, end).label,
            quote=squash(self.text[start:end]),
            material=self.source.material,
            start=start,
            end=end,
        )

    def trimmed(self, start: int, end: int) -> tuple[int, int]:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return start, end

    def sentences(self, index: int, block: Block) -> Iterator[OutlineItem]:
        pieces: list[tuple[int, int]] = []
        for start, end in sentence_spans(self.text, block.start, block.end):
            start, end = self.trimmed(start, end)
            if end <= start:
                continue
            first = self.text[start]
            follows = pieces and (
                first.islower()
                or _BACK_REFERENCE.match(self.text[start:end])
                or _open_quote(self.text[pieces[-1][0] : pieces[-1][1]])
            )
            if follows:
                pieces[-1] = (pieces[-1][0], end)
            else:
                pieces.append((start, end))
        for number, (start, end) in enumerate(pieces, 1):
            text = clean(self.text[start:end])
            yield OutlineItem(f"s{index}.{number}", text, self.anchor(start, end), hint_for(text))

    def list_item(self, index: int, block: Block) -> OutlineItem | None:
        raw = self.text[block.start : block.end]
        marker = _MARKER.match(raw)
        start = block.start + (marker.end() if marker else 0)
        start, end = self.trimmed(start, block.end)
        if end <= start:
            return None
        text = clean(self.text[start:end])
        numbered = bool(marker and marker.group(1))
        return OutlineItem(
            f"li{index}", text, self.anchor(start, end), hint_for(text, numbered=numbered)
        )

    def table_rows(self, index: int, rows: list[tuple[int, int]]) -> Iterator[OutlineItem]:
        """Rows (spans of one table, header first) as items of `header: value` cells."""
        cells = [self.cells(start, end) for start, end in rows]
        header = cells[0] if len(cells) > 1 else []
        for number, ((start, end), values) in enumerate(zip(rows, cells, strict=True)):
            if header and number == 0:
                continue
            named = tuple(
                f"{header[i]}: {value}" if i < len(header) and header[i] else value
                for i, value in enumerate(values)
                if value
            )
            if named:
                text = "; ".join(named)
                yield OutlineItem(
                    f"tr{index}.{number}",
                    text,
                    self.anchor(start, end),
                    hint_for(" ".join(values)),
                    details=named,
                )

    def cells(self, start: int, end: int) -> list[str]:
        row = self.text[start:end].strip().strip("|")
        return [clean(cell) for cell in row.split("|")]

    def table_spans(self, block: Block) -> list[tuple[int, int]]:
        """The rows of a table block (a Markdown table holds all its rows, one per line)."""
        spans: list[tuple[int, int]] = []
        position = block.start
        for line in self.text[block.start : block.end].split("\n"):
            start, end = self.trimmed(position, position + len(line))
            position += len(line) + 1
            if end > start and not re.fullmatch(r"[\s|:\-]+", self.text[start:end]):
                spans.append((start, end))
        return spans

    def outline(self) -> tuple[OutlineSection, ...]:
        document = self.source.document
        blocks = document.blocks
        done: list[_Open] = []
        stack: list[_Open] = []
        fallback = self.fallback_title()
        top = min((block.level for block in blocks if block.kind == "heading"), default=1)
        table: list[tuple[int, int]] = []
        table_index = 0

        def flush_table() -> None:
            if table and stack:
                stack[-1].items.extend(self.table_rows(table_index, list(table)))
            table.clear()

        for index, block in enumerate(blocks):
            joined = (
                block.kind == "table"
                and table
                and "\n\n" not in self.text[table[-1][1] : block.start]
            )
            if table and not joined:
                flush_table()
            if block.kind == "heading":
                while stack and stack[-1].level >= block.level:
                    closed = stack.pop()
                    done.append(closed)
                path = tuple(section.title for section in stack)
                title = block.title or clean(self.text[block.start : block.end]).lstrip("# ")
                opened = _Open(title or fallback, block.level, block.start, path, end=block.end)
                stack.append(opened)
                continue
            if not stack:
                stack.append(_Open(fallback, top, block.start, ()))
            current = stack[-1]
            current.end = block.end
            if block.kind == "paragraph":
                current.items.extend(self.sentences(index, block))
                if not current.intro:
                    current.intro = clean(self.text[block.start : block.end])
            elif block.kind == "list_item":
                found = self.list_item(index, block)
                if found is not None:
                    current.items.append(found)
            elif block.kind == "table":
                if not table:
                    table_index = index
                table.extend(self.table_spans(block))
            else:
                start, end = self.trimmed(block.start, block.end)
                if end > start:
                    text = clean(self.text[start:end])
                    anchor = self.anchor(start, end)
                    current.items.append(OutlineItem(f"c{index}", text, anchor, "note"))
        flush_table()
        done.extend(reversed(stack))
        done.sort(key=lambda section: section.start)
        return tuple(self.section(opened) for opened in done)

    def section(self, opened: _Open) -> OutlineSection:
        start, end = self.trimmed(opened.start, max(opened.end, opened.start))
        return OutlineSection(
            title=opened.title,
            anchor=self.anchor(start, max(end, start + 1)),
            items=tuple(opened.items),
            origin="document",
            path=opened.path,
            intro=opened.intro,
            level=opened.level,
        )

    def fallback_title(self) -> str:
        """The document's title, else its file name; the file name as well when the title is
        a heading's (text before that heading is not that section)."""
        title = self.source.document.title
        headings = {block.title for block in self.source.document.blocks if block.kind == "heading"}
        if title and title not in headings:
            return title
        stem = PurePath(self.source.material.name).stem
        words = squash(re.sub(r"[_\-.]+", " ", stem))
        return words[:1].upper() + words[1:] if words else "Document"


def outline_document(source: SourceDocument) -> tuple[OutlineSection, ...]:
    """The sections of `source` in document order (parents before their sub-sections)."""
    if not source.document.blocks:
        return ()
    return _Outliner(source).outline()
