"""Parsing each format into text, blocks and locators, and refusing what cannot be read."""

from __future__ import annotations

import io
import zipfile

import pytest

from deputy.domain.errors import UnsupportedMediaType, ValidationFailed
from deputy.knowledge import Locator, ParsedDocument, parse_document
from deputy.knowledge.parse import decode_text
from tests.knowledge_files import empty_docx, encrypt_pdf, make_docx, make_pdf

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

MARKDOWN = """\
---
owner: support
---
# Refund policy

Refunds go to the **original** payment method.
They take 5 to 7 business days.

## Gift cards

A gift card refund is possible when:

- the card is active
  and not expired
- the balance covers it
  1. nested step

| Method | Delay |
|--------|-------|
| Card   | 5 days |

```
## not a heading
```

Exchanges
---------

* * *
Last words.
"""


def kinds(document: ParsedDocument) -> list[tuple[str, int, str]]:
    return [(b.kind, b.level, document.block_text(b)) for b in document.blocks]


def test_markdown_blocks_keep_source_offsets_and_lines() -> None:
    document = parse_document(MARKDOWN.encode(), "text/markdown")
    assert document.text == MARKDOWN
    assert document.title == "Refund policy"
    assert kinds(document) == [
        ("heading", 1, "# Refund policy"),
        (
            "paragraph",
            0,
            "Refunds go to the **original** payment method.\nThey take 5 to 7 business days.",
        ),
        ("heading", 2, "## Gift cards"),
        ("paragraph", 0, "A gift card refund is possible when:"),
        ("list_item", 1, "- the card is active\n  and not expired"),
        ("list_item", 1, "- the balance covers it"),
        ("list_item", 2, "1. nested step"),
        ("table", 0, "| Method | Delay |\n|--------|-------|\n| Card   | 5 days |"),
        ("code", 0, "```\n## not a heading\n```"),
        ("heading", 2, "Exchanges\n---------"),
        ("paragraph", 0, "Last words."),
    ]
    headings = [b.title for b in document.blocks if b.kind == "heading"]
    assert headings == ["Refund policy", "Gift cards", "Exchanges"]
    first_item = document.blocks[4]
    assert first_item.locator == Locator("lines", 13, 14)
    start = MARKDOWN.index("They take")
    assert document.locate(start, start + 10).label == "line 7"
    assert document.locate(0, len(MARKDOWN)).label == f"lines 1-{MARKDOWN.count(chr(10))}"


def test_plain_text_has_paragraphs_and_items_but_no_headings() -> None:
    text = "# not a heading\n\nFirst paragraph\ncontinues.\n\n- item one\n- item two\n"
    document = parse_document(text.encode(), "text/plain")
    assert [b.kind for b in document.blocks] == ["paragraph", "paragraph", "list_item", "list_item"]
    assert document.title is None
    assert document.blocks[1].locator.label == "lines 3-4"


def test_text_decoding_handles_bom_legacy_encodings_and_line_endings() -> None:
    assert decode_text(b"\xef\xbb\xbfhello\r\nworld\rend") == "hello\nworld\nend"
    assert decode_text("café".encode("cp1252")) == "café"
    assert decode_text("żółw".encode("utf-16")) == "żółw"
    assert decode_text(b"a\x00b") == "ab"


HTML = b"""<!doctype html>
<html><head><title>Help centre</title><style>p {color: red}</style></head>
<body>
<nav><a href="/">Home</a> | <a href="/x">Menu</a></nav>
<script>var secret = "do not index";</script>
<h1>Returns</h1>
<p>You can return items within
<b>30&nbsp;days</b> of delivery.</p>
<p>To start a return:</p>
<ol><li>Open your order</li><li>Choose <em>Return</em><ul><li>print the label</li></ul></li></ol>
<h2>Fees</h2>
<table><tr><th>Item</th><th>Fee</th></tr><tr><td>Shoes</td><td>$5</td></tr></table>
<pre>code  block
  kept</pre>
</body></html>"""


def test_html_drops_furniture_and_keeps_structure() -> None:
    document = parse_document(HTML, "text/html")
    assert document.title == "Help centre"
    assert "secret" not in document.text
    assert "Menu" not in document.text
    assert "color" not in document.text
    assert kinds(document) == [
        ("heading", 1, "Returns"),
        ("paragraph", 0, "You can return items within 30 days of delivery."),
        ("paragraph", 0, "To start a return:"),
        ("list_item", 1, "1. Open your order"),
        ("list_item", 1, "2. Choose Return"),
        ("list_item", 2, "- print the label"),
        ("heading", 2, "Fees"),
        ("table", 0, "Item | Fee"),
        ("table", 0, "Shoes | $5"),
        ("code", 0, "code  block\n  kept"),
    ]
    paragraph = document.blocks[1]
    assert paragraph.locator == Locator("lines", 7, 8)  # the source lines of the <p>
    assert document.text.count("\n\n") >= 6


def test_html_in_a_legacy_charset_is_decoded_from_its_meta_tag() -> None:
    page = '<meta charset="iso-8859-1"><p>Remboursé en 5 jours</p>'.encode("latin-1")
    assert parse_document(page, "text/html").text == "Remboursé en 5 jours"


def test_pdf_headings_from_font_sizes_lists_and_pages() -> None:
    data = make_pdf(
        [
            [
                (20, "Refund policy"),
                (11, "Refunds are paid to the original payment method"),
                (11, "within five business days."),
                (14, "Gift cards"),
                (11, "A gift card refund is possible when:"),
                (11, "- the card is active"),
                (11, "- the balance covers it"),
            ],
            [(11, "Exchanges are free of charge.")],
        ],
        title="Policy v2",
    )
    document = parse_document(data, "application/pdf")
    assert document.title == "Policy v2"
    assert kinds(document) == [
        ("heading", 1, "Refund policy"),
        (
            "paragraph",
            0,
            "Refunds are paid to the original payment method within five business days.",
        ),
        ("heading", 2, "Gift cards"),
        ("paragraph", 0, "A gift card refund is possible when:"),
        ("list_item", 1, "- the card is active"),
        ("list_item", 1, "- the balance covers it"),
        ("paragraph", 0, "Exchanges are free of charge."),
    ]
    assert [b.locator.label for b in document.blocks] == ["page 1"] * 6 + ["page 2"]
    assert document.locate(0, len(document.text)).label == "pages 1-2"


def test_pdf_encrypted_with_a_user_password_is_refused_but_owner_only_is_read() -> None:
    plain = make_pdf([[(11, "Confidential refund rules.")]])
    with pytest.raises(ValidationFailed) as caught:
        parse_document(encrypt_pdf(plain, user_password="s3cret"), "application/pdf")
    assert caught.value.details["reason"] == "encrypted"
    assert "password" in caught.value.message
    readable = parse_document(encrypt_pdf(plain, user_password=""), "application/pdf")
    assert readable.text == "Confidential refund rules."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n%garbage that is not a pdf", "damaged"),
        (make_pdf([[(11, "")], [(11, "")]]), "empty"),
    ],
)
def test_pdf_damaged_or_without_text_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_document(data, "application/pdf")
    assert caught.value.details["reason"] == reason


def test_docx_headings_lists_tables_and_paragraph_locators() -> None:
    document = parse_document(make_docx(), DOCX)
    assert document.title == "Refunds handbook"
    assert kinds(document) == [
        ("heading", 1, "Refunds"),
        ("paragraph", 0, "Refunds go back to the original payment method within 5 days."),
        ("heading", 2, "Gift cards"),
        ("paragraph", 0, "A gift card refund is possible when:"),
        ("list_item", 1, "- the card is not expired"),
        ("list_item", 1, "- the balance covers the difference"),
        ("table", 0, "Method | Delay"),
        ("table", 0, "Gift card | Immediate"),
    ]
    assert [b.locator.start for b in document.blocks] == [1, 2, 3, 4, 5, 6, 7, 7]
    assert document.blocks[6].locator.label == "paragraph 7"


def test_docx_damaged_or_empty_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<not-closed")
    for data, reason in ((buffer.getvalue(), "damaged"), (b"PK\x03\x04 truncated", "damaged")):
        with pytest.raises(ValidationFailed) as caught:
            parse_document(data, DOCX)
        assert caught.value.details["reason"] == reason
    with pytest.raises(ValidationFailed) as caught:
        parse_document(empty_docx(), DOCX)
    assert caught.value.details["reason"] == "empty"


def test_types_without_text_and_empty_files_are_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_document(b"RIFF....WAVE", "audio/wav")
    with pytest.raises(ValidationFailed) as caught:
        parse_document(b"  \n\n ", "text/markdown")
    assert caught.value.details["reason"] == "empty"


def test_other_text_types_are_read_as_plain_text() -> None:
    document = parse_document(b'{"refund": "5 days"}', "application/json; charset=utf-8")
    assert document.text == '{"refund": "5 days"}'
    assert document.media_type == "application/json"
