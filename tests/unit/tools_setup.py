"""The spec, fake sources and helpers the tool executor's unit tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from deputy.domain.spec import AgentSpec
from deputy.testing.tools import FakeToolSource, InMemoryCallLedger, answer
from deputy.tools.base import Invocation, ToolDefinition
from deputy.tools.confirmation import Confirmation
from deputy.tools.executor import ToolExecutor
from deputy.tools.results import CallContext

T = TypeVar("T")

REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^#W[0-9]+$"},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "reason": {"type": "string"},
    },
    "required": ["order_id", "amount"],
    "additionalProperties": False,
}
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}
ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"],
            },
        },
        "shipping": {"type": "string"},
    },
    "required": ["order_id", "items"],
}

SPEC: dict[str, Any] = {
    "name": "Shop support",
    "goal": "Help shop customers with orders.",
    "procedures": [
        {
            "id": "refunds",
            "title": "Refunds",
            "when": "The customer wants money back.",
            "steps": [{"id": "done", "kind": "say", "text": "Done."}],
        },
        {
            "id": "escalations",
            "title": "Escalations",
            "when": "The customer is angry.",
            "steps": [{"id": "done", "kind": "say", "text": "Done."}],
        },
    ],
    "policies": [
        {
            "id": "no_refunds_while_escalating",
            "text": "Never refund while a complaint is being escalated.",
            "applies_to": ["escalations"],
            "forbids_tools": ["refund_order"],
        },
        {
            "id": "refund_cap_in_refunds",
            "text": "Refunds in the refund procedure stay under $150.",
            "applies_to": ["refunds"],
            "limits": [{"tool": "refund_order", "argument": "amount", "max": 150}],
        },
    ],
    "tools": [
        {
            "name": "get_order",
            "effect": "read",
            "binding": {"kind": "openapi", "source": "shop", "operation": "getOrder"},
            "retries": 2,
        },
        {
            "name": "refund_order",
            "description": "Refund money to the customer's card.",
            "effect": "irreversible",
            "binding": {"kind": "openapi", "source": "shop", "operation": "refundOrder"},
            "limits": [
                {"argument": "amount", "max": 200, "message": "Refunds above $200 need a human."}
            ],
        },
        {
            "name": "add_items",
            "effect": "write",
            "binding": {"kind": "openapi", "source": "shop", "operation": "addItems"},
            "limits": [
                {"argument": "items.*.quantity", "max": 5, "min": 1},
                {"argument": "shipping", "one_of": ["standard", "express"]},
            ],
            "max_calls_per_conversation": 2,
        },
        {
            "name": "cancel_order",
            "effect": "irreversible",
            "binding": {"kind": "mcp", "source": "legacy", "tool": "cancel"},
            "parameters": ORDER_SCHEMA,
        },
        {
            "name": "handoff",
            "effect": "write",
            "binding": {"kind": "builtin", "builtin": "handoff"},
        },
        {
            "name": "end_conversation",
            "effect": "write",
            "binding": {"kind": "builtin", "builtin": "end_conversation"},
        },
    ],
    "escalation": {
        "default_queue": "tier1",
        "rules": [{"id": "vip", "when": "VIP", "queue": "vip"}],
    },
}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def shop(*, honours: bool = False) -> FakeToolSource:
    def refund(invocation: Invocation) -> Any:
        return answer({"refunded": invocation.arguments["amount"], "status": "ok"})

    return FakeToolSource(
        definitions=[
            ToolDefinition("getOrder", "Get an order", ORDER_SCHEMA, "read"),
            ToolDefinition("refundOrder", "Refund", REFUND_SCHEMA, "irreversible"),
            ToolDefinition("addItems", "Add items", ITEMS_SCHEMA, "write"),
        ],
        handlers={
            "getOrder": lambda i: answer({"order_id": i.arguments["order_id"], "total": 120}),
            "refundOrder": refund,
            "addItems": lambda i: answer({"added": len(i.arguments["items"])}),
        },
        honours_idempotency_keys=honours,
    )


def legacy() -> FakeToolSource:
    return FakeToolSource(
        definitions=[ToolDefinition("cancel", "Cancel", ORDER_SCHEMA, "irreversible")],
        handlers={"cancel": lambda i: answer({"cancelled": i.arguments["order_id"]})},
    )


async def no_sleep(_seconds: float) -> None:
    return None


def executor(
    ledger: InMemoryCallLedger | None = None,
    source: FakeToolSource | None = None,
    spec: dict[str, Any] | None = None,
    **options: Any,
) -> ToolExecutor:
    return ToolExecutor(
        AgentSpec.model_validate(spec or SPEC),
        {"shop": source or shop(), "legacy": legacy()},
        ledger or InMemoryCallLedger(),
        None,
        sleep=no_sleep,
        **options,
    )


CTX = CallContext(
    workspace_id="ws_1",
    agent_id="agt_1",
    conversation_id="conv_1",
    step_key="t1/s1",
    procedure_id="refunds",
)
REFUND = {"order_id": "#W1001", "amount": 80, "reason": "damaged"}


def confirmed(ctx: CallContext, tool: str, arguments: dict[str, Any]) -> CallContext:
    return replace(ctx, confirmations=(Confirmation.for_call(tool, arguments, "msg_7"),))
