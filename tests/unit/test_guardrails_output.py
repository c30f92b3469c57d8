"""Output checks on draft replies: grounding, promises, topics, PII leakage, disclaimers."""

from __future__ import annotations

import pytest

from deputy.guardrails.grounding import Evidence, ToolEvidence, concrete_claims, ungrounded
from deputy.guardrails.output import (
    append_disclaimers,
    check_grounding,
    check_pii_leakage,
    check_promises,
    check_topics,
)
from deputy.guardrails.promises import guarantees, unsupported_actions
from deputy.guardrails.settings import preset_settings, topic_from_text

ORDER = {
    "order_id": "#W2611340",
    "items": [
        {"name": "Water Bottle", "item_id": "6469567736", "price": 47.84},
        {"name": "Office Chair", "item_id": "8426249116", "price": 488.81},
    ],
    "status": "delivered",
    "delivered_on": "2024-05-01",
    "payment_history": [{"amount": 536.65}],
}
EVIDENCE = Evidence(
    passages=("Refunds reach the original payment method in 5 business days.",),
    tool_results=(ToolEvidence("get_order_details", "succeeded", ORDER),),
    customer_messages=("I want to return the bottle from order #W2611340, it leaks.",),
)
STANDARD = preset_settings("standard")
REGULATED = preset_settings("regulated")


def test_claims_are_found_by_kind() -> None:
    reply = (
        "Order #W2611340: $1,299.00 total, 15% off, delivered May 1, 2024, 3 items, "
        "item 6469567736."
    )
    kinds = [(c.kind, c.text) for c in concrete_claims(reply)]
    assert kinds == [
        ("identifier", "#W2611340"),
        ("amount", "$1,299.00"),
        ("percentage", "15%"),
        ("date", "May 1, 2024"),
        ("count", "3 items"),
        ("identifier", "6469567736"),
    ]


def test_grounded_claims_pass_whatever_their_format() -> None:
    reply = (
        "Order #W2611340 was delivered on May 1, 2024. The bottle (item 6469567736) cost "
        "$47.84, the total was $536.65; the refund takes 5 business days."
    )
    assert ungrounded(concrete_claims(reply), EVIDENCE) == ()


def test_sums_and_differences_of_tool_amounts_count_as_grounded() -> None:
    reply = "Together that is $536.65 and the difference is $440.97."
    assert ungrounded(concrete_claims(reply), EVIDENCE) == ()


def test_invented_facts_are_ungrounded() -> None:
    reply = "Your refund of $120.00 for order #W9999999 arrives on 2024-06-30 in 10 business days."
    missing = {(c.kind, c.text) for c in ungrounded(concrete_claims(reply), EVIDENCE)}
    assert missing == {
        ("amount", "$120.00"),
        ("identifier", "#W9999999"),
        ("date", "2024-06-30"),
        ("count", "10 business days"),
    }


def test_grounding_flags_under_standard_and_blocks_under_regulated() -> None:
    reply = "You will get $120.00 back."
    flagged = check_grounding(reply, EVIDENCE, STANDARD)
    assert flagged.verdict == "flag" and "$120.00" in flagged.reason
    assert check_grounding(reply, EVIDENCE, REGULATED).verdict == "block"
    assert check_grounding("You get $47.84 back.", EVIDENCE, REGULATED).verdict == "allow"


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("I have refunded $47.84 to your card.", "unsupported_refund"),
        ("Your refund has been issued.", "unsupported_refund"),
        ("Your order #W2611340 is cancelled.", "unsupported_cancellation"),
        ("I've cancelled it for you.", "unsupported_cancellation"),
        ("I have updated your address.", "unsupported_modification"),
        ("Your item has been exchanged.", "unsupported_exchange"),
    ],
)
def test_claims_of_actions_without_a_succeeded_tool_call_block(reply: str, kind: str) -> None:
    assert [f.kind for f in unsupported_actions(reply, EVIDENCE)] == [kind]
    decision = check_promises(reply, EVIDENCE, STANDARD)
    assert decision.verdict == "block" and "without a succeeded tool call" in decision.reason


def test_a_succeeded_matching_tool_call_supports_the_claim() -> None:
    evidence = Evidence(
        tool_results=(
            ToolEvidence("cancel_pending_order", "succeeded", {"status": "cancelled"}),
            ToolEvidence("return_delivered_order_items", "refused", None),
        )
    )
    assert unsupported_actions("Your order is cancelled.", evidence) == ()
    assert [f.kind for f in unsupported_actions("I have refunded you.", evidence)] == [
        "unsupported_refund"
    ]


@pytest.mark.parametrize(
    "reply",
    [
        "Your order has not been cancelled yet.",
        "I haven't refunded anything.",
        "Once you confirm, your order will be cancelled.",
        "If you confirm, I have cancelled nothing so far.",
    ],
)
def test_negated_or_conditional_phrasings_are_not_claims(reply: str) -> None:
    assert unsupported_actions(reply, EVIDENCE) == ()


def test_guarantees_flag_under_standard_and_block_under_regulated() -> None:
    reply = "I guarantee it will arrive tomorrow."
    assert [f.kind for f in guarantees(reply)] == ["guarantee"]
    assert check_promises(reply, EVIDENCE, STANDARD).verdict == "flag"
    assert check_promises(reply, EVIDENCE, REGULATED).verdict == "block"
    assert guarantees("I can't guarantee the delivery date.") == ()


def test_forbidden_topics_block_and_name_the_topic() -> None:
    decision = check_topics(
        "You should take 400 mg of ibuprofen twice a day.", REGULATED.forbidden_topics
    )
    assert decision.verdict == "block" and decision.details["topic"] == "medication_dosage"
    assert "medication_dosage" in decision.reason
    decision = check_topics("You should invest in index funds.", REGULATED.forbidden_topics)
    assert decision.details["topic"] == "investment_advice"
    custom = (topic_from_text("competitor pricing"),)
    assert check_topics("Our competitor pricing is higher.", custom).verdict == "block"
    assert check_topics("Your order ships tomorrow.", REGULATED.forbidden_topics).verdict == "allow"


def test_pii_the_customer_did_not_give_is_masked_and_their_own_kept() -> None:
    evidence = Evidence(customer_messages=("I'm at yusuf@example.com, phone +1 977 625 2661",))
    reply = (
        "Thanks, yusuf@example.com and (977) 625-2661 are on file. The previous owner was "
        "mia@example.com, card 4111 1111 1111 1111."
    )
    decision, text = check_pii_leakage(reply, evidence, STANDARD)
    assert decision.verdict == "mask"
    assert text == (
        "Thanks, yusuf@example.com and (977) 625-2661 are on file. The previous owner was "
        "[EMAIL], card [CARD]."
    )
    assert decision.details == {"kinds": {"email": 1, "card": 1}, "customer_own_kept": 2}
    assert "mia@example.com" not in decision.model_dump_json()
    _, regulated = check_pii_leakage(reply, evidence, REGULATED)
    assert "[CARD ending 1111]" in regulated


def test_disclaimers_are_appended_once() -> None:
    decision, text = append_disclaimers("Here is the information.", REGULATED)
    assert decision is not None and decision.details == {"appended": 1}
    assert text.endswith(REGULATED.disclaimers[0])
    again, same = append_disclaimers(text, REGULATED)
    assert same == text and again is not None and again.details == {"appended": 0}
    assert append_disclaimers("Hi", STANDARD) == (None, "Hi")
