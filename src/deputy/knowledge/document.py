"""A parsed document: its plain text and the structure found in it.

`ParsedDocument.text` is what chunks and citations point into: `(start, end)` character
offsets are offsets into it. For Markdown and plain text it is the source itself (line endings
normalised to `\\n`), so a span is exact to the line; for HTML, PDF and DOCX it is the text
extracted from them, block by block, and a span is located by the blocks it overlaps (the HTML
source lines, PDF pages or DOCX paragraphs they came from).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from deputy.domain.errors import ValidationFailed

BlockKind = Literal["heading", "paragraph", "list_item", "table", "code"]
LocatorKind = Literal["lines", "pages", "paragraphs"]

_SINGULAR = {"lines": "line", "pages": "page", "paragraphs": "paragraph"}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Locator:
    """Where a span is in the original file: 1-based, inclusive `start`..`end` lines (Markdown,
    text, HTML source), pages (PDF) or body paragraphs (DOCX, tables counting as one)."""

    kind: LocatorKind
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 1 <= self.start <= self.end:
            raise ValueError(f"bad locator range {self.start}..{self.end}")

    def merge(self, other: Locator) -> Locator:
        if other.kind != self.kind:
            raise ValueError("cannot merge locators of different kinds")
        return Locator(self.kind, min(self.start, other.start), max(self.end, other.end))

    @property
    def label(self) -> str:
        """`lines 12-18`, `page 3`, `paragraphs 4-7`."""
        if self.start == self.end:
            return f"{_SINGULAR[self.kind]} {self.start}"
        return f"{self.kind} {self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of the text: `text[start:end]`. `level` is the heading level (1-6)
    for headings, the nesting depth (1 = outermost) for list items, 0 otherwise. `title` is a
    heading's plain wording (markup removed), empty for other blocks."""

    kind: BlockKind
    start: int
    end: int
    level: int
    locator: Locator
    title: str = ""


@dataclass(frozen=True)
class ParsedDocument:
    text: str
    blocks: tuple[Block, ...]
    media_type: str
    title: str | None = None
    line_starts: tuple[int, ...] | None = None
    """Offsets where each line of `text` starts, when `text` is the source file itself."""
    _block_starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_block_starts", [block.start for block in self.blocks])

    def block_text(self, block: Block) -> str:
        return self.text[block.start : block.end]

    def locate(self, start: int, end: int) -> Locator:
        """The locator of `text[start:end]`."""
        if self.line_starts is not None:
            first = bisect.bisect_right(self.line_starts, start)
            last = bisect.bisect_right(self.line_starts, max(start, end - 1))
            return Locator("lines", first, last)
        index = max(bisect.bisect_right(self._block_starts, start) - 1, 0)
        found: Locator | None = None
        while index < len(self.blocks) and self.blocks[index].start < max(end, start + 1):
            block = self.blocks[index]
            if block.end > start or found is None:
                found = block.locator if found is None else found.merge(block.locator)
            index += 1
        if found is None:
            raise ValueError("the document has no blocks")
        return found


def line_starts(text: str) -> tuple[int, ...]:
    starts = [0]
    position = text.find("\n")
    while position != -1:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return tuple(starts)


def squash(text: str) -> str:
    """Runs of whitespace (newlines included) as one space, trimmed."""
    return _SPACES.sub(" ", text).strip()


class TextBuilder:
    """Assembles the text of a format that is not plain text (HTML, PDF, DOCX) block by block:
    blocks are separated by a blank line, rows of one table or items of one list by a newline."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._blocks: list[Block] = []

    def add(
        self,
        kind: BlockKind,
        text: str,
        locator: Locator,
        *,
        level: int = 0,
        title: str = "",
        tight: bool = False,
    ) -> None:
        """Append a block; empty text is skipped. `tight` joins it to the previous block with a
        single newline (the next item of a list, the next row of a table)."""
        text = text.strip()
        if not text:
            return
        if self._blocks:
            separator = "\n" if tight else "\n\n"
            self._parts.append(separator)
            self._length += len(separator)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self._blocks.append(Block(kind, start, self._length, level, locator, title))

    @property
    def empty(self) -> bool:
        return not self._blocks

    @property
    def last_kind(self) -> BlockKind | None:
        return self._blocks[-1].kind if self._blocks else None

    def build(self, media_type: str, title: str | None) -> ParsedDocument:
        return ParsedDocument("".join(self._parts), tuple(self._blocks), media_type, title)


def first_heading(blocks: Sequence[Block]) -> str | None:
    """The wording of the highest-level heading that comes first, as a fallback title."""
    headings = [block for block in blocks if block.kind == "heading" and block.title]
    if not headings:
        return None
    top = min(block.level for block in headings)
    return next(block.title for block in headings if block.level == top)


def unreadable(message: str, *, reason: str, media_type: str) -> ValidationFailed:
    """The error for a file that cannot be indexed: `reason` is `damaged`, `encrypted`,
    `empty` or `unsupported`."""
    return ValidationFailed(message, details={"reason": reason, "media_type": media_type})
