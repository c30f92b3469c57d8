"""The builder benchmark's scoring rules on tiny hand-made inputs: perfect, empty and partial
answers, so a number in benchmarks/results/builder.json means what its rule says."""

from __future__ import annotations

import pytest
from benchmarks.builder_scoring import (
    collapse,
    edit_distance,
    flowchart_truth,
    graph_scores,
    map_action,
    match_titles,
    mean,
    sequence_scores,
)

VOCABULARY = (
    "pull-up-account",
    "notify-team",
    "membership",
    "search-boots",
    "search-faq",
    "select-faq",
    "enter-details",
    "log-out-in",
)
FLOWCHART = {
    "task": "book_ride",
    "replies": {
        "hello": "Hello, how can I help?",
        "ask_name": "May I have your name?",
        "ask_where": "Where to?",
        "query": "Query",
        "found": "I found a ride for {price:d} credits. Book it?",
        "nothing": "Nothing found.",
        "query_success": "Succeeded",
        "query_failure": "Failed",
        "bye": "Goodbye!",
    },
    "graph": {
        "hello": "ask_name",
        "ask_name": "ask_where",
        "ask_where": "query",
        "query_success": "found",
        "query_failure": "nothing",
        "found": "bye",
    },
}


def test_titles_match_one_to_one_exactly_then_by_containment() -> None:
    names = ["Initiate Refund", "Shipping Status", "Manage Shipping", "Boots FAQ"]
    perfect = match_titles(
        ["initiate refund", "Shipping status", "Manage  Shipping", "Boots FAQ"], names
    )
    assert perfect.precision == perfect.recall == 1.0
    partial = match_titles(["Initiate Refund", "Status of shipping", "Boots", "Order Issue"], names)
    assert set(partial.pairs) == {("Initiate Refund", "Initiate Refund"), ("Boots", "Boots FAQ")}
    assert partial.precision == 0.5 and partial.recall == 0.5
    contained = match_titles(["Shipping Status Question"], ["Status", "Shipping Status"])
    assert contained.pairs == (("Shipping Status Question", "Shipping Status"),)  # longest first
    assert contained.recall == 0.5  # one procedure takes one subflow
    empty = match_titles([], names)
    assert empty.pairs == () and empty.precision is None and empty.recall == 0.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pull up Account", "pull-up-account"),
        ("pull_up_account", "pull-up-account"),
        ("Notify Internal Team", "notify-team"),
        ("Membership Privileges", "membership"),
        ("Boots", "search-boots"),
        ("Enter Detail", "enter-details"),
        ("Log Out/In", "log-out-in"),
        ("Select Answer", "select-faq"),
        ("N/A", None),
        ("End Conversation", None),
    ],
)
def test_button_and_tool_names_map_to_the_kb_vocabulary(name: str, expected: str | None) -> None:
    assert map_action(name, VOCABULARY) == expected


def test_sequences_score_perfect_empty_and_partial() -> None:
    gold = ["pull-up-account", "validate-purchase", "offer-refund"]
    assert sequence_scores(gold, gold) == {
        "precision": 1.0,
        "recall": 1.0,
        "exact": True,
        "edit_distance": 0.0,
    }
    assert sequence_scores([], gold) == {
        "precision": None,
        "recall": 0.0,
        "exact": False,
        "edit_distance": 1.0,
    }
    swapped = sequence_scores(["validate-purchase", "pull-up-account", "notify-team"], gold)
    assert swapped["precision"] == swapped["recall"] == round(2 / 3, 4)
    assert swapped["edit_distance"] == 1.0  # two substitutions and one more: 3 of 3
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert collapse(["a", None, "a", "b", "b", "a"]) == ["a", "b", "a"]
    assert mean([1.0, None, 0.0]) == 0.5 and mean([None]) is None


def test_the_flowchart_truth_leaves_outcomes_out() -> None:
    truth = flowchart_truth(FLOWCHART)
    assert truth.outcomes == {"query_success", "query_failure"}
    assert truth.nodes == {"hello", "ask_name", "ask_where", "query", "found", "nothing", "bye"}
    assert truth.edges == {
        ("hello", "ask_name"),
        ("ask_name", "ask_where"),
        ("ask_where", "query"),
        ("found", "bye"),
    }
    assert truth.main_path == ("hello", "ask_name", "ask_where", "query")
    assert ("hello", "query") in truth.ordered and ("query", "hello") not in truth.ordered
    assert ("query", "found") not in truth.ordered  # joined only through an outcome


def test_graph_scores_perfect_empty_and_partial() -> None:
    truth = flowchart_truth(FLOWCHART)
    order = ["hello", "ask_name", "ask_where", "query", "found", "bye", "nothing"]
    perfect = graph_scores(set(truth.nodes), set(truth.edges), order, truth)
    assert perfect["node_precision"] == perfect["node_recall"] == 1.0
    assert perfect["edge_precision"] == perfect["edge_recall"] == 1.0
    assert perfect["order_concordance"] == 1.0 and perfect["main_path_lcs"] == 1.0
    empty = graph_scores(set(), set(), [], truth)
    assert empty["node_recall"] == 0.0 and empty["node_precision"] is None
    assert empty["order_concordance"] is None and empty["main_path_lcs"] == 0.0
    partial = graph_scores(
        {"ask_name", "query", "hello", "goodbye_2"},
        {("ask_name", "query"), ("hello", "ask_name")},
        ["ask_name", "hello", "query", "goodbye_2"],
        truth,
    )
    assert partial["node_precision"] == 0.75 and partial["node_recall"] == round(3 / 7, 4)
    assert partial["edge_precision"] == 0.5 and partial["edge_recall"] == 0.25
    assert partial["ordered_pairs_judged"] == 3  # hello<ask_name, hello<query, ask_name<query
    assert partial["order_concordance"] == round(2 / 3, 4)
    assert partial["main_path_lcs"] == 0.5  # ask_name, query of the four
