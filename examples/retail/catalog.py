"""Every tool the backend serves: name, request model, effect tier, description, function.

REST (`rest.py`) and MCP (`mcp_server.py`) are both generated from `TOOLS`, and `invoke` is the
one way to run a tool from untyped arguments, so the three paths cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from examples.retail import compat, orders, toolkit
from examples.retail import models as m
from examples.retail.errors import RetailError
from examples.retail.store import RetailStore
from examples.retail.toolkit import ToolResult

Effect = Literal["read", "write", "irreversible"]
Origin = Literal["tau2", "tools-data", "both"]

CONFIRM = " Explain the details and get the customer's explicit confirmation (yes) first."


@dataclass(frozen=True)
class ToolSpec:
    name: str
    function: Callable[..., ToolResult]
    arguments: type[m.Arguments]
    returns: Any
    effect: Effect
    summary: str
    description: str
    origin: Origin = "tau2"
    maps_to: tuple[str, ...] = ()

    def input_schema(self) -> dict[str, Any]:
        return self.arguments.model_json_schema()


def _spec(
    function: Callable[..., ToolResult],
    arguments: type[m.Arguments],
    returns: Any,
    effect: Effect,
    summary: str,
    description: str = "",
    origin: Origin = "tau2",
    maps_to: tuple[str, ...] = (),
) -> ToolSpec:
    text = summary + (" " + description if description else "")
    return ToolSpec(
        function.__name__, function, arguments, returns, effect, summary, text, origin, maps_to
    )


_TAU2 = [
    _spec(
        toolkit.find_user_id_by_email,
        m.FindUserIdByEmail,
        str,
        "read",
        "Find a user id by email.",
        "Try this before find_user_id_by_name_zip.",
    ),
    _spec(
        toolkit.find_user_id_by_name_zip,
        m.FindUserIdByNameZip,
        str,
        "read",
        "Find a user id by first name, last name and zip code.",
        "Use only when the user cannot be found by email.",
    ),
    _spec(
        toolkit.get_user_details,
        m.UserIdArgs,
        m.User,
        "read",
        "Get a user's details: name, address, email, payment methods and order ids.",
    ),
    _spec(
        toolkit.get_order_details,
        m.OrderIdArgs,
        m.Order,
        "read",
        "Get the status and details of an order.",
        "Items, fulfillments, payment history and any cancel, return or exchange request.",
        origin="both",
    ),
    _spec(
        toolkit.get_product_details,
        m.ProductIdArgs,
        m.Product,
        "read",
        "Get a product and all its variants (items), with options, price and availability.",
        origin="both",
    ),
    _spec(
        toolkit.get_item_details,
        m.ItemIdArgs,
        m.Variant,
        "read",
        "Get one item (variant) by its item id: options, price and availability.",
    ),
    _spec(
        toolkit.list_all_product_types,
        m.NoArgs,
        str,
        "read",
        "List the 50 product types.",
        "Returns a JSON object (as a string) mapping product names to product ids.",
    ),
    _spec(
        toolkit.calculate,
        m.Calculate,
        str,
        "read",
        "Evaluate an arithmetic expression; the result is rounded to 2 decimals.",
    ),
    _spec(
        toolkit.transfer_to_human_agents,
        m.TransferToHumanAgents,
        str,
        "write",
        "Transfer the customer to a human agent, with a summary of the issue.",
        "Only when the customer asks for a human, or the request cannot be handled with the "
        "policy and the other tools.",
        origin="both",
    ),
    _spec(
        orders.cancel_pending_order,
        m.CancelPendingOrder,
        m.Order,
        "irreversible",
        "Cancel a pending order.",
        "Status becomes 'cancelled'; every payment is refunded (at once to gift cards, otherwise "
        "in 5-7 business days)." + CONFIRM,
    ),
    _spec(
        orders.modify_pending_order_items,
        m.ItemSwap,
        m.Order,
        "irreversible",
        "Swap items of a pending order for other variants of the same products.",
        "Possible once per order: the status becomes 'pending (item modified)'. The payment "
        "method pays or receives the price difference; a gift card must cover it." + CONFIRM,
    ),
    _spec(
        orders.modify_pending_order_address,
        m.OrderAddress,
        m.Order,
        "write",
        "Change the shipping address of a pending order." + CONFIRM,
    ),
    _spec(
        orders.modify_pending_order_payment,
        m.ModifyPendingOrderPayment,
        m.Order,
        "write",
        "Pay a pending order with another of the user's payment methods.",
        "The old method is refunded; a gift card must cover the order total." + CONFIRM,
    ),
    _spec(
        orders.modify_user_address,
        m.UserAddress,
        m.User,
        "write",
        "Change a user's default address." + CONFIRM,
    ),
    _spec(
        orders.return_delivered_order_items,
        m.ReturnDeliveredOrderItems,
        m.Order,
        "irreversible",
        "Request the return of items of a delivered order.",
        "Status becomes 'return requested'; the refund goes to the original payment method or a "
        "gift card. A delivered order can be returned or exchanged once." + CONFIRM,
    ),
    _spec(
        orders.exchange_delivered_order_items,
        m.ItemSwap,
        m.Order,
        "irreversible",
        "Request the exchange of items of a delivered order for other variants of the same "
        "products.",
        "Status becomes 'exchange requested'. The payment method pays or receives the price "
        "difference; a gift card must cover it. Once per order." + CONFIRM,
    ),
]

_TOOLS_DATA = [
    _spec(
        compat.authenticate_user,
        m.AuthenticateUser,
        m.AuthenticatedUser,
        "read",
        "Authenticate a user: find their user id by email, or by full name and zip code.",
        origin="tools-data",
        maps_to=("find_user_id_by_email", "find_user_id_by_name_zip"),
    ),
    _spec(
        compat.get_user_profile,
        m.UserIdArgs,
        m.User,
        "read",
        "Get a user's profile: email, default address and payment methods.",
        origin="tools-data",
        maps_to=("get_user_details",),
    ),
    _spec(
        compat.get_user_orders,
        m.UserIdArgs,
        list[m.Order],
        "read",
        "Get all orders of a user, with status, items and details.",
        origin="tools-data",
        maps_to=("get_user_details", "get_order_details"),
    ),
    _spec(
        compat.search_products,
        m.SearchProducts,
        list[m.Product],
        "read",
        "Search the catalogue; returns matching products with their variants and prices.",
        origin="tools-data",
    ),
    _spec(
        compat.cancel_order,
        m.CancelOrder,
        m.Order,
        "irreversible",
        "Cancel a pending order (status 'pending' only).",
        CONFIRM.strip(),
        origin="tools-data",
        maps_to=("cancel_pending_order",),
    ),
    _spec(
        compat.modify_order,
        m.ModifyOrder,
        m.Order,
        "irreversible",
        "Modify the items of a pending order; once per order.",
        CONFIRM.strip(),
        origin="tools-data",
        maps_to=("modify_pending_order_items",),
    ),
    _spec(
        compat.return_order,
        m.ReturnOrder,
        m.Order,
        "irreversible",
        "Return items of a delivered order.",
        CONFIRM.strip(),
        origin="tools-data",
        maps_to=("return_delivered_order_items",),
    ),
    _spec(
        compat.exchange_order,
        m.ExchangeOrder,
        m.Order,
        "irreversible",
        "Exchange items of a delivered order; once per order.",
        CONFIRM.strip(),
        origin="tools-data",
        maps_to=("exchange_delivered_order_items",),
    ),
    _spec(
        compat.update_user_address,
        m.UpdateUserAddress,
        m.User,
        "write",
        "Change a user's default address.",
        CONFIRM.strip(),
        origin="tools-data",
        maps_to=("modify_user_address",),
    ),
]

TOOLS: dict[str, ToolSpec] = {spec.name: spec for spec in [*_TAU2, *_TOOLS_DATA]}
TAU2_TOOL_NAMES = tuple(spec.name for spec in _TAU2)
TOOLS_DATA_NAMES = tuple(s.name for s in TOOLS.values() if s.origin in ("tools-data", "both"))


def invoke(store: RetailStore, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
    """Validate `arguments` against the tool's model and run it. Raises `RetailError` (unknown
    tool, refused request) or `pydantic.ValidationError` (malformed arguments)."""
    spec = TOOLS.get(name)
    if spec is None:
        raise RetailError(f"Tool '{name}' not found.")
    validated = spec.arguments.model_validate(dict(arguments or {}))
    return spec.function(store, **validated.model_dump())


def as_text(result: ToolResult) -> str:
    """A result as tau2 shows it to the agent: strings as they are, records as JSON."""
    return result if isinstance(result, str) else json.dumps(result)
