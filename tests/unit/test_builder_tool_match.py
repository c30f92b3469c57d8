"""Matching procedure wording to tools: name first, description second, a threshold below which
nothing matches."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deputy.builder.tool_match import WRITES, ToolMatcher, is_handoff_tool, terms
from deputy.domain.spec import EffectTier
from tests.unit.builder_extract_setup import domain_tools

READS: tuple[EffectTier, ...] = ("read",)


@pytest.fixture(scope="module")
def retail() -> ToolMatcher:
    return ToolMatcher(domain_tools("retail"))


def test_terms_fold_inflections_and_synonyms() -> None:
    assert terms("cancellation cancelled cancelling") == ["cancel"] * 3
    assert terms("modification updated changes edit") == ["modify"] * 4
    assert terms("authenticate verifying") == ["verify", "verify"]
    assert terms("update_user_address") == ["modify", "user", "address"]
    assert terms("The customer's orders") == ["user", "order"]


@pytest.mark.parametrize(
    ("text", "tool"),
    [
        ("Cancel pending order", "cancel_order"),
        ("Return delivered order", "return_order"),
        ("Exchange delivered order", "exchange_order"),
        ("Modify payment Modify pending order", "modify_order"),
        ("modify their default user address", "update_user_address"),
        ("transfer the user to a human agent", "transfer_to_human_agents"),
    ],
)
def test_retail_wording_finds_its_tool(retail: ToolMatcher, text: str, tool: str) -> None:
    found = retail.best(text, effects=WRITES)
    assert found is not None and found.tool.name == tool


def test_a_different_action_verb_does_not_match(retail: ToolMatcher) -> None:
    ranked = {match.tool.name: match.score for match in retail.rank("Cancel pending order")}
    assert ranked["cancel_order"] > 0.9
    assert ranked["modify_order"] < 0.5
    assert ranked["exchange_order"] < 0.5


def test_no_tool_below_the_threshold(retail: ToolMatcher) -> None:
    assert retail.best("Reset the customer's password") is None
    assert retail.best("provide information about their own profile, orders, and products") is None


def test_effects_filter_the_candidates(retail: ToolMatcher) -> None:
    assert retail.best("get the order details") is not None
    assert retail.best("get the order details", effects=WRITES) is None


def test_a_tool_named_verbatim_wins(retail: ToolMatcher) -> None:
    named = retail.named("first make a tool call to transfer_to_human_agents, then say so")
    assert named is not None and named.name == "transfer_to_human_agents"
    assert retail.named("transfer to a human") is None
    found = retail.best("call get_user_orders now", effects=READS)
    assert found is not None and found.tool.name == "get_user_orders" and found.score == 1.0


def test_lookup_finds_the_read_tool_fetching_an_entity_by_its_id(retail: ToolMatcher) -> None:
    found = retail.lookup("order", "order_id")
    assert found is not None and found.name == "get_order_details"
    assert retail.lookup("order", "user_id") is None
    assert retail.lookup("invoice", "invoice_id") is None


def test_only_a_transfer_to_a_person_is_a_hand_off(retail: ToolMatcher) -> None:
    handoff = retail.get("transfer_to_human_agents")
    assert handoff is not None and is_handoff_tool(handoff)
    funds = replace(handoff, name="transfer_funds", description="Move money between accounts.")
    assert not is_handoff_tool(funds)
