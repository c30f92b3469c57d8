"""The retail sample platform's toolkit (examples/retail): tau2's rules, errors and arithmetic,
the tools-data.json mapping, the store, and the REST auth modes (in process)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.retail import compat, orders, toolkit
from examples.retail.auth import AuthConfig
from examples.retail.calculator import calculate
from examples.retail.catalog import TAU2_TOOL_NAMES, TOOLS, TOOLS_DATA_NAMES, invoke
from examples.retail.errors import NotFoundError, RetailError
from examples.retail.rest import create_app
from examples.retail.store import RetailStore
from fastapi.testclient import TestClient

from tests.processes import SHARED_DATA

TAU2 = SHARED_DATA / "tau2-bench"
RETAIL = TAU2 / "data" / "tau2" / "domains" / "retail"
EXPECTED = Path(__file__).resolve().parents[2] / "examples" / "retail" / "tau2_expected_states.json"
Record = dict[str, Any]


@pytest.fixture(scope="module")
def shared_store() -> RetailStore:
    return RetailStore(RETAIL / "db.json")


@pytest.fixture
def store(shared_store: RetailStore) -> Iterator[RetailStore]:
    shared_store.reset()
    yield shared_store
    shared_store.reset()


@functools.cache
def initial() -> Record:
    """db.json as the store loads it (tests only read it)."""
    return RetailStore(RETAIL / "db.json").snapshot()


def first(store: RetailStore, predicate: Callable[[Record, Record], bool]) -> Record:
    """The first order (with its user) in the initial database satisfying `predicate`."""
    db = initial()
    for order in db["orders"].values():
        if predicate(order, db["users"][order["user_id"]]):
            return order
    raise AssertionError("no order in db.json fits this test")


def gift_cards(user: Record) -> list[Record]:
    return [m for m in user["payment_methods"].values() if m["source"] == "gift_card"]


def other_variant(store: RetailStore, item: Record, *, available: bool = True) -> Record:
    variants = initial()["products"][item["product_id"]]["variants"].values()
    for variant in variants:
        if variant["item_id"] != item["item_id"] and variant["available"] == available:
            return dict(variant)
    raise AssertionError("no such variant")


def refused(store: RetailStore, message: str, tool: Callable[..., Any], *args: Any) -> None:
    before = store.sha256()
    with pytest.raises(RetailError) as caught:
        tool(store, *args)
    assert caught.value.message == message
    assert store.sha256() == before, "a refused request must not change the database"


# --- store ----------------------------------------------------------------------------------------


def test_store_state_is_tau2s_dumped_shape(store: RetailStore) -> None:
    expected = json.loads(EXPECTED.read_text())["initial_sha256"]
    assert store.sha256() == expected
    order = initial()["orders"]["#W2378156"]
    assert order["cancel_reason"] is None and order["return_items"] is None


def test_store_persists_atomically_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first_run = RetailStore(RETAIL / "db.json", state)
    user = next(iter(first_run.snapshot()["users"]))
    orders.modify_user_address(first_run, user, "1 Main St", "", "Austin", "TX", "USA", "78701")
    assert state.exists() and not list(tmp_path.glob(".state.json.*"))
    second_run = RetailStore(RETAIL / "db.json", state)
    assert second_run.sha256() == first_run.sha256()
    assert toolkit.get_user_details(second_run, user)["address"]["city"] == "Austin"
    second_run.reset()
    assert (
        RetailStore(RETAIL / "db.json", state).sha256() == RetailStore(RETAIL / "db.json").sha256()
    )


def test_returned_records_are_copies(store: RetailStore) -> None:
    order = toolkit.get_order_details(store, "#W2378156")
    order["status"] = "cancelled"
    assert toolkit.get_order_details(store, "#W2378156")["status"] == "delivered"


# --- lookups --------------------------------------------------------------------------------------


def test_finders_are_case_insensitive_and_fail_with_tau2_messages(store: RetailStore) -> None:
    user = initial()["users"]["yusuf_rossi_9620"]
    assert toolkit.find_user_id_by_email(store, user["email"].upper()) == "yusuf_rossi_9620"
    found = toolkit.find_user_id_by_name_zip(store, "YUSUF", "rossi", user["address"]["zip"])
    assert found == "yusuf_rossi_9620"
    for tool, args, message in [
        (toolkit.find_user_id_by_email, ("nobody@example.com",), "User not found"),
        (toolkit.find_user_id_by_name_zip, ("Yusuf", "Rossi", "00000"), "User not found"),
        (toolkit.get_order_details, ("W2378156",), "Order not found"),
        (toolkit.get_product_details, ("5047954489",), "Product not found"),
        (toolkit.get_item_details, ("9523456873",), "Item not found"),
    ]:
        with pytest.raises(NotFoundError, match=f"^{message}$"):
            tool(store, *args)


def test_list_all_product_types_is_sorted_json(store: RetailStore) -> None:
    products = json.loads(toolkit.list_all_product_types(store))
    assert len(products) == 50 and list(products) == sorted(products)


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_refuses_non_pending_orders_and_unknown_reasons(store: RetailStore) -> None:
    delivered = first(store, lambda o, u: o["status"] == "delivered")
    pending = first(store, lambda o, u: o["status"] == "pending")
    refused(
        store,
        "Non-pending order cannot be cancelled",
        orders.cancel_pending_order,
        delivered["order_id"],
        "no longer needed",
    )
    refused(store, "Invalid reason", orders.cancel_pending_order, pending["order_id"], "too late")


def test_cancel_refunds_gift_cards_at_once(store: RetailStore) -> None:
    order = first(
        store,
        lambda o, u: (
            o["status"] == "pending"
            and o["payment_history"][0]["payment_method_id"].startswith("gift_card")
        ),
    )
    payment = order["payment_history"][0]
    card = payment["payment_method_id"]
    balance = initial()["users"][order["user_id"]]["payment_methods"][card]["balance"]
    result = orders.cancel_pending_order(store, order["order_id"], "ordered by mistake")
    assert result["status"] == "cancelled" and result["cancel_reason"] == "ordered by mistake"
    assert result["payment_history"][-1] == {**payment, "transaction_type": "refund"}
    user = toolkit.get_user_details(store, order["user_id"])
    assert user["payment_methods"][card]["balance"] == round(balance + payment["amount"], 2)


# --- modify pending order items ------------------------------------------------------------------


def test_modify_items_rules(store: RetailStore) -> None:
    order = first(store, lambda o, u: o["status"] == "pending")
    item = order["items"][0]
    oid, pay = order["order_id"], order["payment_history"][0]["payment_method_id"]
    modify = orders.modify_pending_order_items
    same = "The new item id should be different from the old item id"
    refused(store, same, modify, oid, [item["item_id"]], [item["item_id"]], pay)
    refused(store, "bogus not found", modify, oid, ["bogus"], ["1"], pay)
    mismatch = "The number of items to be exchanged should match"
    refused(store, mismatch, modify, oid, [item["item_id"]], [], pay)
    refused(store, "Variant not found", modify, oid, [item["item_id"]], ["9523456873"], pay)
    new = other_variant(store, item)["item_id"]
    refused(store, "Payment method not found", modify, oid, [item["item_id"]], [new], "x")


def test_modify_items_refuses_unavailable_items(store: RetailStore) -> None:
    def has_unavailable(order: Record, user: Record) -> bool:
        if order["status"] != "pending":
            return False
        variants = initial()["products"][order["items"][0]["product_id"]]["variants"]
        return any(not v["available"] for v in variants.values())

    order = first(store, has_unavailable)
    item = order["items"][0]
    gone = other_variant(store, item, available=False)["item_id"]
    refused(
        store,
        f"New item {gone} not found or available",
        orders.modify_pending_order_items,
        order["order_id"],
        [item["item_id"]],
        [gone],
        order["payment_history"][0]["payment_method_id"],
    )


def test_modify_items_charges_the_difference_once(store: RetailStore) -> None:
    order = first(store, lambda o, u: o["status"] == "pending" and len(o["items"]) == 1)
    item = order["items"][0]
    new = other_variant(store, item)
    method = order["payment_history"][0]["payment_method_id"]
    result = orders.modify_pending_order_items(
        store, order["order_id"], [item["item_id"]], [new["item_id"]], method
    )
    difference = new["price"] - item["price"]
    assert result["status"] == "pending (item modified)"
    assert result["items"][0] | {"price": 0} == item | {"item_id": new["item_id"], "price": 0} | {
        "options": new["options"]
    }
    assert result["items"][0]["price"] == new["price"]
    assert result["payment_history"][-1] == {
        "transaction_type": "payment" if difference > 0 else "refund",
        "amount": abs(difference),
        "payment_method_id": method,
    }
    refused(
        store,
        "Non-pending order cannot be modified",
        orders.modify_pending_order_items,
        order["order_id"],
        [new["item_id"]],
        [item["item_id"]],
        method,
    )
    # the address can still change: "pending (item modified)" counts as pending for that
    changed = orders.modify_pending_order_address(
        store, order["order_id"], "1 Main St", "", "Austin", "TX", "USA", "78701"
    )
    assert changed["address"]["zip"] == "78701"


def test_modify_items_gift_card_must_cover_the_difference(store: RetailStore) -> None:
    def fits(order: Record, user: Record) -> bool:
        if order["status"] != "pending" or not gift_cards(user):
            return False
        item = order["items"][0]
        variants = initial()["products"][item["product_id"]]["variants"].values()
        card = min(gift_cards(user), key=lambda m: m["balance"])
        return any(
            v["available"] and v["price"] - item["price"] > card["balance"] for v in variants
        )

    order = first(store, fits)
    user = initial()["users"][order["user_id"]]
    card = min(gift_cards(user), key=lambda m: m["balance"])
    item = order["items"][0]
    variants = initial()["products"][item["product_id"]]["variants"].values()
    dear = next(
        v for v in variants if v["available"] and v["price"] - item["price"] > card["balance"]
    )
    refused(
        store,
        "Insufficient gift card balance to pay for the new item",
        orders.modify_pending_order_items,
        order["order_id"],
        [item["item_id"]],
        [dear["item_id"]],
        card["id"],
    )


# --- payment and address --------------------------------------------------------------------------


def test_modify_payment_rules_and_balances(store: RetailStore) -> None:
    def fits(order: Record, user: Record) -> bool:
        amount = order["payment_history"][0]["amount"]
        rich = [c for c in gift_cards(user) if c["balance"] >= amount]
        paid_with = order["payment_history"][0]["payment_method_id"]
        return order["status"] == "pending" and any(c["id"] != paid_with for c in rich)

    order = first(store, fits)
    old = order["payment_history"][0]
    user = initial()["users"][order["user_id"]]
    card = next(
        c
        for c in gift_cards(user)
        if c["balance"] >= old["amount"] and c["id"] != old["payment_method_id"]
    )
    modify = orders.modify_pending_order_payment
    same = "The new payment method should be different from the current one"
    refused(store, same, modify, order["order_id"], old["payment_method_id"])
    result = modify(store, order["order_id"], card["id"])
    assert result["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": old["amount"], "payment_method_id": card["id"]},
        {
            "transaction_type": "refund",
            "amount": old["amount"],
            "payment_method_id": old["payment_method_id"],
        },
    ]
    after = toolkit.get_user_details(store, order["user_id"])["payment_methods"][card["id"]]
    assert after["balance"] == round(card["balance"] - old["amount"], 2)
    one = "There should be exactly one payment for a pending order"
    refused(store, one, modify, order["order_id"], old["payment_method_id"])


def test_modify_payment_refuses_a_short_gift_card(store: RetailStore) -> None:
    def short_cards(order: Record, user: Record) -> list[Record]:
        payment = order["payment_history"][0]
        return [
            c
            for c in gift_cards(user)
            if c["balance"] < payment["amount"] and c["id"] != payment["payment_method_id"]
        ]

    order = first(store, lambda o, u: o["status"] == "pending" and bool(short_cards(o, u)))
    card = short_cards(order, initial()["users"][order["user_id"]])[0]
    message = "Insufficient gift card balance to pay for the order"
    refused(store, message, orders.modify_pending_order_payment, order["order_id"], card["id"])


def test_addresses(store: RetailStore) -> None:
    delivered = first(store, lambda o, u: o["status"] == "delivered")
    address = ("1 Main St", "Apt 2", "Austin", "TX", "USA", "78701")
    message = "Non-pending order cannot be modified"
    refused(store, message, orders.modify_pending_order_address, delivered["order_id"], *address)
    refused(store, "User not found", orders.modify_user_address, "nobody_1", *address)
    user = orders.modify_user_address(store, delivered["user_id"], *address)
    assert user["address"] == dict(
        zip(("address1", "address2", "city", "state", "country", "zip"), address, strict=True)
    )


# --- return and exchange --------------------------------------------------------------------------


def test_return_rules(store: RetailStore) -> None:
    pending = first(store, lambda o, u: o["status"] == "pending")
    delivered = first(
        store,
        lambda o, u: (
            o["status"] == "delivered"
            and bool(gift_cards(u))
            and any(
                m != o["payment_history"][0]["payment_method_id"] and not m.startswith("gift_card")
                for m in u["payment_methods"]
            )
        ),
    )
    user = initial()["users"][delivered["user_id"]]
    original = delivered["payment_history"][0]["payment_method_id"]
    other = next(m for m in user["payment_methods"] if m != original and "gift_card" not in m)
    items = [item["item_id"] for item in delivered["items"]]
    ret = orders.return_delivered_order_items
    message = "Non-delivered order cannot be returned"
    refused(store, message, ret, pending["order_id"], [pending["items"][0]["item_id"]], original)
    message = "Payment method should be the original payment method"
    refused(store, message, ret, delivered["order_id"], items, other)
    refused(store, "Some item not found", ret, delivered["order_id"], items + items, original)
    card = gift_cards(user)[0]["id"]
    result = ret(store, delivered["order_id"], list(reversed(items)), card)
    assert result["status"] == "return requested"
    assert result["return_items"] == sorted(items)
    assert result["return_payment_method_id"] == card
    message = "Non-delivered order cannot be exchanged"
    refused(
        store, message, orders.exchange_delivered_order_items, delivered["order_id"], [], [], card
    )


def test_exchange_rules_and_price_difference(store: RetailStore) -> None:
    order = first(store, lambda o, u: o["status"] == "delivered" and len(o["items"]) >= 2)
    one, two = order["items"][0], order["items"][1]
    method = order["payment_history"][0]["payment_method_id"]
    exchange = orders.exchange_delivered_order_items
    oid = order["order_id"]
    message = f"Number of {one['item_id']} not found."
    refused(store, message, exchange, oid, [one["item_id"]] * 3, ["x"] * 3, method)
    message = "The number of items to be exchanged should match."
    refused(store, message, exchange, oid, [one["item_id"]], [], method)
    new_one, new_two = other_variant(store, one), other_variant(store, two)
    result = exchange(
        store,
        oid,
        [two["item_id"], one["item_id"]],
        [new_two["item_id"], new_one["item_id"]],
        method,
    )
    difference = round(new_two["price"] - two["price"] + new_one["price"] - one["price"], 2)
    assert result["status"] == "exchange requested"
    assert result["exchange_items"] == sorted([one["item_id"], two["item_id"]])
    assert result["exchange_new_items"] == sorted([new_one["item_id"], new_two["item_id"]])
    assert result["exchange_price_difference"] == difference
    assert result["items"] == order["items"], "an exchange request does not change the items yet"


def dearer_than_card(item: Record, user: Record) -> tuple[Record, Record] | None:
    """An available variant of `item`'s product whose extra cost exceeds one of the user's gift
    cards, with that card."""
    variants = initial()["products"][item["product_id"]]["variants"].values()
    for card in gift_cards(user):
        for variant in variants:
            if variant["available"] and variant["price"] - item["price"] > card["balance"]:
                return variant, card
    return None


def test_exchange_refuses_unavailable_items(store: RetailStore) -> None:
    def fits(order: Record, user: Record) -> bool:
        variants = initial()["products"][order["items"][0]["product_id"]]["variants"]
        return order["status"] == "delivered" and any(not v["available"] for v in variants.values())

    order = first(store, fits)
    item = order["items"][0]
    gone = other_variant(store, item, available=False)["item_id"]
    method = order["payment_history"][0]["payment_method_id"]
    exchange = orders.exchange_delivered_order_items
    message = f"New item {gone} not found or available"
    refused(store, message, exchange, order["order_id"], [item["item_id"]], [gone], method)


def test_exchange_refuses_a_short_gift_card(store: RetailStore) -> None:
    def fits(order: Record, user: Record) -> bool:
        return (
            order["status"] == "delivered" and dearer_than_card(order["items"][0], user) is not None
        )

    order = first(store, fits)
    item = order["items"][0]
    found = dearer_than_card(item, initial()["users"][order["user_id"]])
    assert found is not None
    variant, card = found
    refused(
        store,
        "Insufficient gift card balance to pay for the price difference",
        orders.exchange_delivered_order_items,
        order["order_id"],
        [item["item_id"]],
        [variant["item_id"]],
        card["id"],
    )


# --- calculate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "2 + 2",
        "3131.1 + 4777.75 + 367.38",
        "155.33 - 147.05 + 268.77 - 235.13",
        " 10 / 4",
        "-(3 - 5) * 2",
        "2 ** 10",
        "7 // 2",
        ".5 * 3",
        "1 / 3",
        "(1.005 + 2) * 3",
    ],
)
def test_calculate_matches_python_arithmetic(expression: str) -> None:
    expected = str(round(float(eval(expression, {"__builtins__": None}, {})), 2))  # noqa: S307
    assert calculate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "Invalid characters in expression"),
        ("2 +", "invalid syntax (<string>, line 1)"),
        ("(1", "'(' was never closed (<string>, line 1)"),
        ("1 / 0", "division by zero"),
        ("1.5 / 0", "float division by zero"),
        ("9 ** 99999", "Exponent too large"),
    ],
)
def test_calculate_errors(expression: str, message: str) -> None:
    with pytest.raises(RetailError) as caught:
        calculate(expression)
    assert caught.value.message == message


# --- catalog and the tools-data.json mapping -----------------------------------------------------


def test_catalog_covers_tau2_and_tools_data() -> None:
    described = json.loads((TAU2 / "tools-data.json").read_text())["retail"]["tools"]
    assert {tool["name"] for tool in described} == set(TOOLS_DATA_NAMES)
    assert len(TAU2_TOOL_NAMES) == 16
    for tool in described:
        spec = TOOLS[tool["name"]]
        assert (spec.effect == "read") == (tool["type"] == "READ"), tool["name"]
        required = {p["name"] for p in tool["parameters"] if p["required"]}
        assert required <= set(spec.input_schema()["properties"]), tool["name"]
    effects = {name: spec.effect for name, spec in TOOLS.items()}
    assert effects["cancel_pending_order"] == effects["return_order"] == "irreversible"
    assert effects["modify_pending_order_address"] == effects["update_user_address"] == "write"


def test_invoke_validates_arguments(store: RetailStore) -> None:
    with pytest.raises(RetailError, match=r"^Tool 'nope' not found\.$"):
        invoke(store, "nope", {})
    with pytest.raises(ValueError, match="order_id"):
        invoke(store, "get_order_details", {})
    with pytest.raises(ValueError, match="extra"):
        invoke(store, "get_order_details", {"order_id": "#W2378156", "extra": 1})


def test_tools_data_tools(store: RetailStore) -> None:
    user = initial()["users"]["yusuf_rossi_9620"]
    zip_code = user["address"]["zip"]
    assert compat.authenticate_user(store, user["email"], None, None) == {
        "user_id": user["user_id"]
    }
    by_name = compat.authenticate_user(store, "x@example.com", "Yusuf Rossi", zip_code)
    assert by_name == {"user_id": user["user_id"]}
    with pytest.raises(RetailError):
        compat.authenticate_user(store, None, "Yusuf", zip_code)
    listed = compat.get_user_orders(store, user["user_id"])
    assert [o["order_id"] for o in listed] == user["orders"]
    found = compat.search_products(store, "water BOTTLE")
    assert found and all("water bottle" in p["name"].lower() for p in found)
    assert len(compat.search_products(store, "")) == 50
    order = first(store, lambda o, u: o["status"] == "delivered" and len(o["items"]) >= 2)
    item_id = order["items"][0]["item_id"]
    returned = invoke(
        store,
        "return_order",
        {"order_id": order["order_id"], "items": [{"item_id": item_id}], "reason": "broken"},
    )
    assert isinstance(returned, dict)
    assert returned["return_items"] == [item_id]
    assert returned["return_payment_method_id"] == order["payment_history"][0]["payment_method_id"]


def test_modify_order_maps_onto_modify_pending_order_items(store: RetailStore) -> None:
    order = first(store, lambda o, u: o["status"] == "pending")
    item = order["items"][0]
    new = other_variant(store, item)
    change = [{"item_id": item["item_id"], "new_item_id": new["item_id"]}]
    result = invoke(store, "modify_order", {"order_id": order["order_id"], "modifications": change})
    assert isinstance(result, dict)
    assert result["status"] == "pending (item modified)"
    assert (
        result["payment_history"][-1]["payment_method_id"]
        == order["payment_history"][0]["payment_method_id"]
    )


# --- REST auth modes (in process) -----------------------------------------------------------------

ORDER = {"order_id": "#W2378156"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_auth_none_api_key_and_bearer(store: RetailStore) -> None:
    with TestClient(create_app(store)) as client:
        assert client.post("/tools/get_order_details", json=ORDER).status_code == 200
    with TestClient(create_app(store, AuthConfig(mode="api_key", api_key="k1"))) as client:
        missing = client.post("/tools/get_order_details", json=ORDER)
        assert missing.status_code == 401 and "error" in missing.json()
        wrong = client.post("/tools/get_order_details", json=ORDER, headers={"X-API-Key": "k2"})
        assert wrong.status_code == 401
        ok = client.post("/tools/get_order_details", json=ORDER, headers={"X-API-Key": "k1"})
        assert ok.status_code == 200 and ok.json()["order_id"] == ORDER["order_id"]
        assert client.get("/admin/state").status_code == 401
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(store, AuthConfig(mode="bearer", bearer_token="t1"))) as client:
        headers = {"Authorization": "Bearer t1"}
        assert client.post("/tools/get_order_details", json=ORDER).status_code == 401
        bad = {"Authorization": "Bearer t2"}
        assert client.post("/tools/get_order_details", json=ORDER, headers=bad).status_code == 401
        assert (
            client.post("/tools/get_order_details", json=ORDER, headers=headers).status_code == 200
        )
    with pytest.raises(ValueError, match="api_key"):
        AuthConfig(mode="api_key")


def test_auth_oauth2_client_credentials_and_expiry(store: RetailStore) -> None:
    clock = Clock()
    config = AuthConfig(
        mode="oauth2", client_id="cid", client_secret="sec", token_ttl_seconds=60, clock=clock
    )
    with TestClient(create_app(store, config)) as client:
        form = {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "sec"}
        wrong = client.post("/oauth/token", data=form | {"client_secret": "nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        grant = client.post("/oauth/token", data=form | {"grant_type": "password"})
        assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
        issued = client.post("/oauth/token", data=form)
        assert issued.status_code == 200
        token = issued.json()
        assert token["token_type"] == "bearer" and token["expires_in"] == 60
        basic = base64.b64encode(b"cid:sec").decode()
        by_basic = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert by_basic.status_code == 200
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.post("/tools/get_order_details", json=ORDER).status_code == 401
        assert (
            client.post("/tools/get_order_details", json=ORDER, headers=headers).status_code == 200
        )
        clock.now += 61
        expired = client.post("/tools/get_order_details", json=ORDER, headers=headers)
        assert expired.status_code == 401 and expired.json() == {"error": "access token expired"}
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
        assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/oauth/token"
