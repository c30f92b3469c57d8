"""Pydantic models: the request body of every tool, and the records tools return.

Request models give the OpenAPI operations and the MCP tools their JSON Schemas; record models
only document responses (the toolkit works on plain dicts).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ORDER_ID = "The order id, starting with '#', such as '#W0000000'."
USER_ID = "The user id, such as 'sara_doe_496'."
PRODUCT_ID = "The product id, such as '6086499569' (not an item id)."
ITEM_ID = "The item (variant) id, such as '1008292230' (not a product id)."
PAYMENT_ID = (
    "A payment method id of the user, such as 'gift_card_0000000' or 'credit_card_0000000'."
)


class Arguments(BaseModel):
    """Base of every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --- records -----------------------------------------------------------------------------------


class Address(Arguments):
    address1: str = Field(description="First line, such as '123 Main St'.")
    address2: str = Field(description="Second line, such as 'Apt 1', or ''.")
    city: str = Field(description="City, such as 'San Francisco'.")
    state: str = Field(description="State, such as 'CA'.")
    country: str = Field(description="Country, such as 'USA'.")
    zip: str = Field(description="Zip code, such as '12345'.")


class Variant(BaseModel):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(BaseModel):
    name: str
    product_id: str
    variants: dict[str, Variant]


class UserName(BaseModel):
    first_name: str
    last_name: str


class PaymentMethod(BaseModel):
    source: Literal["credit_card", "paypal", "gift_card"]
    id: str
    brand: str | None = Field(default=None, description="Credit cards only.")
    last_four: str | None = Field(default=None, description="Credit cards only.")
    balance: float | None = Field(default=None, description="Gift cards only.")


class User(BaseModel):
    user_id: str
    name: UserName
    address: Address
    email: str
    payment_methods: dict[str, PaymentMethod]
    orders: list[str]


class OrderItem(BaseModel):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class Fulfillment(BaseModel):
    tracking_id: list[str]
    item_ids: list[str]


class Transaction(BaseModel):
    transaction_type: Literal["payment", "refund"]
    amount: float
    payment_method_id: str


class Order(BaseModel):
    order_id: str
    user_id: str
    address: Address
    items: list[OrderItem]
    status: Literal[
        "processed",
        "pending",
        "pending (item modified)",
        "delivered",
        "cancelled",
        "exchange requested",
        "return requested",
    ]
    fulfillments: list[Fulfillment]
    payment_history: list[Transaction]
    cancel_reason: Literal["no longer needed", "ordered by mistake"] | None = None
    exchange_items: list[str] | None = None
    exchange_new_items: list[str] | None = None
    exchange_payment_method_id: str | None = None
    exchange_price_difference: float | None = None
    return_items: list[str] | None = None
    return_payment_method_id: str | None = None


class ErrorBody(BaseModel):
    error: str = Field(description="Why the request was refused.")


# --- tau2 toolkit requests -----------------------------------------------------------------------


class FindUserIdByEmail(Arguments):
    email: str = Field(description="The user's email, such as 'something@example.com'.")


class FindUserIdByNameZip(Arguments):
    first_name: str = Field(description="The user's first name, such as 'John'.")
    last_name: str = Field(description="The user's last name, such as 'Doe'.")
    zip: str = Field(description="The zip code of the user's address, such as '12345'.")


class UserIdArgs(Arguments):
    user_id: str = Field(description=USER_ID)


class OrderIdArgs(Arguments):
    order_id: str = Field(description=ORDER_ID)


class ProductIdArgs(Arguments):
    product_id: str = Field(description=PRODUCT_ID)


class ItemIdArgs(Arguments):
    item_id: str = Field(description=ITEM_ID)


class NoArgs(Arguments):
    pass


class Calculate(Arguments):
    expression: str = Field(
        description="An arithmetic expression of numbers, + - * /, parentheses and spaces, "
        "such as '2 + 2'."
    )


class TransferToHumanAgents(Arguments):
    summary: str = Field(description="A summary of the user's issue for the human agent.")


class CancelPendingOrder(Arguments):
    order_id: str = Field(description=ORDER_ID)
    reason: str = Field(description="Either 'no longer needed' or 'ordered by mistake'.")


class ItemSwap(Arguments):
    order_id: str = Field(description=ORDER_ID)
    item_ids: list[str] = Field(description="Item ids in the order to replace; may repeat.")
    new_item_ids: list[str] = Field(
        description="Replacement item ids, position by position, each a variant of the same "
        "product as the item it replaces."
    )
    payment_method_id: str = Field(description=PAYMENT_ID + " Pays or receives the difference.")


class ReturnDeliveredOrderItems(Arguments):
    order_id: str = Field(description=ORDER_ID)
    item_ids: list[str] = Field(description="Item ids in the order to return; may repeat.")
    payment_method_id: str = Field(
        description=PAYMENT_ID + " Must be the original payment method or a gift card."
    )


class OrderAddress(Address):
    order_id: str = Field(description=ORDER_ID)


class UserAddress(Address):
    user_id: str = Field(description=USER_ID)


class ModifyPendingOrderPayment(Arguments):
    order_id: str = Field(description=ORDER_ID)
    payment_method_id: str = Field(description=PAYMENT_ID)


# --- tools-data.json (coarse) requests ----------------------------------------------------------


class AuthenticateUser(Arguments):
    email: str | None = Field(default=None, description="The user's email address.")
    name: str | None = Field(default=None, description="Full name ('First Last'), with zip_code.")
    zip_code: str | None = Field(default=None, description="Zip code, with name.")


class SearchProducts(Arguments):
    query: str = Field(
        description="Words that must all occur in the product name or in an option value of "
        "one of its variants (case-insensitive); empty lists every product."
    )


class CancelOrder(Arguments):
    order_id: str = Field(description=ORDER_ID)
    reason: str = Field(description="Either 'no longer needed' or 'ordered by mistake'.")


class ItemChange(Arguments):
    item_id: str = Field(description=ITEM_ID + " An item in the order.")
    new_item_id: str = Field(description="The variant of the same product to get instead.")


class ModifyOrder(Arguments):
    order_id: str = Field(description=ORDER_ID)
    modifications: list[ItemChange] = Field(description="The items to swap.")
    payment_method_id: str | None = Field(
        default=None, description=PAYMENT_ID + " Defaults to the order's original payment method."
    )


class ReturnLine(Arguments):
    item_id: str = Field(description=ITEM_ID + " An item in the order.")
    quantity: int = Field(default=1, ge=1, description="How many of this item to return.")


class ReturnOrder(Arguments):
    order_id: str = Field(description=ORDER_ID)
    items: list[ReturnLine] = Field(description="The items to return, with quantities.")
    reason: str = Field(description="Why the customer returns them (recorded nowhere, as in tau2).")
    payment_method_id: str | None = Field(
        default=None,
        description=PAYMENT_ID + " Refund target: the original method (default) or a gift card.",
    )


class ExchangeOrder(Arguments):
    order_id: str = Field(description=ORDER_ID)
    exchanges: list[ItemChange] = Field(description="The items to exchange.")
    payment_method_id: str | None = Field(
        default=None, description=PAYMENT_ID + " Defaults to the order's original payment method."
    )


class UpdateUserAddress(Arguments):
    user_id: str = Field(description=USER_ID)
    address: Address = Field(description="The new default address.")


class AuthenticatedUser(BaseModel):
    user_id: str
