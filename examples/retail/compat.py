"""The coarser tools of tau2's `tools-data.json`, mapped onto the real toolkit.

| tools-data.json      | implemented with                                                          |
|----------------------|---------------------------------------------------------------------------|
| authenticate_user    | find_user_id_by_email, else find_user_id_by_name_zip ("First Last" + zip) |
| get_user_profile     | get_user_details                                                          |
| get_user_orders      | get_user_details, then get_order_details for each of the user's orders    |
| get_order_details    | the tau2 tool of the same name                                            |
| search_products      | a case-insensitive word search over product names and variant options     |
| get_product_details  | the tau2 tool of the same name                                            |
| cancel_order         | cancel_pending_order                                                      |
| modify_order         | modify_pending_order_items (pairs from `modifications`)                   |
| return_order         | return_delivered_order_items (ids repeated by `quantity`)                 |
| exchange_order       | exchange_delivered_order_items (pairs from `exchanges`)                   |
| update_user_address  | modify_user_address                                                       |
| transfer_to_human... | the tau2 tool of the same name (it takes a `summary`)                     |

Where tools-data.json names no payment method, the order's original one is used.
"""

from __future__ import annotations

import copy
from typing import Any

from examples.retail.errors import NotFoundError, RetailError
from examples.retail.orders import (
    cancel_pending_order,
    exchange_delivered_order_items,
    modify_pending_order_items,
    modify_user_address,
    return_delivered_order_items,
)
from examples.retail.store import RetailStore
from examples.retail.toolkit import (
    Record,
    find_order,
    find_user,
    find_user_id_by_email,
    find_user_id_by_name_zip,
    get_user_details,
)


def authenticate_user(
    store: RetailStore, email: str | None, name: str | None, zip_code: str | None
) -> Record:
    """Find the user by email; if that fails (or no email is given), by full name and zip."""
    if not email and not (name and zip_code):
        raise RetailError("Give an email, or a full name and a zip code")
    if email:
        try:
            return {"user_id": find_user_id_by_email(store, email)}
        except NotFoundError:
            if not (name and zip_code):
                raise
    assert name is not None and zip_code is not None
    first, _, last = name.strip().partition(" ")
    if not last.strip():
        raise RetailError("The name should be the full name, such as 'John Doe'")
    return {"user_id": find_user_id_by_name_zip(store, first, last.strip(), zip_code)}


def get_user_profile(store: RetailStore, user_id: str) -> Record:
    return get_user_details(store, user_id)


def get_user_orders(store: RetailStore, user_id: str) -> list[Record]:
    with store.reading() as db:
        user = find_user(db, user_id)
        return [copy.deepcopy(find_order(db, order_id)) for order_id in user["orders"]]


def _matches(product: Record, words: list[str]) -> bool:
    texts = [str(product["name"]).lower()]
    for variant in product["variants"].values():
        texts.extend(str(value).lower() for value in variant["options"].values())
    return all(any(word in text for text in texts) for word in words)


def search_products(store: RetailStore, query: str) -> list[Record]:
    words = query.lower().split()
    with store.reading() as db:
        return [copy.deepcopy(p) for p in db["products"].values() if _matches(p, words)]


def _original_payment_method(store: RetailStore, order_id: str) -> str:
    with store.reading() as db:
        history = find_order(db, order_id)["payment_history"]
        if not history:
            raise RetailError("The order has no payment; give a payment_method_id")
        return str(history[0]["payment_method_id"])


def cancel_order(store: RetailStore, order_id: str, reason: str) -> Record:
    return cancel_pending_order(store, order_id, reason)


def modify_order(
    store: RetailStore,
    order_id: str,
    modifications: list[dict[str, Any]],
    payment_method_id: str | None,
) -> Record:
    with store.locked():  # one lock for the default lookup and the change
        method = payment_method_id or _original_payment_method(store, order_id)
        return modify_pending_order_items(
            store,
            order_id,
            [change["item_id"] for change in modifications],
            [change["new_item_id"] for change in modifications],
            method,
        )


def return_order(
    store: RetailStore,
    order_id: str,
    items: list[dict[str, Any]],
    reason: str,
    payment_method_id: str | None,
) -> Record:
    del reason  # tau2's order record has no field for it
    with store.locked():
        method = payment_method_id or _original_payment_method(store, order_id)
        item_ids = [line["item_id"] for line in items for _ in range(int(line["quantity"]))]
        return return_delivered_order_items(store, order_id, item_ids, method)


def exchange_order(
    store: RetailStore,
    order_id: str,
    exchanges: list[dict[str, Any]],
    payment_method_id: str | None,
) -> Record:
    with store.locked():
        method = payment_method_id or _original_payment_method(store, order_id)
        return exchange_delivered_order_items(
            store,
            order_id,
            [change["item_id"] for change in exchanges],
            [change["new_item_id"] for change in exchanges],
            method,
        )


def update_user_address(store: RetailStore, user_id: str, address: dict[str, Any]) -> Record:
    return modify_user_address(store, user_id, **address)
