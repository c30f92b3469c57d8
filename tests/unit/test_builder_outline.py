"""Document outlines: sections from headings, items from sentences, list items and table rows,
each anchored to the exact span it came from."""

from __future__ import annotations

import io

import docx

from deputy.builder.outline import item_kind, outline_document
from deputy.builder.sources import OutlineSection, SourceDocument
from deputy.knowledge.document import squash
from tests.knowledge_files import make_docx, make_pdf
from tests.unit.builder_extract_setup import document, retail_policy, telecom_sop


def _section(sections: tuple[OutlineSection, ...], title: str) -> OutlineSection:
    return next(section for section in sections if section.title == title)


def _assert_anchors_exact(source: SourceDocument, sections: tuple[OutlineSection, ...]) -> None:
    text = source.document.text
    for section in sections:
        anchors = [section.anchor, *(entry.anchor for entry in section.items)]
        for anchor in anchors:
            assert anchor.kind == "document"
            assert anchor.material == source.material
            assert anchor.start is not None and anchor.end is not None
            assert anchor.quote == squash(text[anchor.start : anchor.end])
            assert anchor.label == source.document.locate(anchor.start, anchor.end).label
            assert text[anchor.start : anchor.end] == text[anchor.start : anchor.end].strip()


def test_retail_policy_sections_nest_under_their_headings() -> None:
    source = retail_policy()
    sections = outline_document(source)
    titles = [section.title for section in sections]
    assert titles == [
        "Retail agent policy",
        "Domain basic",
        "User",
        "Product",
        "Order",
        "Generic action rules",
        "Cancel pending order",
        "Modify pending order",
        "Modify payment",
        "Modify items",
        "Return delivered order",
        "Exchange delivered order",
    ]
    payment = _section(sections, "Modify payment")
    assert payment.path == ("Retail agent policy", "Modify pending order")
    assert payment.level == 3
    assert _section(sections, "User").path == ("Retail agent policy", "Domain basic")
    _assert_anchors_exact(source, sections)


def test_a_section_anchor_covers_its_own_text_only() -> None:
    sections = outline_document(retail_policy())
    parent = _section(sections, "Modify pending order")
    child = _section(sections, "Modify payment")
    assert parent.anchor.label == "lines 94-98"
    assert parent.anchor.end is not None and child.anchor.start is not None
    assert parent.anchor.end < child.anchor.start
    assert parent.intro.startswith("An order can only be modified if its status is 'pending'")


def test_items_are_sentences_and_list_items_without_markup() -> None:
    sections = outline_document(retail_policy())
    top = _section(sections, "Retail agent policy")
    listed = [entry for entry in top.items if item_kind(entry) == "list_item"]
    assert [entry.text for entry in listed][:3] == [
        "cancel or modify pending orders",
        "return or exchange delivered orders",
        "modify their default user address",
    ]
    assert listed[0].anchor.quote == "**cancel or modify pending orders**"
    cancel = _section(sections, "Cancel pending order")
    assert [entry.text[:40] for entry in cancel.items] == [
        "An order can only be cancelled if its st",
        "The user needs to confirm the order id a",
        "Other reasons are not acceptable.",
        "After user confirmation, the order statu",
    ]
    assert cancel.items[0].hint == "rule"


def test_sentences_keep_abbreviations_quotes_and_back_references_together() -> None:
    top = _section(outline_document(retail_policy()), "Retail agent policy")
    texts = [entry.text for entry in top.items]
    assert any(t.endswith("e.g. help the user look up order id.") for t in texts)
    transfer = next(t for t in texts if t.startswith("To transfer"))
    assert transfer.endswith(
        "'YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.' to the user."
    )
    identity = next(t for t in texts if t.startswith("At the beginning of the conversation"))
    assert identity.endswith("This has to be done even when the user already provides the user id.")


def test_table_rows_are_items_with_named_cells() -> None:
    source = telecom_sop()
    sections = outline_document(source)
    plans = _section(sections, "Plans and prices")
    assert [entry.details for entry in plans.items] == [
        ("Plan: Basic", "Monthly price: $20", "Data: 5 GB"),
        ("Plan: Unlimited", "Monthly price: $60", "Data: Unlimited"),
    ]
    assert all(item_kind(entry) == "table_row" for entry in plans.items)
    assert plans.items[0].text == "Plan: Basic; Monthly price: $20; Data: 5 GB"
    steps = _section(sections, "Suspend a line").items
    assert [entry.hint for entry in steps] == ["step"] * 5
    assert steps[0].text == "Ask the customer for the line id."
    _assert_anchors_exact(source, sections)


def test_a_document_without_headings_is_one_section_named_after_the_file() -> None:
    text = b"Refunds are only possible within 30 days.\n\n- Never refund gift cards.\n"
    source = document(text, "refund-rules.txt", "text/plain")
    (section,) = outline_document(source)
    assert section.title == "Refund rules"
    assert [entry.text for entry in section.items] == [
        "Refunds are only possible within 30 days.",
        "Never refund gift cards.",
    ]
    assert section.intro == "Refunds are only possible within 30 days."
    _assert_anchors_exact(source, (section,))


def test_text_before_the_first_heading_gets_its_own_section() -> None:
    source = document(
        b"Read this first.\n\n# Returns\n\nReturns are free.\n", "guide.md", "text/markdown"
    )
    first, returns = outline_document(source)
    assert (first.title, returns.title) == ("Guide", "Returns")
    assert [entry.text for entry in first.items] == ["Read this first."]
    assert [entry.text for entry in returns.items] == ["Returns are free."]


def test_docx_layout_gives_sections_lists_and_table_rows() -> None:
    source = document(
        make_docx(),
        "refunds.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    sections = outline_document(source)
    assert [section.title for section in sections] == ["Refunds", "Gift cards"]
    gift = sections[1]
    assert gift.path == ("Refunds",)
    assert [entry.text for entry in gift.items] == [
        "A gift card refund is possible when:",
        "the card is not expired",
        "the balance covers the difference",
        "Method: Gift card; Delay: Immediate",
    ]
    assert item_kind(gift.items[1]) == "list_item"
    assert item_kind(gift.items[3]) == "table_row"
    _assert_anchors_exact(source, sections)


def test_docx_numbered_steps_are_steps() -> None:
    made = docx.Document()
    made.add_heading("Reset a password", level=1)
    made.add_paragraph("Ask the customer for the account email.", style="List Number")
    made.add_paragraph("Send the reset link.", style="List Number")
    buffer = io.BytesIO()
    made.save(buffer)
    media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    source = document(buffer.getvalue(), "reset.docx", media)
    (section,) = outline_document(source)
    assert section.title == "Reset a password"
    assert [entry.text for entry in section.items] == [
        "Ask the customer for the account email.",
        "Send the reset link.",
    ]
    assert {entry.hint for entry in section.items} == {"step"}
    assert section.items[0].anchor.label == "paragraph 2"


def test_pdf_headings_by_font_size_make_sections() -> None:
    data = make_pdf(
        [
            [
                (20, "Cancel an order"),
                (11, "An order can only be cancelled if it has not shipped."),
                (11, ""),
                (20, "Refunds"),
                (11, "Never refund more than the order total."),
            ]
        ]
    )
    source = document(data, "sop.pdf", "application/pdf")
    sections = outline_document(source)
    assert [section.title for section in sections] == ["Cancel an order", "Refunds"]
    assert sections[0].items[0].text == "An order can only be cancelled if it has not shipped."
    assert sections[1].items[0].anchor.label == "page 1"
    _assert_anchors_exact(source, sections)
