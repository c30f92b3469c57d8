"""Standing rules from single sentences: policies, escalation rules and enforced limits."""

from __future__ import annotations

from typing import Any

from deputy.builder.rules import rule_from_sentence, unique_id
from deputy.builder.sources import Anchor, MaterialRef, ToolDescription

PROCEDURES = (
    "verify_identity",
    "issue_refund",
    "cancel_pending_order",
    "modify_pending_order",
    "exchange_delivered_order",
    "modify_default_user_address",
)
USES = {
    "issue_refund": ("refund_order",),
    "cancel_pending_order": ("cancel_order",),
    "modify_pending_order": ("modify_order",),
    "exchange_delivered_order": ("exchange_order",),
    "modify_default_user_address": ("update_user_address",),
}


def _tool(name: str, description: str, properties: dict[str, Any]) -> ToolDescription:
    return ToolDescription(
        name=name,
        description=description,
        effect="irreversible",
        effect_reason="test",
        parameters={"type": "object", "properties": properties, "required": list(properties)},
        anchor=Anchor(kind="tool_description", label=name, quote=description),
    )


TOOLS = (
    _tool(
        "refund_order",
        "Refund an order to the original payment method.",
        {"order_id": {"type": "string"}, "amount": {"type": "number"}},
    ),
    _tool("cancel_order", "Cancel a pending order.", {"order_id": {"type": "string"}}),
)


def _constraint(text: str) -> Anchor:
    return Anchor(kind="constraint", label="constraint 1", quote=text)


def _document(text: str) -> Anchor:
    material = MaterialRef("mat_1", "policy.md", "text/markdown")
    return Anchor(kind="document", label="line 3", quote=text, material=material, start=10, end=40)


def _read(text: str, anchor: Anchor | None = None, **kw: Any) -> Any:
    return rule_from_sentence(
        text,
        anchor or _constraint(text),
        tools=TOOLS,
        procedure_ids=PROCEDURES,
        procedure_tools=USES,
        **kw,
    )


def test_an_amount_needing_a_manager_limits_the_refund_tool_and_escalates() -> None:
    draft = _read("Refunds over $200 need a manager.")
    (policy,) = draft.policies
    (limit,) = policy.limits
    assert (limit.tool, limit.argument, limit.max, limit.min) == (
        "refund_order",
        "amount",
        200,
        None,
    )
    assert policy.applies_to == ("issue_refund",)
    (rule,) = draft.escalation_rules
    assert rule.when == "Refunds over $200."
    assert rule.provenance is not None and rule.provenance.kind == "constraint"


def test_short_imperatives_from_change_requests_work() -> None:
    draft = _read("refunds over $100 need a manager")
    assert draft.policies[0].limits[0].max == 100
    assert draft.escalation_rules[0].when == "Refunds over $100."
    never = _read("never issue refunds over $200 without a human")
    assert never.policies[0].id.startswith("never_issue_refunds")
    assert never.policies[0].limits[0].max == 200
    assert never.escalation_rules[0].when == "Issue refunds over $200."
    polite = _read("Be polite.")
    assert polite.policies[0].text == "Be polite." and not polite.escalation_rules


def test_lower_bounds_and_currencies() -> None:
    draft = _read("Refunds must be at least 10 EUR.")
    assert (draft.policies[0].limits[0].min, draft.policies[0].limits[0].max) == (10, None)
    assert not draft.escalation_rules


def test_a_named_team_becomes_the_escalation_queue() -> None:
    draft = _read("Do not refund more than 50 EUR without approval from the billing team.")
    assert draft.policies[0].limits[0].max == 50
    assert draft.escalation_rules[0].queue == "billing"


def test_descriptions_state_no_rule_but_constraints_always_do() -> None:
    text = "Each order has a status."
    assert _read(text, _document(text)) is None
    assert _read(text) is not None
    assert _read("What is the refund window?", _document("x")) is None


def test_scope_follows_the_subject_of_the_sentence() -> None:
    once = _read("Exchange or modify order tools can only be called once per order.")
    assert once.policies[0].applies_to == ("modify_pending_order", "exchange_delivered_order")
    agent = _read("You can only help one user per conversation, and must deny other requests.")
    assert agent.policies[0].applies_to == ()
    conduct = _read("You should not make up any information or procedures.")
    assert conduct.policies[0].applies_to == ()
    assert conduct.policies[0].id.startswith("never_")
    scoped = _read("Other reasons are not acceptable.", scope=("cancel_pending_order",))
    assert scoped.policies[0].applies_to == ("cancel_pending_order",)


def test_transfer_conditions_become_escalation_rules() -> None:
    text = (
        "You should transfer the user to a human agent if and only if the request cannot be "
        "handled within the scope of your actions."
    )
    draft = _read(text, _document(text))
    (rule,) = draft.escalation_rules
    assert rule.when == "The request cannot be handled within the scope of your actions."
    assert draft.policies[0].applies_to == ()
    assert draft.policies[0].provenance is not None
    assert draft.policies[0].provenance.source == "mat_1"


def test_without_an_amount_tool_the_escalation_stays() -> None:
    draft = rule_from_sentence(
        "Refunds over $200 need a manager.",
        _constraint("x"),
        tools=TOOLS[1:],
        procedure_ids=(),
    )
    assert draft is not None and not draft.policies[0].limits
    assert draft.escalation_rules[0].when == "Refunds over $200."


def test_ids_are_snake_case_and_unique() -> None:
    draft = _read("Refunds over $200 need a manager.", taken={"refunds_over_200_need"})
    assert draft.policies[0].id == "refunds_over_200_need_2"
    assert draft.escalation_rules[0].id != draft.policies[0].id
    assert unique_id("rule", {"rule", "rule_2"}) == "rule_3"
    assert len(unique_id("x" * 70, set())) == 64
