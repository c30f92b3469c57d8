"""Built-in tools (handoff, knowledge, memory, end of conversation) and the limit engine."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from deputy.domain.spec import AgentSpec, ArgumentLimit
from deputy.testing.tools import FakeBuiltinHandlers, InMemoryCallLedger
from deputy.tools.builtins import EndConversationSignal, HandoffSignal, KnowledgePassage
from deputy.tools.confirmation import canonical_json, confirmation_summary, idempotency_key
from deputy.tools.executor import ToolExecutor
from deputy.tools.limits import ScopedLimit, check_limit, resolve
from deputy.tools.results import CallContext


def builtin(name: str, effect: str = "write") -> dict[str, Any]:
    return {"name": name, "effect": effect, "binding": {"kind": "builtin", "builtin": name}}


SPEC = AgentSpec.model_validate(
    {
        "name": "Helper",
        "goal": "Help.",
        "tools": [
            builtin("handoff"),
            builtin("lookup_knowledge", "read"),
            builtin("remember_fact"),
            builtin("end_conversation"),
        ],
        "knowledge": {"top_k": 2},
        "escalation": {
            "default_queue": "tier1",
            "rules": [{"id": "billing", "when": "Billing questions", "queue": "billing"}],
        },
    }
)
CTX = CallContext(workspace_id="ws_1", agent_id="agt_1", conversation_id="c1", step_key="t1/s1")
PASSAGES = [
    KnowledgePassage("Refunds are paid within 5 days.", "refund_policy", "Refunds", "section 2"),
    KnowledgePassage("Shipping is free above $50.", "shipping", "Shipping"),
    KnowledgePassage("Refunds need the receipt.", "refund_policy", "Refunds", "section 3"),
]


def tools(handlers: FakeBuiltinHandlers | None = None) -> tuple[ToolExecutor, InMemoryCallLedger]:
    ledger = InMemoryCallLedger()
    return ToolExecutor(SPEC, {}, ledger, handlers), ledger


def test_handoff_signals_the_runtime_with_a_known_queue() -> None:
    executor, ledger = tools()
    result = asyncio.run(executor.call(CTX, "handoff", {"reason": "angry customer"}))
    assert result.ok
    assert result.signal == HandoffSignal(reason="angry customer", queue="tier1")
    routed = asyncio.run(
        executor.call(
            replace(CTX, step_key="t2"), "handoff", {"reason": "invoice", "queue": "billing"}
        )
    )
    assert routed.signal is not None and routed.signal.kind == "handoff"
    assert isinstance(routed.signal, HandoffSignal) and routed.signal.queue == "billing"
    invented = asyncio.run(
        executor.call(replace(CTX, step_key="t3"), "handoff", {"reason": "x", "queue": "ceo"})
    )
    assert invented.code == "invalid_arguments"
    # A repeated step replays the handoff, signal included.
    again = asyncio.run(executor.call(CTX, "handoff", {"reason": "angry customer"}))
    assert again.replayed and again.signal == result.signal
    assert len(ledger.with_status("succeeded")) == 2


def test_end_conversation_carries_the_outcome() -> None:
    executor, _ = tools()
    result = asyncio.run(
        executor.call(CTX, "end_conversation", {"outcome": "resolved", "summary": "refunded"})
    )
    assert result.signal == EndConversationSignal(outcome="resolved", summary="refunded")
    wrong = asyncio.run(
        executor.call(replace(CTX, step_key="t2"), "end_conversation", {"outcome": "won"})
    )
    assert wrong.code == "invalid_arguments"


def test_lookup_knowledge_returns_cited_passages_as_untrusted_data() -> None:
    handlers = FakeBuiltinHandlers(passages=PASSAGES)
    executor, _ = tools(handlers)
    result = asyncio.run(executor.call(CTX, "lookup_knowledge", {"query": "refunds receipt"}))
    assert result.ok and result.signal is None
    assert handlers.queries == [("refunds receipt", 2)]  # the spec's top_k
    passages = result.output["passages"]
    assert passages[0] == {
        "text": "Refunds need the receipt.",
        "citation": {"source": "refund_policy", "title": "Refunds", "location": "section 3"},
    }
    assert len(passages) == 2
    assert 'trust="untrusted"' in result.for_model()
    asyncio.run(executor.call(CTX, "lookup_knowledge", {"query": "shipping", "k": 1}))
    assert handlers.queries[-1] == ("shipping", 1)
    too_many = asyncio.run(executor.call(CTX, "lookup_knowledge", {"query": "x", "k": 500}))
    assert too_many.code == "invalid_arguments"


def test_remember_fact_goes_to_the_handler_once_per_step() -> None:
    handlers = FakeBuiltinHandlers()
    executor, _ = tools(handlers)
    args = {"fact": "prefers email", "about": "customer"}
    first = asyncio.run(executor.call(CTX, "remember_fact", args))
    second = asyncio.run(executor.call(CTX, "remember_fact", args))
    assert first.ok and second.replayed
    assert handlers.facts == [("customer", "prefers email", "c1")]


def test_builtins_that_need_handlers_are_unavailable_without_them() -> None:
    executor, _ = tools(None)
    result = asyncio.run(executor.call(CTX, "lookup_knowledge", {"query": "refunds"}))
    assert (result.status, result.code) == ("refused", "unavailable")
    assert asyncio.run(executor.call(CTX, "handoff", {"reason": "help"})).ok


def test_builtin_schemas_are_offered_to_the_model() -> None:
    executor, _ = tools()
    schema = asyncio.run(executor.tool_schema("handoff"))
    assert schema["properties"]["queue"]["enum"] == ["billing", "tier1"]
    with pytest.raises(KeyError):
        asyncio.run(executor.tool_schema("nope"))


# ---- limits ----------------------------------------------------------------------------------


def test_paths_fan_out_over_lists_and_objects_and_skip_what_is_absent() -> None:
    data = {
        "items": [{"qty": 1}, {"qty": 7}, {"sku": "x"}],
        "refund": {"amount": 30},
        "by_sku": {"a": {"qty": 2}, "b": {"qty": 3}},
    }
    assert list(resolve(data, "items.*.qty")) == [("items.0.qty", 1), ("items.1.qty", 7)]
    assert list(resolve(data, "refund.amount")) == [("refund.amount", 30)]
    assert list(resolve(data, "by_sku.*.qty")) == [("by_sku.a.qty", 2), ("by_sku.b.qty", 3)]
    assert list(resolve(data, "items.1.qty")) == [("items.1.qty", 7)]
    assert list(resolve(data, "missing.amount")) == []
    assert list(resolve(data, "refund.amount.deeper")) == []


def limit(**fields: Any) -> ScopedLimit:
    return ScopedLimit(ArgumentLimit(argument="amount", **fields), "tool")


def test_numeric_limits_fail_closed_and_one_of_is_type_strict() -> None:
    assert check_limit({"amount": 10}, limit(max=10)) == []
    assert check_limit({"amount": 10.01}, limit(max=10))[0].message.endswith("at most 10")
    assert check_limit({"amount": -1}, limit(min=0))[0].message.endswith("at least 0")
    assert "must be a number" in check_limit({"amount": "5"}, limit(max=10))[0].message
    assert "must be a number" in check_limit({"amount": True}, limit(max=10))[0].message
    assert check_limit({}, limit(max=10)) == []
    assert check_limit({"amount": 1}, limit(one_of=(1, 2))) == []
    assert check_limit({"amount": 1.0}, limit(one_of=(1, 2))) == []
    assert check_limit({"amount": True}, limit(one_of=(1, 2)))  # True is not 1
    assert check_limit({"amount": "1"}, limit(one_of=(1, 2)))


def test_canonical_arguments_keys_and_summaries() -> None:
    assert canonical_json({"b": 1.0, "a": [2.5, {"z": None}]}) == '{"a":[2.5,{"z":null}],"b":1}'
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})
    key = idempotency_key("ws_1", "c1", "t1/s1", "refund")
    assert key == idempotency_key("ws_1", "c1", "t1/s1", "refund")
    assert key != idempotency_key("ws_1", "c1", "t1/s2", "refund")
    assert key != idempotency_key("ws_2", "c1", "t1/s1", "refund")
    summary = confirmation_summary("refund", "Refund money.\nMore.", {"note": "x" * 500, "n": 3})
    assert summary.startswith("refund(n=3, note=") and summary.endswith(": Refund money.")
    assert len(summary) < 200
