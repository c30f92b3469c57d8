"""tau2's retail toolkit, read side: lookups and the tools that change nothing.

Every tool is a plain function whose first argument is the `RetailStore`; it returns what tau2's
tool returns (a record as a dict, or a string) and raises `RetailError` with tau2's message when
the request is refused. Records handed out are copies: changing them never changes the store.
The tools that change the database live in `examples.retail.orders`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from examples.retail.calculator import calculate as _calculate
from examples.retail.errors import NotFoundError, RetailError
from examples.retail.store import DB, RetailStore

Record = dict[str, Any]
ToolResult = str | Record | list[Record]

# --- lookups shared with the write tools (they take the raw data, under the store's lock) -----


def find_order(db: DB, order_id: str) -> Record:
    order: Record | None = db["orders"].get(order_id)
    if order is None:
        raise NotFoundError("Order not found")
    return order


def find_user(db: DB, user_id: str) -> Record:
    user: Record | None = db["users"].get(user_id)
    if user is None:
        raise NotFoundError("User not found")
    return user


def find_product(db: DB, product_id: str) -> Record:
    product: Record | None = db["products"].get(product_id)
    if product is None:
        raise NotFoundError("Product not found")
    return product


def find_variant(db: DB, product_id: str, item_id: str) -> Record:
    variant: Record | None = find_product(db, product_id)["variants"].get(item_id)
    if variant is None:
        raise NotFoundError("Variant not found")
    return variant


def find_item(db: DB, item_id: str) -> Record:
    for product in db["products"].values():
        variant: Record | None = product["variants"].get(item_id)
        if variant is not None:
            return variant
    raise NotFoundError("Item not found")


def find_payment_method(db: DB, user_id: str, payment_method_id: str) -> Record:
    method: Record | None = find_user(db, user_id)["payment_methods"].get(payment_method_id)
    if method is None:
        raise NotFoundError("Payment method not found")
    return method


def is_gift_card(method: Record) -> bool:
    return bool(method.get("source") == "gift_card")


def _copy(record: Record) -> Record:
    return copy.deepcopy(record)


# --- read tools ----------------------------------------------------------------------------------


def find_user_id_by_email(store: RetailStore, email: str) -> str:
    """The id of the user with this email (case-insensitive)."""
    with store.reading() as db:
        for user_id, user in db["users"].items():
            if str(user["email"]).lower() == email.lower():
                return str(user_id)
    raise NotFoundError("User not found")


def find_user_id_by_name_zip(store: RetailStore, first_name: str, last_name: str, zip: str) -> str:
    """The id of the first user with this first and last name (case-insensitive) and zip code."""
    with store.reading() as db:
        for user_id, user in db["users"].items():
            name = user["name"]
            if (
                str(name["first_name"]).lower() == first_name.lower()
                and str(name["last_name"]).lower() == last_name.lower()
                and user["address"]["zip"] == zip
            ):
                return str(user_id)
    raise NotFoundError("User not found")


def get_user_details(store: RetailStore, user_id: str) -> Record:
    with store.reading() as db:
        return _copy(find_user(db, user_id))


def get_order_details(store: RetailStore, order_id: str) -> Record:
    with store.reading() as db:
        return _copy(find_order(db, order_id))


def get_product_details(store: RetailStore, product_id: str) -> Record:
    with store.reading() as db:
        return _copy(find_product(db, product_id))


def get_item_details(store: RetailStore, item_id: str) -> Record:
    with store.reading() as db:
        return _copy(find_item(db, item_id))


def list_all_product_types(store: RetailStore) -> str:
    """A JSON object mapping each product name to its product id, keys sorted."""
    with store.reading() as db:
        names = {product["name"]: product["product_id"] for product in db["products"].values()}
    return json.dumps(names, sort_keys=True)


def calculate(store: RetailStore, expression: str) -> str:
    del store  # no state involved; the store argument keeps every tool's signature alike
    return _calculate(expression)


def transfer_to_human_agents(store: RetailStore, summary: str) -> str:
    """Hand the conversation to a human. The summary is not stored (as in tau2)."""
    del store, summary
    return "Transfer successful"


def require(condition: bool, message: str) -> None:
    """Refuse the request with `message` unless `condition` holds."""
    if not condition:
        raise RetailError(message)
