"""Chunking: spans, heading paths, section boundaries, lists with their lead-in, sizes and
overlap, as examples and as properties of generated Markdown."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deputy.knowledge import Chunk, ChunkingOptions, ParsedDocument, chunk_document, parse_document
from deputy.knowledge.text import sentence_spans, tokenize, word_count, word_spans

SMALL = ChunkingOptions(target_words=40, max_words=60, overlap_words=10, boundary_level=2)


def md(text: str) -> ParsedDocument:
    return parse_document(text.encode(), "text/markdown")


def sentence(n: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(n - 1)) + f" {word}end."


def test_sections_never_mix_and_carry_their_heading_path() -> None:
    text = (
        "# Policy\n\nIntro sentence here.\n\n"
        "## Refunds\n\nRefunds take five days.\n\n### Gift cards\n\nGift cards are instant.\n\n"
        "## Exchanges\n\nExchanges are free.\n"
    )
    chunks = chunk_document(md(text))
    assert [c.heading_path for c in chunks] == [
        ("Policy",),
        ("Policy", "Refunds"),
        ("Policy", "Exchanges"),
    ]
    assert chunks[1].text.startswith("## Refunds") and "Gift cards are instant." in chunks[1].text
    assert chunks[1].locator.label == "lines 5-11"
    assert "Exchanges" not in chunks[1].text
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]


def test_a_list_stays_with_its_lead_in_even_past_the_target_size() -> None:
    lead = sentence(30, "intro") + " These are the rules:"
    items = "\n".join(f"- {sentence(6, f'rule{i}x')}" for i in range(6))
    text = f"## Rules\n\n{lead}\n\n{items}\n\n{sentence(30, 'after')}\n"
    chunks = chunk_document(md(text), SMALL)
    holding = [c for c in chunks if "These are the rules:" in c.text]
    assert len(holding) == 1, chunks
    # the lead-in sentence and the whole list, without the long sentence before the lead-in
    assert holding[0].text.startswith("These are the rules:")
    assert all(f"rule{i}xend." in holding[0].text for i in range(6))
    assert word_count(holding[0].text) > SMALL.target_words - 5


def test_a_long_list_is_split_between_items_with_the_lead_in_as_context() -> None:
    items = "\n".join(f"- {sentence(9, f'item{i}w')}" for i in range(20))
    text = f"## Steps\n\nDo the following:\n\n{items}\n"
    chunks = chunk_document(md(text), SMALL)
    assert len(chunks) > 2
    for chunk in chunks:
        assert word_count(chunk.text) <= SMALL.max_words
        assert chunk.text.startswith(("## Steps", "- ")), chunk.text[:30]
    later = [c for c in chunks if c.text.startswith("- ")]
    assert later and all(c.context == "Do the following:" for c in later)
    assert "Do the following:" in later[0].indexed_text
    assert later[0].indexed_text.startswith("Steps\n")


def test_a_long_paragraph_is_cut_at_sentences_with_overlap() -> None:
    sentences = [sentence(8, f"s{i}w") for i in range(20)]
    text = "## Long\n\n" + " ".join(sentences) + "\n"
    chunks = chunk_document(md(text), SMALL)
    assert len(chunks) >= 3
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "consecutive chunks overlap"
        assert before.end - after.start <= len(" ".join(sentences[:2])) + 1
        assert after.text[0].isalpha() and before.text.endswith(".")


def test_a_sentence_longer_than_the_maximum_is_cut_between_words() -> None:
    text = "## Wall\n\n" + " ".join(f"w{i}" for i in range(200)) + "\n"
    chunks = chunk_document(md(text), SMALL)
    assert all(word_count(c.text) <= SMALL.max_words for c in chunks)
    covered = " ".join(c.text for c in chunks)
    assert all(f"w{i}" in covered.split() for i in range(200))


def test_chinese_text_is_sized_by_characters() -> None:
    text = "## 退款\n\n" + "退款会在五个工作日内退回原支付方式。" * 12 + "\n"
    chunks = chunk_document(md(text), SMALL)
    assert len(chunks) > 2
    assert all(word_count(c.text) <= SMALL.max_words for c in chunks)
    assert all(c.heading_path == ("退款",) for c in chunks)


def test_options_are_validated_and_named() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ChunkingOptions(target_words=10, max_words=5)
    with pytest.raises(ValueError, match="boundary"):
        ChunkingOptions(boundary_level=0)
    assert ChunkingOptions().signature == "chunks-v1/160/280/30/2"


def test_text_helpers() -> None:
    assert word_count("Hello, wörld! 退款") == 4
    text = "One. Two!  Three? Four"
    assert [text[a:b] for a, b in sentence_spans(text, 0, len(text))] == [
        "One. ",
        "Two!  ",
        "Three? ",
        "Four",
    ]
    spans = word_spans("a b c d e", 0, 9, 2)
    assert ["a b c d e"[a:b] for a, b in spans] == ["a b ", "c d ", "e"]
    assert tokenize("Reembolsó RÉSUMÉ transfer_to_human") == [
        "reembolso",
        "resume",
        "transfer",
        "to",
        "human",
    ]
    assert tokenize("退款时间") == ["退款", "款时", "时间"]
    assert tokenize("रिफंड कब") == ["रिफंड", "कब"]  # vowel signs stay inside the word


# -- properties over generated Markdown -----------------------------------------------------

WORDS = st.sampled_from(
    ["refund", "order", "gift", "card", "the", "is", "a", "Rückgabe", "退款", "x1", "días"]
)


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORDS, min_size=1, max_size=40))
    return " ".join(words) + draw(st.sampled_from([".", "!", "?", ":"]))


@st.composite
def blocks(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["h", "p", "p", "list", "table"]))
    if kind == "h":
        return "#" * draw(st.integers(1, 4)) + " " + " ".join(draw(st.lists(WORDS, min_size=1)))
    if kind == "p":
        return " ".join(draw(st.lists(sentences(), min_size=1, max_size=8)))
    if kind == "list":
        items = draw(st.lists(sentences(), min_size=1, max_size=12))
        return "\n".join(f"- {item}" for item in items)
    rows = draw(st.lists(st.lists(WORDS, min_size=2, max_size=2), min_size=1, max_size=6))
    return "| a | b |\n|---|---|\n" + "\n".join(f"| {x} | {y} |" for x, y in rows)


documents = st.lists(blocks(), min_size=1, max_size=25).map(lambda parts: "\n\n".join(parts))
options = st.builds(
    lambda target, extra, overlap, level: ChunkingOptions(
        target_words=target,
        max_words=target + extra,
        overlap_words=min(overlap, target - 1),
        boundary_level=level,
    ),
    st.integers(8, 80),
    st.integers(0, 60),
    st.integers(0, 20),
    st.integers(1, 3),
)


def covered(chunks: list[Chunk], length: int) -> list[bool]:
    marks = [False] * length
    for chunk in chunks:
        for index in range(chunk.start, chunk.end):
            marks[index] = True
    return marks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, options)
def test_chunking_invariants(text: str, chosen: ChunkingOptions) -> None:
    document = md(text)
    chunks = chunk_document(document, chosen)
    assert chunks == chunk_document(document, chosen)  # deterministic
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    marks = covered(chunks, len(text))
    boundaries = [
        b.start for b in document.blocks if b.kind == "heading" and b.level <= chosen.boundary_level
    ]
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip() and chunk.text
        assert word_count(chunk.text) <= chosen.max_words
        assert not any(chunk.start < b < chunk.end for b in boundaries), "crossed a section"
        assert chunk.locator == document.locate(chunk.start, chunk.end)
    paths = {title for chunk in chunks for title in chunk.heading_path}
    for position, block in enumerate(document.blocks):
        if block.kind != "heading":  # every character of every other block is in some chunk
            assert all(marks[i] or text[i].isspace() for i in range(block.start, block.end))
            continue
        # a heading with content under it is in the heading path of that content's chunks
        for later in document.blocks[position + 1 :]:
            if later.kind == "heading" and later.level <= block.level:
                break
            if later.kind != "heading":
                assert block.title in paths or marks[block.start]
                break
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
