"""Parsed documents to retrieval chunks that follow the document's structure.

Rules, in order of precedence:

1. A chunk never crosses a heading of level `boundary_level` or higher (default: `#` and `##`):
   each such heading starts a section, and sections are chunked independently. A section
   holding nothing but headings makes no chunk (its titles are in the paths below it).
2. A heading stays with what follows it, and a list stays with its lead-in: the sentence just
   before the list is glued to the first item. A chunk may grow past `target_words` (up to
   `max_words`) to keep such a unit, or a whole list, together.
3. Otherwise a chunk ends at the latest good break within `target_words`: before a subheading,
   then between blocks, then between list items, table rows or sentences. Only a sentence
   longer than `max_words` is cut between words.
4. A chunk cut inside a section starts with up to `overlap_words` from the end of the previous
   one (whole sentences, items or rows), except across a subheading.

Every chunk is `document.text[start:end]` (whitespace-trimmed) with the heading path it sits
under, its locator, and, when it starts inside a list whose lead-in it does not contain, that
lead-in as `context`. Sizes are in words (`deputy.knowledge.text.word_count`). The output is a
pure function of the document and the options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from deputy.knowledge.document import Block, Locator, ParsedDocument, squash
from deputy.knowledge.text import sentence_spans, word_count, word_spans

_DELIMITER = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
GLUE, WEAK, BLOCK, SUBSECTION, END = 0, 1, 2, 3, 4
"""How good a place is to end a chunk, from never-unless-forced to the end of a section."""


@dataclass(frozen=True, slots=True)
class ChunkingOptions:
    target_words: int = 160
    max_words: int = 280
    overlap_words: int = 30
    boundary_level: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.overlap_words < self.target_words <= self.max_words:
            raise ValueError("need 0 <= overlap_words < target_words <= max_words")
        if not 1 <= self.boundary_level <= 6:
            raise ValueError("boundary_level must be between 1 and 6")

    @property
    def min_words(self) -> int:
        return max(1, self.target_words * 2 // 5)

    @property
    def signature(self) -> str:
        """Changes whenever chunks would: part of a document's index signature."""
        return (
            f"chunks-v1/{self.target_words}/{self.max_words}/{self.overlap_words}/"
            f"{self.boundary_level}"
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    start: int
    end: int
    text: str
    heading_path: tuple[str, ...]
    locator: Locator
    context: str = ""

    @property
    def indexed_text(self) -> str:
        return indexed_text(self.heading_path, self.context, self.text)


def indexed_text(heading_path: Sequence[str], context: str, text: str) -> str:
    """What is embedded and searched for a chunk: its heading path (`A > B`) and context on
    their own lines, then its text."""
    parts = [" > ".join(heading_path)] if heading_path else []
    if context:
        parts.append(context)
    parts.append(text)
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int
    end: int
    words: int
    path: tuple[str, ...]
    is_heading: bool
    is_item: bool
    break_before: int
    lead_in: str


def chunk_document(document: ParsedDocument, options: ChunkingOptions | None = None) -> list[Chunk]:
    options = options or ChunkingOptions()
    chunks: list[Chunk] = []
    sections = _sections(document, options)
    # A section of headings only (a title right above the first `##`) is not worth a chunk:
    # its titles lead the heading paths of the sections below it.
    substantive = [section for section in sections if not all(p.is_heading for p in section)]
    for section in substantive or sections:
        for start, end in _cut(section, options):
            chunks.append(_make_chunk(document, section[start:end], len(chunks)))
    return chunks


def _sections(document: ParsedDocument, options: ChunkingOptions) -> list[list[_Piece]]:
    sections: list[list[_Piece]] = []
    current: list[_Piece] = []
    path: list[tuple[int, str]] = []
    previous: Block | None = None
    lead_in = ""
    table_row = 0
    for block in document.blocks:
        same_table = previous is not None and previous.kind == block.kind == "table"
        table_row = table_row + 1 if same_table else 0
        if block.kind == "heading":
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, block.title or squash(document.block_text(block))))
            if block.level <= options.boundary_level and current:
                sections.append(current)
                current, previous = [], None
        if block.kind == "list_item":
            if previous is not None and previous.kind == "paragraph" and current:
                last = current[-1]
                lead_in = squash(document.text[last.start : last.end])
            elif previous is None or previous.kind != "list_item":
                lead_in = ""
        else:
            lead_in = ""
        first_break = _break_between(previous, block, table_row) if current else GLUE
        titles = tuple(title for _, title in path)
        current.extend(_pieces(document, block, titles, first_break, lead_in, options))
        previous = block
    if current:
        sections.append(current)
    return sections


def _break_between(previous: Block | None, block: Block, table_row: int) -> int:
    if previous is None or previous.kind == "heading":
        return GLUE
    if block.kind == "heading":
        return SUBSECTION
    if block.kind == "list_item" and previous.kind == "paragraph":
        return GLUE  # the lead-in stays with the list
    if block.kind == previous.kind and block.kind in ("list_item", "table"):
        return GLUE if table_row == 1 else WEAK  # a table's header row stays with its first row
    return BLOCK


def _pieces(
    document: ParsedDocument,
    block: Block,
    path: tuple[str, ...],
    first_break: int,
    lead_in: str,
    options: ChunkingOptions,
) -> list[_Piece]:
    text = document.text
    if block.kind in ("table", "code"):
        spans = _line_spans(text, block.start, block.end)
    elif block.kind == "paragraph":
        spans = sentence_spans(text, block.start, block.end)
    else:
        spans = [(block.start, block.end)]
    sized: list[tuple[int, int]] = []
    for start, end in spans:
        if word_count(text[start:end]) <= options.max_words:
            sized.append((start, end))
        else:
            for sentence in sentence_spans(text, start, end):
                sized.extend(word_spans(text, *sentence, options.max_words))
    pieces: list[_Piece] = []
    for index, (start, end) in enumerate(sized):
        if index == 0:
            strength = first_break
        elif block.kind == "table" and index <= 2 and _is_header(text, sized):
            strength = GLUE  # a Markdown table's header and delimiter rows stay with row one
        else:
            strength = WEAK
        pieces.append(
            _Piece(
                start,
                end,
                word_count(text[start:end]),
                path,
                block.kind == "heading",
                block.kind == "list_item",
                strength,
                lead_in,
            )
        )
    return pieces


def _is_header(text: str, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether the first rows of a table's lines are a pipe table's header and delimiter."""
    return len(spans) > 1 and bool(_DELIMITER.match(text[spans[1][0] : spans[1][1]]))


def _line_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        stop = end if newline == -1 else newline + 1
        if text[position:stop].strip():
            spans.append((position, stop))
        elif spans:
            spans[-1] = (spans[-1][0], stop)
        position = stop
    return spans


def _cut(pieces: Sequence[_Piece], options: ChunkingOptions) -> list[tuple[int, int]]:
    """`(start, end)` piece ranges, one per chunk, in order."""
    totals = [0]
    for piece in pieces:
        totals.append(totals[-1] + piece.words)
    count = len(pieces)
    ranges: list[tuple[int, int]] = []
    start, previous_end = 0, 0
    while True:
        end = _choose_end(pieces, totals, start, max(previous_end, start) + 1, options)
        ranges.append((start, end))
        if end >= count:
            return ranges
        next_start = end
        if pieces[end].break_before < SUBSECTION:
            taken = 0
            while (
                next_start - 1 > start
                and not pieces[next_start - 1].is_heading
                and taken + pieces[next_start - 1].words <= options.overlap_words
                and taken + pieces[next_start - 1].words + pieces[end].words <= options.max_words
            ):
                next_start -= 1
                taken += pieces[next_start].words
        start, previous_end = next_start, end


def _choose_end(
    pieces: Sequence[_Piece],
    totals: Sequence[int],
    start: int,
    min_end: int,
    options: ChunkingOptions,
) -> int:
    count = len(pieces)
    if totals[count] - totals[start] <= options.target_words:
        return count
    fitting: list[tuple[int, int, int]] = []  # (end, words, strength)
    for end in range(min_end, count + 1):
        words = totals[end] - totals[start]
        if words > options.max_words and end > min_end:
            break
        fitting.append((end, words, END if end == count else pieces[end].break_before))
    low, target = options.min_words, options.target_words
    tiers = (
        [e for e, w, s in fitting if s >= BLOCK and low <= w <= target][-1:],
        [e for e, w, s in fitting if s >= BLOCK and w > target][:1],
        [e for e, w, s in fitting if s == WEAK and low <= w <= target][-1:],
        [e for e, w, s in fitting if s >= WEAK and w <= target][-1:],
        [e for e, w, s in fitting if s >= WEAK][:1],
        [e for e, w, _ in fitting if w <= target][-1:],
    )
    for tier in tiers:
        if tier:
            return tier[0]
    return min_end


def _make_chunk(document: ParsedDocument, pieces: Sequence[_Piece], ordinal: int) -> Chunk:
    text = document.text
    start, end = pieces[0].start, pieces[-1].end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    path = pieces[0].path
    for piece in pieces[1:]:
        common = 0
        while common < min(len(path), len(piece.path)) and path[common] == piece.path[common]:
            common += 1
        path = path[:common]
    first = pieces[0]
    context = first.lead_in if first.is_item else ""
    return Chunk(ordinal, start, end, text[start:end], path, document.locate(start, end), context)
