"""Structured guidelines (ABCD guidelines.json, STAR flowcharts) and the recognition of JSON and
YAML files by their shape; every anchor quotes the text found at its labelled path."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from deputy.builder.read import read_material
from deputy.builder.read_common import PATH_SEPARATOR
from deputy.builder.sources import MaterialRef, OutlineSection, ReadResult
from tests.processes import SHARED_DATA

GUIDELINES = SHARED_DATA / "abcd" / "data" / "guidelines.json"
TASKS = SHARED_DATA / "star" / "tasks"
FLOWCHARTS = sorted(TASKS.glob("*/*.json"))
FLOWCHARTS = [path for path in FLOWCHARTS if path.stem == path.parent.name]


def read_json(path: Path) -> ReadResult:
    return read_material(MaterialRef("mat_1", path.name, "application/json"), path.read_bytes())


def read_bytes(name: str, data: bytes, media_type: str = "application/json") -> ReadResult:
    return read_material(MaterialRef("mat_1", name, media_type), data)


def section(result: ReadResult, title: str) -> OutlineSection:
    return next(s for s in result.outlines if s.title == title)


# ---- ABCD guidelines -----------------------------------------------------------------------


def test_every_abcd_subflow_is_a_section_under_its_flow() -> None:
    raw = json.loads(GUIDELINES.read_text())
    result = read_json(GUIDELINES)
    assert result.kind == "guidelines" and not result.problems
    expected = [(flow, name) for flow, body in raw.items() for name in body["subflows"]]
    assert [(s.path[0], s.title) for s in result.outlines] == expected
    assert len(expected) == 55
    assert {s.origin for s in result.outlines} == {"guidelines"}


def test_an_abcd_subflow_lists_its_actions_in_order_then_its_instructions() -> None:
    refund = section(read_json(GUIDELINES), "Initiate Refund")
    assert refund.path == ("Product Defect",)
    assert refund.intro.startswith("refunds and returns\nStart by asking for the refund reason.")
    actions = [item for item in refund.items if item.key.startswith("a")]
    assert [item.action for item in actions] == [
        "Pull up Account",
        "Validate Purchase",
        "Record Reason",
        "Enter Details",
        "Offer Refund",
    ]
    assert [item.key for item in refund.items] == ["a1", "a2", "a3", "a4", "a5", "i1", "i2"]
    validate = actions[1]
    assert validate.hint == "action"
    assert validate.anchor.label == "Product Defect › Initiate Refund › action 2"
    assert validate.anchor.quote == validate.text
    assert validate.details[1] == "Email Address"
    assert [item.hint for item in refund.items[5:]] == ["step", "step"]


def test_abcd_action_types_give_hints_and_missing_buttons_no_action() -> None:
    refund_status = section(read_json(GUIDELINES), "Refund Status")
    communication = next(item for item in refund_status.items if item.hint == "reply")
    assert communication.action is None  # its button is "N/A"
    stain = section(read_json(GUIDELINES), "Return Due to Stain")
    membership = next(item for item in stain.items if item.action == "Membership Privileges")
    assert membership.hint == "rule"
    status = section(read_json(GUIDELINES), "Status Mystery Fee")
    assert status.items[-2].hint == "note"  # "The customer believes an extra charge ..."


# ---- STAR flowcharts -----------------------------------------------------------------------


def edges(graph: Mapping[str, str]) -> set[tuple[str, str]]:
    return set(graph.items())


def rebuilt_graph(outline: OutlineSection) -> set[tuple[str, str]]:
    """The graph a reader rebuilds from the outline: `next` edges from items, outcome edges as
    outcome → target."""
    rebuilt: set[tuple[str, str]] = set()
    for item in outline.items:
        for label, target in item.branches:
            rebuilt.add((item.key if label == "next" else label, target))
    return rebuilt


def test_the_ride_booking_flowchart_reads_in_graph_order_with_its_branches() -> None:
    result = read_json(TASKS / "ride_book" / "ride_book.json")
    assert result.kind == "guidelines"
    (chart,) = result.outlines
    assert chart.title == "Book ride" and chart.origin == "flowchart"
    assert [item.key for item in chart.items] == [
        "hello",
        "ask_name",
        "ride_ask_destination",
        "ride_ask_departure",
        "ride_inform_search_criteria",
        "query_check",
        "ride_ask_confirm_booking",
        "query_book",
        "ride_confirm_booking",
        "anything_else",
        "ride_inform_nothing_found",
        "ride_bye",
        "ride_provide_driver_details",
        "out_of_scope",
    ]
    items = {item.key: item for item in chart.items}
    assert items["query_check"].branches == (
        ("query_success", "ride_ask_confirm_booking"),
        ("query_failure", "ride_inform_nothing_found"),
    )
    assert items["ride_ask_confirm_booking"].branches == (
        ("yes", "query_book"),
        ("no", "ride_inform_search_criteria"),
    )
    assert items["query_check"].hint == "action" and items["query_check"].action == "query_check"
    assert items["ride_ask_destination"].hint == "question"
    assert items["ride_confirm_booking"].hint == "reply"
    assert items["ride_bye"].branches == () and items["ride_bye"].hint == "reply"


def test_the_apartment_search_flowchart_loops_back_on_yes() -> None:
    (chart,) = read_json(TASKS / "apartment_search" / "apartment_search.json").outlines
    items = {item.key: item for item in chart.items}
    assert chart.items[0].key == "hello"
    assert items["query"].hint == "action"
    assert items["apartment_ask_search_more"].branches == (
        ("yes", "apartment_inform_search_criteria"),
        ("no", "goodbye_1"),
    )
    unused = [item.key for item in chart.items if not item.branches]
    assert "apartment_ask_price" in unused and "out_of_scope" in unused


@pytest.mark.parametrize("path", FLOWCHARTS, ids=lambda path: path.stem)
def test_every_star_flowchart_can_be_rebuilt_from_its_outline(path: Path) -> None:
    raw = json.loads(path.read_text())
    (chart,) = read_json(path).outlines
    assert rebuilt_graph(chart) == edges(raw["graph"])
    keys = [item.key for item in chart.items]
    assert len(keys) == len(set(keys))
    assert set(raw["replies"]) - set(keys) <= set(raw["graph"])  # only outcomes are not items


# ---- anchors point to real text ------------------------------------------------------------


def text_at(raw: Any, label: str, origin: str) -> str:
    """The text a structured anchor's label points at in the raw file."""
    parts = label.split(PATH_SEPARATOR)
    if origin == "flowchart":
        if len(parts) == 1:
            return str(raw["task"])
        return str(raw["replies"].get(parts[1], parts[1]))
    subflow = raw[parts[0]]["subflows"][parts[1]]
    if len(parts) == 2:
        return parts[1]
    kind, number = parts[2].split(" ")
    if kind == "action":
        return str(subflow["actions"][int(number) - 1]["text"])
    return str(subflow["instructions"][int(number) - 1])


@pytest.mark.parametrize("path", [GUIDELINES, *FLOWCHARTS], ids=lambda path: path.stem)
def test_every_anchor_quotes_the_text_at_its_path(path: Path) -> None:
    raw = json.loads(path.read_text())
    result = read_json(path)
    anchors = [(s.origin, s.anchor) for s in result.outlines]
    anchors += [(s.origin, item.anchor) for s in result.outlines for item in s.items]
    assert anchors
    for origin, anchor in anchors:
        assert anchor.kind == "document" and anchor.material is not None
        assert anchor.material.name == path.name
        assert anchor.quote == text_at(raw, anchor.label, origin), anchor.label
    for outline in result.outlines:
        for item in outline.items:
            assert item.text == item.anchor.quote


# ---- recognition ---------------------------------------------------------------------------


def test_truncated_json_is_damaged_with_line_and_column() -> None:
    data = GUIDELINES.read_bytes()[:500]
    result = read_bytes("guidelines.json", data)
    assert [p.code for p in result.problems] == ["damaged"]
    assert "line" in result.problems[0].message and "column" in result.problems[0].message


def test_invalid_yaml_is_damaged_with_line_and_column() -> None:
    result = read_bytes("api.yaml", b"openapi: 3.0.0\npaths: [unclosed\n", "application/yaml")
    assert [p.code for p in result.problems] == ["damaged"]
    assert "line 3" in result.problems[0].message


def test_json_of_an_unknown_shape_lists_what_is_accepted() -> None:
    result = read_bytes("inventory.json", json.dumps({"sku": "A1", "stock": 3}).encode())
    assert result.kind is None and [p.code for p in result.problems] == ["unrecognised_json"]
    message = result.problems[0].message
    assert '"inventory.json"' in message
    assert "OpenAPI 3" in message and "flowchart" in message and "conversations" in message


def test_yaml_that_is_not_openapi_or_transcripts_is_unrecognised() -> None:
    result = read_bytes("config.yaml", b"name: shop\nlimits: {refund: 30}\n", "application/yaml")
    assert [p.code for p in result.problems] == ["unrecognised_json"]
    assert "an OpenAPI 3 document or conversations" in result.problems[0].message


def test_swagger_2_asks_for_openapi_3() -> None:
    swagger = {"swagger": "2.0", "info": {"title": "Shop", "version": "1"}, "paths": {}}
    result = read_bytes("shop.json", json.dumps(swagger).encode())
    assert [p.code for p in result.problems] == ["unsupported"]
    assert "Convert it to OpenAPI 3" in result.problems[0].message


def test_a_malformed_flowchart_is_invalid_content() -> None:
    chart = {"task": "x", "replies": {"hello": 3}, "graph": {}}
    result = read_bytes("x.json", json.dumps(chart).encode())
    assert [p.code for p in result.problems] == ["invalid_content"]


def test_a_malformed_subflow_is_left_out_and_the_rest_is_read() -> None:
    raw = {
        "Orders": {
            "description": "order questions",
            "subflows": {
                "Broken": {"actions": "not a list"},
                "Cancel": {"actions": [{"type": "interaction", "button": "Cancel", "text": "Do"}]},
            },
        }
    }
    result = read_bytes("g.json", json.dumps(raw).encode())
    assert [s.title for s in result.outlines] == ["Cancel"]
    assert [p.code for p in result.problems] == ["invalid_content"]
    assert "Orders › Broken" in result.problems[0].message
