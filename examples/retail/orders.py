"""tau2's retail toolkit, write side: cancel, modify, return, exchange, change addresses.

Rules, messages and arithmetic follow tau2's `RetailTools` (sierra-research/tau2-bench,
`src/tau2/domains/retail/tools.py`) check for check, in the same order, so the same request is
refused with the same message and an accepted one leaves the same database. Two differences, both
invisible for valid data: every check runs before the first change (tau2 can half-apply a request
whose payment method has vanished), and returned records are copies.

tau2 quirk kept on purpose (tau2's DB end-state evaluation depends on it): when
`modify_pending_order_items` changes several items, every changed item takes the price and
options of the *last* new item in the request; only the item ids are matched pairwise.
"""

from __future__ import annotations

import copy

from examples.retail.store import RetailStore
from examples.retail.toolkit import (
    Record,
    find_order,
    find_payment_method,
    find_user,
    find_variant,
    is_gift_card,
    require,
)

CANCEL_REASONS = ("no longer needed", "ordered by mistake")


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> Record:
    return {
        "address1": address1,
        "address2": address2,
        "city": city,
        "country": country,
        "state": state,
        "zip": zip,
    }


def _transaction(kind: str, amount: float, payment_method_id: str) -> Record:
    # A new record, validated by pydantic in tau2: the amount is always a float (0 becomes 0.0).
    return {
        "transaction_type": kind,
        "amount": float(amount),
        "payment_method_id": payment_method_id,
    }


def _check_items_present(order: Record, item_ids: list[str], message: str) -> None:
    """Each id, counted with its duplicates, must occur at least as often in the order."""
    in_order = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        require(item_ids.count(item_id) <= in_order.count(item_id), message.format(item_id))


def _first_item(order: Record, item_id: str) -> Record:
    item: Record | None = next((i for i in order["items"] if i["item_id"] == item_id), None)
    require(item is not None, f"Item {item_id} not found")
    assert item is not None
    return item


def _price_difference(
    db: Record, order: Record, item_ids: list[str], new_item_ids: list[str], *, distinct: bool
) -> tuple[float, Record | None]:
    """Sum of (new price - old price) over the pairs, and the last new variant."""
    difference: float = 0  # an int until the first pair, as in tau2 (it shows in the dumped state)
    variant: Record | None = None
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=False):
        if distinct:
            require(
                item_id != new_item_id, "The new item id should be different from the old item id"
            )
        item = _first_item(order, item_id)
        variant = find_variant(db, item["product_id"], new_item_id)
        require(bool(variant["available"]), f"New item {new_item_id} not found or available")
        difference += variant["price"] - item["price"]
    return difference, variant


def cancel_pending_order(store: RetailStore, order_id: str, reason: str) -> Record:
    """Cancel a pending order; gift card payments are refunded to the card at once."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require(order["status"] == "pending", "Non-pending order cannot be cancelled")
        require(reason in CANCEL_REASONS, "Invalid reason")
        methods = [
            find_payment_method(db, order["user_id"], payment["payment_method_id"])
            for payment in order["payment_history"]
        ]
        refunds = []
        for payment, method in zip(order["payment_history"], methods, strict=True):
            refunds.append(_transaction("refund", payment["amount"], payment["payment_method_id"]))
            if is_gift_card(method):
                method["balance"] = round(method["balance"] + payment["amount"], 2)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["payment_history"].extend(refunds)
        return copy.deepcopy(order)


def exchange_delivered_order_items(
    store: RetailStore,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> Record:
    """Request the exchange of delivered items for other variants of the same products."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require(order["status"] == "delivered", "Non-delivered order cannot be exchanged")
        _check_items_present(order, item_ids, "Number of {} not found.")
        require(
            len(item_ids) == len(new_item_ids), "The number of items to be exchanged should match."
        )
        difference, _ = _price_difference(db, order, item_ids, new_item_ids, distinct=False)
        difference = round(difference, 2)
        method = find_payment_method(db, order["user_id"], payment_method_id)
        require(
            not (is_gift_card(method) and method["balance"] < difference),
            "Insufficient gift card balance to pay for the price difference",
        )
        order["status"] = "exchange requested"
        order["exchange_items"] = sorted(item_ids)
        order["exchange_new_items"] = sorted(new_item_ids)
        order["exchange_payment_method_id"] = payment_method_id
        order["exchange_price_difference"] = difference
        return copy.deepcopy(order)


def modify_pending_order_items(
    store: RetailStore,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> Record:
    """Swap items of a pending order for other variants; once per order (status changes)."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require(order["status"] == "pending", "Non-pending order cannot be modified")
        _check_items_present(order, item_ids, "{} not found")
        require(
            len(item_ids) == len(new_item_ids), "The number of items to be exchanged should match"
        )
        difference, last_variant = _price_difference(
            db, order, item_ids, new_item_ids, distinct=True
        )
        method = find_payment_method(db, order["user_id"], payment_method_id)
        require(
            not (is_gift_card(method) and method["balance"] < difference),
            "Insufficient gift card balance to pay for the new item",
        )
        kind = "payment" if difference > 0 else "refund"
        order["payment_history"].append(_transaction(kind, abs(difference), payment_method_id))
        if is_gift_card(method):
            method["balance"] = round(method["balance"] - difference, 2)
        for item_id, new_item_id in zip(item_ids, new_item_ids, strict=False):
            item = _first_item(order, item_id)
            assert last_variant is not None
            item["item_id"] = new_item_id
            item["price"] = last_variant["price"]
            item["options"] = copy.deepcopy(last_variant["options"])
        order["status"] = "pending (item modified)"
        return copy.deepcopy(order)


def modify_pending_order_address(
    store: RetailStore,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Record:
    """Change the shipping address of a pending order (also after its items were modified)."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require("pending" in order["status"], "Non-pending order cannot be modified")
        order["address"] = _address(address1, address2, city, state, country, zip)
        return copy.deepcopy(order)


def modify_pending_order_payment(
    store: RetailStore, order_id: str, payment_method_id: str
) -> Record:
    """Pay a pending order with another method: a payment with the new, a refund to the old."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require("pending" in order["status"], "Non-pending order cannot be modified")
        method = find_payment_method(db, order["user_id"], payment_method_id)
        history = order["payment_history"]
        require(
            len(history) == 1 and history[0]["transaction_type"] == "payment",
            "There should be exactly one payment for a pending order",
        )
        old_method_id = history[0]["payment_method_id"]
        require(
            old_method_id != payment_method_id,
            "The new payment method should be different from the current one",
        )
        amount = history[0]["amount"]
        require(
            not (is_gift_card(method) and method["balance"] < amount),
            "Insufficient gift card balance to pay for the order",
        )
        old_method = find_payment_method(db, order["user_id"], old_method_id)
        history.append(_transaction("payment", amount, payment_method_id))
        history.append(_transaction("refund", amount, old_method_id))
        if is_gift_card(method):
            method["balance"] = round(method["balance"] - amount, 2)
        if is_gift_card(old_method):
            old_method["balance"] = round(old_method["balance"] + amount, 2)
        return copy.deepcopy(order)


def modify_user_address(
    store: RetailStore,
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Record:
    """Change a user's default address (orders keep theirs)."""
    with store.writing() as db:
        user = find_user(db, user_id)
        user["address"] = _address(address1, address2, city, state, country, zip)
        return copy.deepcopy(user)


def return_delivered_order_items(
    store: RetailStore, order_id: str, item_ids: list[str], payment_method_id: str
) -> Record:
    """Request the return of delivered items; refund to the original method or a gift card."""
    with store.writing() as db:
        order = find_order(db, order_id)
        require(order["status"] == "delivered", "Non-delivered order cannot be returned")
        user = find_user(db, order["user_id"])
        method = find_payment_method(db, user["user_id"], payment_method_id)
        history = order["payment_history"]
        original = history[0]["payment_method_id"] if history else None
        require(
            is_gift_card(method) or payment_method_id == original,
            "Payment method should be the original payment method",
        )
        _check_items_present(order, item_ids, "Some item not found")
        order["status"] = "return requested"
        order["return_items"] = sorted(item_ids)
        order["return_payment_method_id"] = payment_method_id
        return copy.deepcopy(order)
