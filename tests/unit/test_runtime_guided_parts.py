"""The parts of guided mode that need no conversation: template rendering, reading slot values
without a model, validation and grounding of the model's values, and the condition rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import JsonValue

from deputy.domain.spec import Slot
from deputy.runtime.guided_conditions import decide_plainly
from deputy.runtime.guided_flow import call_after, prerequisite
from deputy.runtime.guided_slots import SlotShape, grounded, read_plainly, validate, value_schema
from deputy.runtime.guided_templates import fields, render, render_arguments
from deputy.tools.results import ToolCallResult
from tests.unit.test_runtime_guided_support import RETAIL

VALUES: dict[str, JsonValue] = {
    "order_id": "#W1234567",
    "order": {"status": "pending", "items": [{"item_id": "111"}, {"item_id": "222"}]},
    "item_ids": ["111", "222"],
    "count": 2,
    "note": "use {order_id} and {{x}}",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Order {order_id} is {order[status]}.", "Order #W1234567 is pending."),
        ("First item {order[items][0][item_id]}, {order.status}", "First item 111, pending"),
        ("Items: {item_ids}; count {count}", "Items: 111, 222; count 2"),
        ("Missing {nothing} and {order[nothing]}", "Missing (unknown) and (unknown)"),
        ("Literal {{braces}} and a lone { or }", "Literal {braces} and a lone { or }"),
        ("Note: {note}", "Note: use {order_id} and {{x}}"),  # a value is never rendered again
        ("Odd {0} {} {order_id!r:>5}", "Odd {0} {} #W1234567"),
    ],
)
def test_templates_render_slot_values_without_str_format(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_arguments_keep_json_types_for_lone_placeholders() -> None:
    arguments: dict[str, JsonValue] = {
        "order_id": "{order_id}",
        "item_ids": " {item_ids} ",
        "count": "{count}",
        "text": "order {order_id}",
        "nested": {"list": ["{count}", "x"], "missing": "{nothing}"},
        "fixed": 5,
    }
    assert render_arguments(arguments, VALUES) == {
        "order_id": "#W1234567",
        "item_ids": ["111", "222"],
        "count": 2,
        "text": "order #W1234567",
        "nested": {"list": [2, "x"], "missing": None},
        "fixed": 5,
    }
    assert fields("Is {a} in {b[c]} or {{d}} {a}?") == ["a", "b"]


def shape(is_list: bool = False, **slot: Any) -> SlotShape:
    return SlotShape(Slot.model_validate({"id": "x", **slot}), is_list)


REASON = shape(type="enum", values=["no longer needed", "ordered by mistake"])
ITEMS = SlotShape(Slot(id="item_ids"), True)
PAYMENT = SlotShape(Slot(id="payment_method_id"))


@pytest.mark.parametrize(
    ("the_shape", "text", "expected"),
    [
        (shape(type="email"), "mail me at Ava.M+1@example.co.uk please", "Ava.M+1@example.co.uk"),
        (shape(pattern=r"^#W[0-9]{7}$"), "orders #W1234567 and more", "#W1234567"),
        (shape(pattern=r"^#W[0-9]{7}$"), "orders #W1234567 and #W7654321", None),
        (shape(pattern=r"^[0-9]{5}$"), "order #W1234567, zip 80279.", "80279"),
        (
            shape(type="enum", values=["no longer needed", "ordered by mistake"]),
            "I ordered it by mistake",
            "ordered by mistake",
        ),
        (
            shape(type="enum", values=["no longer needed", "ordered by mistake"]),
            "it's broken",
            None,
        ),
        (
            SlotShape(Slot(id="item_ids"), True),
            "items 6777246137, 4579334072 of #W1234567",
            ["6777246137", "4579334072"],
        ),
        (
            SlotShape(Slot(id="payment_method_id")),
            "use gift_card_8168843 please",
            "gift_card_8168843",
        ),
        (
            SlotShape(Slot(id="item_ids"), True),
            "I'm ava.moore6020@example.com (see x.com/a1234)",
            None,
        ),
        (shape(type="date"), "on 2024-02-30 or 2024-05-01", "2024-05-01"),
        (shape(type="integer"), "I want 3.", 3),
        (shape(type="boolean"), "yes please", True),
        (shape(), "Anything at all", None),
        (shape(pattern="(unclosed"), "anything", None),
    ],
)
def test_values_read_without_the_model(
    the_shape: SlotShape, text: str, expected: JsonValue
) -> None:
    taken = {"#W1234567"} if the_shape.is_list else set()
    assert read_plainly(the_shape, text, taken, answering=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yusuf", "Yusuf"),
        ("My last name is Garcia.", "Garcia"),
        ("It's Kovacs!", "Kovacs"),
        ("ok", None),
        ("Why?", None),
        ("Yusuf Rossi, 19122", None),
        ("19122", None),
        ("Rossi", None),  # already the value of another slot
    ],
)
def test_a_one_word_answer_to_a_text_question_is_the_value(text: str, expected: str | None) -> None:
    assert read_plainly(shape(), text, {"Rossi"}, answering=True) == expected
    assert read_plainly(shape(), text, set(), answering=False) is None


def test_values_that_are_not_asked_for_are_not_guessed_from_numbers_or_yes() -> None:
    assert read_plainly(shape(type="integer"), "order 2 of 3", set(), answering=True) is None
    assert read_plainly(shape(type="integer"), "I want 3", set(), answering=False) is None
    assert read_plainly(shape(type="boolean"), "yes", set(), answering=False) is None


def test_model_values_are_validated_against_the_slot() -> None:
    order = shape(pattern=r"^#W[0-9]{7}$")
    assert validate(order, " #W1234567 ") == "#W1234567"
    assert validate(order, "W12") is None
    assert validate(shape(type="enum", values=["A b"]), "a B") == "A b"
    assert validate(shape(type="integer"), 4.0) == 4
    assert validate(shape(type="integer"), True) is None
    assert validate(shape(type="email"), "not an email") is None
    ids = ITEMS
    assert validate(ids, "6777246137 and 4579334072") == ["6777246137", "4579334072"]
    assert validate(ids, ["the red one"]) is None
    assert validate(PAYMENT, "ava.moore6020@example.com") is None
    assert validate(PAYMENT, "credit_card_4420174") == "credit_card_4420174"
    assert validate(SlotShape(Slot(id="names"), True), "Ann, Bob and Cy") == ["Ann", "Bob", "Cy"]
    assert value_schema(order)["anyOf"][0]["pattern"] == r"^#W[0-9]{7}$"
    assert value_schema(shape(pattern="(unclosed"))["anyOf"][0].get("pattern") is None
    assert value_schema(shape(type="enum", values=["a", "a"]))["enum"] == ["a", None]


def test_model_values_must_be_said_by_the_customer() -> None:
    name = SlotShape(Slot(id="first_name"))
    assert grounded(name, "Yusuf", "it's yusuf", strict=True)
    assert not grounded(name, "John", "I want to cancel", strict=True)
    assert grounded(name, "Yusuf Rossi", "My name is Yusuf", strict=False)
    assert not grounded(name, "John", "My name is Yusuf", strict=False)
    order = shape(pattern=r"^#W[0-9]{7}$")
    assert grounded(order, "#W1234567", "order W1234567", strict=True)
    assert not grounded(order, "#W0000000", "order W1234567", strict=True)
    reason = shape(type="enum", values=["no longer needed"])
    assert grounded(reason, "no longer needed", "I don't need it any longer", strict=True)
    assert not grounded(shape(type="boolean"), True, "yes", strict=True)


ORDER: dict[str, JsonValue] = {
    "order_id": "#W1",
    "user_id": "ava",
    "status": "pending",
    "items": [{"status": "x"}],
}
BELONGS = "Does order {order_id} belong to user {user_id}, and is its status exactly 'pending'?"


def decided(
    condition: str,
    data: dict[str, JsonValue],
    values: dict[str, JsonValue] | None = None,
    previous: ToolCallResult | None = None,
) -> bool | None:
    shapes = {"email": SlotShape(Slot(id="email", type="email")), "zip": SlotShape(Slot(id="zip"))}
    return decide_plainly(
        condition, data=data, values=values or data, shapes=shapes, previous=previous
    )


def test_conditions_the_rules_decide() -> None:
    mine: dict[str, JsonValue] = {"order_id": "#W1", "user_id": "ava", "order": ORDER}
    assert decided(BELONGS, mine) is True
    assert decided(BELONGS, {**mine, "user_id": "bob"}) is False
    assert decided(BELONGS, {**mine, "order": {**ORDER, "status": "delivered"}}) is False
    assert decided("Did the customer give an email address?", {"email": "a@b.co"}) is True
    assert decided("Did the customer give an email address?", {"email": None}) is False
    found = ToolCallResult("find", "succeeded", output="ava")
    assert decided("Was an account found?", {}, previous=found) is True
    assert decided("Was an account found?", {}, previous=None) is None


def test_conditions_left_to_the_model() -> None:
    mine: dict[str, JsonValue] = {"order_id": "#W1", "user_id": "ava", "order": ORDER}
    assert decided("Is the status 'pending' or 'processed'?", mine) is None
    assert decided("Is the status not 'pending'?", mine) is None
    assert decided("Is each new item of the same product?", mine) is None
    # A slot value cannot smuggle in a quoted value: the rules read the template only.
    sneaky: dict[str, JsonValue] = {"note": "status 'pending'", "order": {"status": "open"}}
    assert decided("Does {note} hold?", sneaky) is None


def test_prerequisites_and_the_call_a_confirmation_is_for() -> None:
    cancel = RETAIL.procedure("cancel_pending_order")
    assert cancel is not None
    producer = prerequisite(RETAIL, cancel, {})
    assert producer is not None and producer.id == "authenticate_user"
    assert prerequisite(RETAIL, cancel, {"user_id": "ava"}) is None
    confirm = cancel.step("confirm_cancel")
    assert confirm is not None
    call = call_after(cancel, confirm)
    assert call is not None and call.tool == "cancel_pending_order"
