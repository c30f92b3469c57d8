"""Markdown and plain text, read line by line into blocks whose spans are the source itself.

Markdown: ATX (`## Title`) and setext (underlined) headings, bullet and numbered list items
with their continuation lines, pipe tables, fenced code, paragraphs; YAML front matter and
thematic breaks produce no block. Plain text: paragraphs (separated by blank lines) and list
items, no headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deputy.knowledge.document import (
    Block,
    BlockKind,
    Locator,
    ParsedDocument,
    first_heading,
    line_starts,
    squash,
)

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^([ \t]*)(?:[-*+•]|\d{1,9}[.)])[ \t]+\S")
_TABLE_DELIMITER = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$"
)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|`+|~~)")


@dataclass
class _Line:
    number: int  # 1-based
    start: int
    end: int  # without the newline
    text: str

    @property
    def blank(self) -> bool:
        return not self.text.strip()


def heading_title(raw: str) -> str:
    """A heading's wording without inline Markdown: links keep their text, emphasis goes."""
    return squash(_EMPHASIS.sub("", _LINK.sub(r"\1", raw)))


def _indent(text: str) -> int:
    return len(text.expandtabs(4)) - len(text.expandtabs(4).lstrip(" "))


class _Reader:
    def __init__(self, text: str, *, markdown: bool) -> None:
        self.text = text
        self.markdown = markdown
        starts = line_starts(text)
        self.lines = [
            _Line(number, start, end, text[start:end])
            for number, (start, end) in enumerate(
                zip(starts, [s - 1 for s in starts[1:]] + [len(text)], strict=True), 1
            )
        ]
        self.blocks: list[Block] = []

    def emit(
        self, kind: BlockKind, first: _Line, last: _Line, level: int = 0, title: str = ""
    ) -> None:
        start = first.start + (len(first.text) - len(first.text.lstrip()))
        end = last.start + len(last.text.rstrip())
        if end > start:
            locator = Locator("lines", first.number, last.number)
            self.blocks.append(Block(kind, start, end, level, locator, title))

    def starts_block(self, index: int) -> bool:
        """Whether line `index` starts a new block (and so interrupts a paragraph)."""
        line = self.lines[index]
        if line.blank or _ITEM.match(line.text):
            return True
        if not self.markdown:
            return False
        return bool(
            _ATX.match(line.text)
            or _FENCE.match(line.text)
            or _BREAK.match(line.text)
            or self.is_table(index)
        )

    def is_table(self, index: int) -> bool:
        return (
            "|" in self.lines[index].text
            and index + 1 < len(self.lines)
            and bool(_TABLE_DELIMITER.match(self.lines[index + 1].text))
        )

    def read(self) -> list[Block]:
        index = self.front_matter() if self.markdown else 0
        while index < len(self.lines):
            index = self.read_block(index)
        return self.blocks

    def front_matter(self) -> int:
        if not self.lines or self.lines[0].text.strip() != "---":
            return 0
        for index in range(1, min(len(self.lines), 200)):
            if self.lines[index].text.strip() in ("---", "..."):
                return index + 1
        return 0

    def read_block(self, index: int) -> int:
        line = self.lines[index]
        if line.blank:
            return index + 1
        if self.markdown:
            if heading := _ATX.match(line.text):
                level = len(heading.group(1))
                self.emit("heading", line, line, level, heading_title(heading.group(2) or ""))
                return index + 1
            if fence := _FENCE.match(line.text):
                return self.read_fence(index, fence.group(1))
            if _BREAK.match(line.text):  # before list items: `* * *` is a break
                return index + 1
            if self.is_table(index):
                return self.read_table(index)
        if _ITEM.match(line.text):
            return self.read_item(index)
        return self.read_paragraph(index)

    def read_fence(self, index: int, fence: str) -> int:
        end = index + 1
        while end < len(self.lines) and not self.lines[end].text.strip().startswith(fence):
            end += 1
        last = min(end, len(self.lines) - 1)
        self.emit("code", self.lines[index], self.lines[last])
        return last + 1

    def read_table(self, index: int) -> int:
        end = index
        while end + 1 < len(self.lines) and "|" in self.lines[end + 1].text:
            if self.lines[end + 1].blank:
                break
            end += 1
        self.emit("table", self.lines[index], self.lines[end])
        return end + 1

    def read_item(self, index: int) -> int:
        first = self.lines[index]
        marker = _ITEM.match(first.text)
        assert marker is not None
        indent = _indent(marker.group(1))
        end = index
        while end + 1 < len(self.lines):
            following = self.lines[end + 1]
            if following.blank or _ITEM.match(following.text):
                break
            if self.markdown and _indent(following.text) <= indent and self.starts_block(end + 1):
                break
            end += 1
        self.emit("list_item", first, self.lines[end], level=indent // 2 + 1)
        return end + 1

    def read_paragraph(self, index: int) -> int:
        end = index
        while end + 1 < len(self.lines):
            following = self.lines[end + 1]
            if self.markdown and (underline := _SETEXT.match(following.text)):
                level = 1 if underline.group(1).startswith("=") else 2
                raw = " ".join(line.text for line in self.lines[index : end + 1])
                self.emit("heading", self.lines[index], following, level, heading_title(raw))
                return end + 2
            if self.starts_block(end + 1):
                break
            end += 1
        self.emit("paragraph", self.lines[index], self.lines[end])
        return end + 1


def parse_markdown(text: str, media_type: str = "text/markdown") -> ParsedDocument:
    blocks = tuple(_Reader(text, markdown=True).read())
    return ParsedDocument(text, blocks, media_type, first_heading(blocks), line_starts(text))


def parse_plain_text(text: str, media_type: str = "text/plain") -> ParsedDocument:
    blocks = tuple(_Reader(text, markdown=False).read())
    return ParsedDocument(text, blocks, media_type, None, line_starts(text))
