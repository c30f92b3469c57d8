"""HTML to blocks with the standard library's tolerant `html.parser`.

Headings (`h1`-`h6`), paragraphs and other block containers, list items (nesting depth as their
level, `- ` or `N. ` prefixed), table rows (cells joined by ` | `) and `pre` blocks. Page
furniture and non-text is dropped: `script`, `style`, `nav`, `noscript`, `template`, `svg`,
`iframe`, `select` and the `head` (whose `title` becomes the document title). Each block is
located by the source lines it came from.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from deputy.knowledge.document import (
    BlockKind,
    Locator,
    ParsedDocument,
    TextBuilder,
    first_heading,
    squash,
)

_DROPPED = frozenset(
    {"script", "style", "nav", "noscript", "template", "svg", "iframe", "select", "head"}
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
        "dd", "dt", "dl", "figure", "figcaption", "caption", "form", "fieldset", "details",
        "summary", "address", "hr", "body", "html", "center",
    }
)  # fmt: skip
_LISTS = frozenset({"ul", "ol"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "area", "col", "source"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def decode_html(data: bytes) -> str:
    """Text of an HTML file: its BOM, else UTF-8, else its `<meta charset>`, else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(data[:4096])
    if declared is not None:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = TextBuilder()
        self.title_parts: list[str] = []
        self.dropped: list[str] = []  # open dropped elements (their content is skipped)
        self.in_title = False
        self.buffer: list[str] = []
        self.first_line = 0
        self.last_line = 0
        self.heading = 0
        self.pre = 0
        self.lists: list[list[int]] = []  # per open list: [is_ordered, next number]
        self.item_depth = 0
        self.cells: list[str] | None = None
        self.row_line = 0
        self.cell_open = False
        self.tight_next = False

    # -- text accumulation ------------------------------------------------------------------

    def handle_data(self, data: str) -> None:
        line, _ = self.getpos()
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.dropped or (not data.strip() and not self.buffer):
            return
        if not self.buffer:
            self.first_line = line + (len(data) - len(data.lstrip("\n")))
        self.buffer.append(data)
        self.last_line = max(self.last_line, line + data.rstrip().count("\n"))

    def flush(self) -> None:
        raw = "".join(self.buffer)
        self.buffer = []
        if self.cells is not None and self.cell_open:
            self.cells.append(squash(raw))
            return
        text = raw.strip("\n") if self.pre else squash(raw)
        if not text.strip():
            return
        locator = Locator("lines", max(self.first_line, 1), max(self.last_line, self.first_line, 1))
        kind: BlockKind
        level = 0
        title = ""
        tight = False
        if self.heading:
            kind, level, title = "heading", self.heading, squash(text)
        elif self.pre:
            kind = "code"
        elif self.item_depth and self.lists:
            kind, level = "list_item", len(self.lists)
            ordered = self.lists[-1]
            prefix = f"{ordered[1]}. " if ordered[0] else "- "
            text = prefix + text
            tight = self.out.last_kind == "list_item" and self.tight_next
        else:
            kind = "paragraph"
        self.out.add(kind, text, locator, level=level, title=title, tight=tight)
        self.tight_next = kind == "list_item"

    # -- structure ----------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
            return
        if self.dropped:
            if tag in _DROPPED and tag not in _VOID:
                self.dropped.append(tag)
            return
        if tag in _DROPPED:
            self.dropped.append(tag)
            return
        if tag == "br":
            self.buffer.append("\n" if self.pre else " ")
            return
        if tag in ("td", "th"):
            self.flush_cell()
            self.cell_open = True
            return
        if tag == "tr":
            self.flush_row()
            self.flush()
            self.cells = []
            self.row_line = self.getpos()[0]
            return
        if tag == "table":
            self.flush_row()
        if tag in _HEADINGS or tag in _BLOCKS or tag in _LISTS or tag in ("li", "pre", "table"):
            self.flush()
        if tag in _HEADINGS:
            self.heading = _HEADINGS[tag]
        elif tag == "pre":
            self.pre += 1
        elif tag in _LISTS:
            self.lists.append([int(tag == "ol"), 1])
            self.tight_next = bool(self.item_depth)  # a nested list continues its parent
        elif tag == "li":
            self.item_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if self.dropped:
            if tag == self.dropped[-1]:
                self.dropped.pop()
            return
        if tag in ("td", "th"):
            self.flush_cell()
            return
        if tag == "tr":
            self.flush_row()
            return
        if tag == "table":
            self.flush_row()
            self.tight_next = False
            return
        if tag in _HEADINGS or tag in _BLOCKS or tag in _LISTS or tag in ("li", "pre"):
            self.flush()
        if tag in _HEADINGS:
            self.heading = 0
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
        elif tag in _LISTS and self.lists:
            self.lists.pop()
            self.tight_next = bool(self.item_depth)
        elif tag == "li" and self.item_depth:
            self.item_depth -= 1
            if self.lists:
                self.lists[-1][1] += 1

    def flush_cell(self) -> None:
        if self.cells is not None and self.cell_open:
            self.flush()
        self.cell_open = False

    def flush_row(self) -> None:
        self.flush_cell()
        if self.cells is None:
            return
        cells = [cell for cell in self.cells if cell]
        self.cells = None
        if cells:
            line = max(self.row_line, 1)
            tight = self.out.last_kind == "table" and self.tight_next
            locator = Locator("lines", line, max(line, self.getpos()[0]))
            self.out.add("table", " | ".join(cells), locator, tight=tight)
            self.tight_next = True


def parse_html(data: bytes, media_type: str = "text/html") -> ParsedDocument:
    extractor = _Extractor()
    extractor.feed(decode_html(data))
    extractor.close()
    extractor.flush_row()
    extractor.flush()
    blocks_title = squash("".join(extractor.title_parts)) or None
    document = extractor.out.build(media_type, blocks_title)
    if document.title is None:
        return ParsedDocument(
            document.text, document.blocks, media_type, first_heading(document.blocks)
        )
    return document
