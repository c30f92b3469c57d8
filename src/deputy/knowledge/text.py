"""Language-neutral text helpers shared by chunking and BM25: word counting, tokenisation and
sentence boundaries.

Tokens are runs of letters, digits and combining marks (so Hindi or Arabic words with vowel
signs stay whole), lower-cased with Unicode case folding after NFKC normalisation; accents are
folded on Latin letters only ("reembolsó" matches "reembolso"). Scripts written without spaces
(Chinese, Japanese kana and kanji, Korean syllables) become overlapping character bigrams, the
usual dictionary-free indexing for them. Thai, Lao, Khmer and Burmese, which also lack spaces
but are not split here, index whole runs: retrieval in them leans on the vectors.
"""

from __future__ import annotations

import re
import unicodedata

_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u0900-\u0963\u0966-\u0dff\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u1ab0-\u1aff\u1dc0-\u1dff"
    "\u20d0-\u20ff\ufe20-\ufe2f"
)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"

_WORD = re.compile(rf"(?:[^\W_]|[{_MARKS}])+")
_CJK_RUN = re.compile(f"[{_CJK}]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
# after . ! ? or an ellipsis (closing quotes and brackets included) and whitespace, or after
# the ideographic full stop, exclamation and question marks
_SENTENCE_END = re.compile(
    "(?<=[.!?\u2026])[\"'\u201d\u2019)\\]]*\\s+|(?<=[\u3002\uff01\uff1f])\\s*"
)


def word_count(text: str) -> int:
    """Size of a text in words; each Chinese, Japanese or Korean character counts as one."""
    words = _WORD.findall(text)
    cjk = len(_CJK_CHAR.findall(text))
    if not cjk:
        return len(words)
    return cjk + sum(1 for word in words if not _CJK_RUN.fullmatch(word))


def _fold(token: str) -> str:
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFKD", token)
    kept: list[str] = []
    base_is_latin = False
    for char in decomposed:
        if unicodedata.combining(char):
            if base_is_latin:
                continue
        else:
            base_is_latin = char < "\u0250"
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def tokenize(text: str) -> list[str]:
    """Search tokens of `text`, in order, for indexing and for queries alike."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    tokens: list[str] = []
    for word in _WORD.findall(normalized):
        if not _CJK_CHAR.search(word):
            tokens.append(_fold(word))
            continue
        position = 0
        for run in _CJK_RUN.finditer(word):
            if run.start() > position:
                tokens.append(_fold(word[position : run.start()]))
            chars = run.group()
            if len(chars) == 1:
                tokens.append(chars)
            else:
                tokens.extend(chars[i : i + 2] for i in range(len(chars) - 1))
            position = run.end()
        if position < len(word):
            tokens.append(_fold(word[position:]))
    return tokens


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of `text[start:end]` as absolute `(start, end)` spans that cover the range
    without gaps; each ends after its punctuation and the whitespace that follows it."""
    spans: list[tuple[int, int]] = []
    position = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if match.end() > position and match.end() < end:
            spans.append((position, match.end()))
            position = match.end()
    if position < end:
        spans.append((position, end))
    return spans


def word_spans(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """`text[start:end]` cut into spans of at most `size` words (for a sentence too long to
    be one piece); spans cover the range without gaps and break after whitespace."""
    spans: list[tuple[int, int]] = []
    position = start
    count = 0
    for match in _WORD.finditer(text, start, end):
        weight = word_count(match.group())
        if count and count + weight > size:
            spans.append((position, match.start()))
            position, count = match.start(), 0
        count += weight
        # a run of CJK characters longer than `size` is cut inside the run
        while count > size:
            cut = match.start() + (match.end() - match.start()) - (count - size)
            cut = max(cut, position + 1)
            spans.append((position, cut))
            position = cut
            count = word_count(text[position : match.end()])
    if position < end:
        spans.append((position, end))
    return spans
