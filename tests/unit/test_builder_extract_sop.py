"""The same extraction on other businesses and layouts: a telecom SOP in Markdown (numbered
steps, tables, a revision history), a bank SOP in DOCX and a PDF, with nothing retail-specific."""

from __future__ import annotations

import io
from typing import Any

import docx
import pytest

from deputy.builder.extract import Extraction
from deputy.builder.outline import outline_document
from deputy.builder.sources import Anchor, ToolDescription
from deputy.domain.spec import lint_errors, lint_spec
from tests.knowledge_files import make_pdf
from tests.unit.builder_extract_setup import (
    calls,
    document,
    domain_tools,
    extract_document,
    procedure,
    spec_of,
    telecom_sop,
)

TELECOM = domain_tools("telecom")


@pytest.fixture(scope="module")
def telecom() -> Extraction:
    return extract_document(telecom_sop(), TELECOM)


def test_numbered_steps_keep_their_order_with_what_they_need_before_them(
    telecom: Extraction,
) -> None:
    suspend = procedure(telecom, "suspend_line")
    shape = [(s.kind, s.tool or s.slot or s.exit or "") for s in suspend.steps]
    assert shape == [
        ("ask", "line_id"),
        ("call_tool", "get_line_details"),
        ("check", ""),
        ("end", "refused_not_line_active"),
        ("ask", "reason"),
        ("confirm", ""),
        ("call_tool", "suspend_line"),
        ("say", ""),
        ("end", "completed"),
        ("end", "declined"),
    ]
    assert suspend.steps[2].condition == "For line {line_id}: is the line active?"
    assert suspend.steps[3].text == "I'm sorry, I can't do that: the line must be active."
    reason = next(slot for slot in suspend.slots if slot.id == "reason")
    assert reason.values == ("lost device", "travel", "other")
    assert suspend.steps[7].text == "The line can be reactivated at any time."
    assert [s.provenance.span for s in suspend.steps[:1] if s.provenance] == ["line 22"]


def test_a_conditional_transfer_goes_to_the_named_team(telecom: Extraction) -> None:
    pay = procedure(telecom, "pay_overdue_bill")
    assert "process_payment" in calls(pay)
    check = next(s for s in pay.steps if s.id == "needs_human")
    assert check.condition == "Is it true that the customer disputes the bill?"
    assert check.then == "call_transfer_to_human_agents"
    hand_off = next(s for s in pay.steps if s.kind == "handoff")
    assert hand_off.queue == "billing"
    assert {e.id: e.outcome for e in pay.exits}["escalated"] == "escalated"
    assert [s.id for s in pay.steps if s.kind == "ask"] == ["ask_amount", "ask_payment_method_id"]
    assert next(s for s in pay.slots if s.id == "amount").type == "number"


def test_rules_tables_and_boilerplate(telecom: Extraction) -> None:
    limit = next(p for p in telecom.policies if p.text == "Payments over $500 need a supervisor.")
    assert limit.applies_to == ("pay_overdue_bill",)
    assert [(x.tool, x.argument, x.max) for x in limit.limits] == [
        ("process_payment", "amount", 500)
    ]
    assert [r.when for r in telecom.escalation_rules] == ["Payments over $500."]
    assert [s.title for s in telecom.knowledge] == ["Plans and prices"]
    history = next(c for c in telecom.coverage if c.quote.startswith("## Revision history"))
    assert history.status == "ignored" and history.reason
    assert {p.id for p in telecom.procedures} == {
        "verify_identity",
        "suspend_line",
        "pay_overdue_bill",
    }


def test_the_identity_check_searches_by_either_detail(telecom: Extraction) -> None:
    identity = procedure(telecom, "verify_identity")
    found = [(s.tool, s.arguments, s.save_as) for s in identity.steps if s.kind == "call_tool"]
    assert found == [
        ("search_customer", {"query": "{phone_number}"}, "customer_id"),
        ("search_customer", {"query": "{email}"}, "customer_id"),
    ]
    assert next(s for s in identity.slots if s.id == "phone_number").type == "phone"
    pay = procedure(telecom, "pay_overdue_bill")
    assert pay.slots[0].id == "customer_id" and pay.slots[0].source == "context"


def test_the_telecom_spec_lints_clean(telecom: Extraction) -> None:
    findings = lint_spec(spec_of(telecom, TELECOM))
    assert lint_errors(findings) == []
    assert not telecom.questions


def _bank_tool(
    name: str, description: str, effect: Any, properties: dict[str, Any]
) -> ToolDescription:
    return ToolDescription(
        name=name,
        description=description,
        effect=effect,
        effect_reason="test",
        parameters={"type": "object", "properties": properties, "required": list(properties)},
        anchor=Anchor(kind="tool_description", label=name, quote=description),
    )


BANK_TOOLS = (
    _bank_tool(
        "block_card", "Block a payment card.", "irreversible", {"card_number": {"type": "string"}}
    ),
    _bank_tool(
        "issue_refund",
        "Refund a card payment.",
        "irreversible",
        {"card_number": {"type": "string"}, "amount": {"type": "number"}},
    ),
)


def _bank_docx() -> bytes:
    made = docx.Document()
    made.add_heading("Card services", level=1)
    made.add_heading("Block a lost card", level=2)
    for text in (
        "Ask the customer for the card number.",
        "Make sure that the card is not already blocked.",
        "Block the card.",
        "Tell the customer that a new card arrives in 5 business days.",
    ):
        made.add_paragraph(text, style="List Number")
    made.add_heading("Refund limits", level=2)
    table = made.add_table(rows=3, cols=2)
    for row, (amount, who) in enumerate(
        (("Refund amount", "Who approves"), ("Up to $100", "The agent"), ("Over $100", "A manager"))
    ):
        table.cell(row, 0).text = amount
        table.cell(row, 1).text = who
    buffer = io.BytesIO()
    made.save(buffer)
    return buffer.getvalue()


def test_a_docx_sop_with_numbered_steps_and_a_limits_table() -> None:
    media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    source = document(_bank_docx(), "cards.docx", media, "mat_cards")
    extraction = extract_document(source, BANK_TOOLS)
    block = procedure(extraction, "block_lost_card")
    assert [(s.kind, s.tool or s.slot or "") for s in block.steps[:5]] == [
        ("ask", "card_number"),
        ("check", ""),
        ("end", ""),
        ("confirm", ""),
        ("call_tool", "block_card"),
    ]
    assert block.steps[1].condition == "Is the card not already blocked?"
    spans = {
        (s.provenance.kind, (s.provenance.span or "").split(" ")[0].rstrip("s"))
        for s in block.steps
        if s.provenance is not None
    }
    assert spans == {("document", "paragraph"), ("tool_description", "block_card")}
    (rule,) = extraction.escalation_rules
    assert rule.when.startswith("Refund amount: Over $100")
    limited = next(p for p in extraction.policies if p.limits)
    assert [(x.tool, x.argument, x.max) for x in limited.limits] == [
        ("issue_refund", "amount", 100)
    ]
    assert lint_errors(lint_spec(spec_of(extraction, BANK_TOOLS))) == []


def test_camel_case_parameters_become_snake_case_slots() -> None:
    """APIs name parameters as they like (`cardNumber`); slot ids are snake_case and the call
    passes each parameter its slot."""
    tools = (
        _bank_tool(
            "block_card",
            "Block a payment card.",
            "irreversible",
            {"cardNumber": {"type": "string"}, "block-reason": {"type": "string"}},
        ),
    )
    media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    extraction = extract_document(document(_bank_docx(), "cards.docx", media, "mat_cards"), tools)
    block = procedure(extraction, "block_lost_card")
    call = next(s for s in block.steps if s.tool == "block_card")
    assert call.arguments == {"cardNumber": "{card_number}", "block-reason": "{block_reason}"}
    assert {"card_number", "block_reason"} <= {slot.id for slot in block.slots}
    assert lint_errors(lint_spec(spec_of(extraction, tools))) == []


def test_a_pdf_procedure_with_the_retail_tools() -> None:
    data = make_pdf(
        [
            [
                (20, "Cancel an order"),
                (11, "An order can only be cancelled if its status is 'pending'."),
                (11, ""),
                (11, "The customer needs to provide the order id and the reason."),
            ]
        ]
    )
    source = document(data, "cancel.pdf", "application/pdf", "mat_pdf")
    tools = domain_tools("retail")
    extraction = extract_document(source, tools)
    (cancel,) = extraction.procedures
    assert cancel.id == "cancel_order"
    assert calls(cancel) == ["get_order_details", "cancel_order"]
    assert cancel.provenance is not None and cancel.provenance.span == "page 1"
    assert lint_errors(lint_spec(spec_of(extraction, tools))) == []


def test_a_procedure_without_a_tool_asks_which_tool() -> None:
    source = document(
        b"# Reset a password\n\n"
        b"1. Ask the customer for the account email.\n2. Send the reset link.\n",
        "reset.md",
        "text/markdown",
    )
    extraction = extract_document(source, domain_tools("retail"))
    (reset,) = extraction.procedures
    assert [s.kind for s in reset.steps] == ["ask", "end"]
    (question,) = extraction.questions
    assert question.kind == "unmatched_tool"
    assert question.refs[0] == "procedures[reset_password]"
    assert outline_document(source)[0].title == "Reset a password"
