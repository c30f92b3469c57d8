"""The extraction on the real tau2 retail policy and tools, without any model: the procedures
customers come for, the identity check they rely on, the standing rules, and a spec that lints
clean with provenance on every part."""

from __future__ import annotations

import pytest

from deputy.builder.extract import Extraction
from deputy.builder.outline import outline_document
from deputy.domain.spec import AgentSpec, Procedure, Provenance, lint_errors, lint_spec
from deputy.domain.spec.flow import build_flow, must_facts
from deputy.knowledge.document import squash
from deputy.runtime.guided_flow import prerequisite
from deputy.runtime.outcomes import prerequisite_procedures
from tests.unit.builder_extract_setup import (
    calls,
    domain_tools,
    extract_from,
    procedure,
    retail_policy,
    spec_of,
)

TOOLS = domain_tools("retail")
SOURCE = retail_policy()


@pytest.fixture(scope="module")
def extraction() -> Extraction:
    return extract_from(outline_document(SOURCE), TOOLS)


@pytest.fixture(scope="module")
def spec(extraction: Extraction) -> AgentSpec:
    return spec_of(extraction, TOOLS)


def _exact(provenance: Provenance | None) -> None:
    """Provenance pointing at the policy quotes its span exactly; steps drawn from a tool (an
    ask for a required parameter, a lookup) point at the tool's description."""
    assert provenance is not None and provenance.quote
    assert provenance.source in {"mat_policy", "mat_tools"}
    if provenance.source == "mat_policy":
        assert provenance.start is not None and provenance.end is not None
        text = SOURCE.document.text[provenance.start : provenance.end]
        assert squash(text)[:2000] == provenance.quote
        assert provenance.span == SOURCE.document.locate(provenance.start, provenance.end).label


@pytest.mark.parametrize(
    ("procedure_id", "tool"),
    [
        ("cancel_pending_order", "cancel_order"),
        ("modify_pending_order", "modify_order"),
        ("modify_payment", "modify_order"),
        ("modify_items", "modify_order"),
        ("return_delivered_order", "return_order"),
        ("exchange_delivered_order", "exchange_order"),
        ("modify_default_user_address", "update_user_address"),
        ("verify_identity", "authenticate_user"),
        ("transfer_to_human", "transfer_to_human_agents"),
    ],
)
def test_each_customer_request_has_a_procedure_with_its_tool(
    extraction: Extraction, procedure_id: str, tool: str
) -> None:
    found = procedure(extraction, procedure_id)
    assert tool in calls(found)
    assert procedure_id in extraction.tool_uses[tool]


def test_background_sections_are_knowledge_not_procedures(extraction: Extraction) -> None:
    assert [s.title for s in extraction.knowledge] == ["Domain basic", "User", "Product", "Order"]
    titles = {p.title for p in extraction.procedures}
    assert not titles & {"Domain basic", "User", "Product", "Order", "Generic action rules"}
    assert len(extraction.procedures) == 9


def test_cancel_checks_the_pending_status_and_takes_one_of_two_reasons(
    extraction: Extraction,
) -> None:
    cancel = procedure(extraction, "cancel_pending_order")
    kinds = [(step.kind, step.tool or step.slot or step.exit or "") for step in cancel.steps]
    assert kinds == [
        ("ask", "order_id"),
        ("call_tool", "get_order_details"),
        ("check", ""),
        ("end", "refused_not_pending"),
        ("ask", "reason"),
        ("confirm", ""),
        ("call_tool", "cancel_order"),
        ("end", "completed"),
        ("end", "declined"),
    ]
    check = cancel.steps[2]
    assert check.condition is not None and "'pending'" in check.condition
    assert "{order_id}" in check.condition
    assert check.then == "ask_reason"
    reason = next(slot for slot in cancel.slots if slot.id == "reason")
    assert (reason.type, reason.values) == ("enum", ("no longer needed", "ordered by mistake"))
    exits = {e.id: e.outcome for e in cancel.exits}
    assert exits == {
        "refused_not_pending": "resolved",
        "declined": "resolved",
        "completed": "resolved",
    }
    assert cancel.steps[6].arguments == {"order_id": "{order_id}", "reason": "{reason}"}
    assert "refunded" in cancel.steps[7].text


def test_sub_sections_inherit_the_parents_precondition(extraction: Extraction) -> None:
    for procedure_id in ("modify_payment", "modify_items", "modify_pending_order"):
        found = procedure(extraction, procedure_id)
        checks = [s for s in found.steps if s.kind == "check"]
        assert checks and "'pending'" in (checks[0].condition or "")
        assert found.steps[0].slot == "order_id"
    items = procedure(extraction, "modify_items")
    confirm = next(s for s in items.steps if s.kind == "confirm")
    assert "you have provided all the items you want to modify" in confirm.text
    payment = procedure(extraction, "modify_payment")
    assert "payment_method" in {slot.id for slot in payment.slots}


def _confirmed_before_every_write(found: Procedure, writes: set[str]) -> bool:
    flow = build_flow(found)

    def transfer(step, edge, facts):  # type: ignore[no-untyped-def]
        if edge.confirmed:
            return frozenset({"confirmed"})
        return frozenset() if step.kind == "call_tool" and step.tool in writes else facts

    facts = must_facts(flow, frozenset(), transfer)
    return all(
        "confirmed" in facts.get(step.id, frozenset({"confirmed"}))
        for step in found.steps
        if step.kind == "call_tool" and step.tool in writes
    )


def test_a_confirmation_precedes_every_write_and_irreversible_call(extraction: Extraction) -> None:
    writes = {t.name for t in TOOLS if t.effect != "read" and t.name != "transfer_to_human_agents"}
    assert {"cancel_order", "return_order", "update_user_address"} <= writes
    for found in extraction.procedures:
        assert _confirmed_before_every_write(found, writes), found.id


def test_the_identity_check_is_a_prerequisite_of_the_others(
    extraction: Extraction, spec: AgentSpec
) -> None:
    identity = procedure(extraction, "verify_identity")
    calls_made = [s for s in identity.steps if s.kind == "call_tool"]
    assert [(s.tool, s.arguments, s.save_as) for s in calls_made] == [
        ("authenticate_user", {"email": "{email}"}, "user_id"),
        ("authenticate_user", {"name": "{name}", "zip_code": "{zip_code}"}, "user_id"),
    ]
    assert next(s for s in identity.slots if s.id == "email").type == "email"
    cancel = procedure(extraction, "cancel_pending_order")
    assert any(s.id == "user_id" and s.source == "context" for s in cancel.slots)
    required = prerequisite(spec, cancel, {})
    assert required is not None and required.id == "verify_identity"
    assert prerequisite(spec, cancel, {"user_id": "sara_doe_496"}) is None
    assert prerequisite_procedures(spec) == frozenset({"verify_identity"})
    assert "beginning of every conversation" in identity.when or "start" in identity.when


def test_standing_rules_are_global_policies(extraction: Extraction) -> None:
    by_text = {p.text: p for p in extraction.policies}
    for fragment in (
        "obtain explicit user confirmation (yes)",
        "You can only help one user per conversation",
        "You should not make up any information",
        "You should deny user requests that are against this policy.",
        "transfer the user to a human agent if and only if",
        "you have to authenticate the user identity",
    ):
        policy = next(p for text, p in by_text.items() if fragment in text)
        assert policy.applies_to == (), fragment
    scoped = next(p for p in extraction.policies if p.text == "Other reasons are not acceptable.")
    assert scoped.applies_to == ("cancel_pending_order",)
    assert [(x.tool, x.argument, x.one_of) for x in scoped.limits] == [
        ("cancel_order", "reason", ("no longer needed", "ordered by mistake"))
    ]
    once = next(p for p in extraction.policies if p.text.startswith("Exchange or modify order"))
    assert set(once.applies_to) == {
        "modify_pending_order",
        "modify_payment",
        "modify_items",
        "exchange_delivered_order",
    }
    (rule,) = extraction.escalation_rules
    assert rule.when == "The request cannot be handled within the scope of your actions."
    ids = [p.id for p in extraction.policies] + [r.id for r in extraction.escalation_rules]
    assert len(ids) == len(set(ids))


def test_every_procedure_step_and_policy_has_exact_provenance(extraction: Extraction) -> None:
    for found in extraction.procedures:
        _exact(found.provenance)
        for step in found.steps:
            _exact(step.provenance)
    for policy in extraction.policies:
        _exact(policy.provenance)
    for rule in extraction.escalation_rules:
        _exact(rule.provenance)


def test_the_assembled_spec_lints_without_errors(spec: AgentSpec) -> None:
    findings = lint_spec(spec)
    assert lint_errors(findings) == []
    assert [f.code for f in findings if f.severity == "warning"] == []


def test_every_item_is_covered_or_says_why_not(extraction: Extraction) -> None:
    sections = outline_document(SOURCE)
    spans = {(c.span, c.quote) for c in extraction.coverage}
    for section in sections:
        if section.title in {"Domain basic", "User", "Product", "Order"}:
            assert (section.anchor.label, section.anchor.quote[:400]) in spans
            continue
        for entry in section.items:
            assert (entry.anchor.label, entry.anchor.quote[:400]) in spans, entry.text
    ignored = [c for c in extraction.coverage if c.status == "ignored"]
    assert all(c.reason for c in ignored)
    assert len(ignored) <= 5
    address = next(c for c in extraction.coverage if "default user address" in c.quote)
    assert address.rules == ("procedures[modify_default_user_address]",)
    transfer = next(c for c in extraction.coverage if c.quote.startswith("To transfer"))
    assert "procedures[transfer_to_human]" in transfer.rules
    assert not extraction.questions


def test_progress_is_told_per_section() -> None:
    from deputy.builder.asker import Asker
    from deputy.builder.extract import extract
    from tests.unit.builder_extract_setup import run

    told: list[tuple[str, int, int]] = []
    sections = outline_document(SOURCE)
    run(
        extract(
            sections,
            TOOLS,
            asker=Asker(None),
            goal="Retail support",
            progress=lambda stage, done, total: told.append((stage, done, total)),
        )
    )
    assert told == [("extract", done, len(sections)) for done in range(len(sections) + 1)]
