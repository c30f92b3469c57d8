"""The tool executor with fakes: the order of checks, limits, confirmation, idempotency (including a
crash between the call and its acknowledgement), retries, redaction and untrusted output."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from deputy.domain.spec import ArgumentLimit
from deputy.testing.tools import InMemoryCallLedger
from deputy.tools.confirmation import Confirmation, arguments_sha256
from deputy.tools.ledger import CallFinish
from tests.unit.tools_setup import (
    CTX,
    REFUND,
    confirmed,
    executor,
    run,
    shop,
)

# ---- refusals before anything leaves ---------------------------------------------------------


def test_unknown_tool_is_refused_and_recorded() -> None:
    ledger, source = InMemoryCallLedger(), shop()
    result = run(executor(ledger, source).call(CTX, "delete_everything", {}))
    assert (result.status, result.code) == ("refused", "unknown_tool")
    assert "get_order" in result.details["known_tools"]
    assert source.invocations == []
    [record] = ledger.records.values()
    assert (record.status, record.code, record.idempotency_key) == ("refused", "unknown_tool", None)


def test_policy_forbids_a_tool_only_where_it_applies() -> None:
    source = shop()
    tools = executor(source=source)
    ctx = confirmed(replace(CTX, procedure_id="escalations"), "refund_order", REFUND)
    refused = run(tools.call(ctx, "refund_order", REFUND))
    assert (refused.status, refused.code) == ("refused", "forbidden_by_policy")
    assert refused.details == {"policies": ["no_refunds_while_escalating"]}
    assert source.executions == []
    allowed = run(tools.call(replace(ctx, procedure_id="refunds"), "refund_order", REFUND))
    assert allowed.status == "succeeded"
    # Outside any procedure every policy applies: a scoped rule is never skipped by omission.
    unplaced = replace(ctx, procedure_id=None, step_key="t9/s1")
    assert run(tools.call(unplaced, "refund_order", REFUND)).code == "forbidden_by_policy"


def test_arguments_are_validated_against_the_source_schema_with_paths() -> None:
    source = shop()
    bad = {"order_id": "W1001", "amount": "eighty", "extra": True}
    result = run(executor(source=source).call(CTX, "refund_order", bad))
    assert (result.status, result.code) == ("refused", "invalid_arguments")
    paths = {error["path"] for error in result.details["errors"]}
    assert paths == {"(arguments)", "order_id", "amount"}
    assert "extra" in result.message
    assert source.invocations == []


def test_nested_paths_and_spec_parameters_are_validated() -> None:
    tools = executor()
    result = run(tools.call(CTX, "add_items", {"order_id": "1", "items": [{"sku": "a"}]}))
    assert result.code == "invalid_arguments"
    assert result.details["errors"][0]["path"] == "items.0"
    assert "quantity" in result.details["errors"][0]["message"]
    missing = run(tools.call(CTX, "cancel_order", {}))  # the spec's own `parameters`
    assert missing.code == "invalid_arguments"
    not_an_object = run(tools.call(CTX, "get_order", ["#W1"]))  # type: ignore[arg-type]
    assert not_an_object.code == "invalid_arguments"


def test_tool_step_and_policy_limits_are_enforced_in_code() -> None:
    source = shop()
    tools = executor(source=source)
    big = {"order_id": "#W1001", "amount": 250}
    over_tool = run(tools.call(confirmed(CTX, "refund_order", big), "refund_order", big))
    assert (over_tool.status, over_tool.code) == ("refused", "limit_exceeded")
    assert over_tool.message.startswith("Refunds above $200 need a human.")
    assert over_tool.details["violations"][0]["origin"] == "tool"

    mid = {"order_id": "#W1001", "amount": 180}
    ctx = confirmed(CTX, "refund_order", mid)
    over_policy = run(tools.call(ctx, "refund_order", mid))
    assert over_policy.code == "limit_exceeded"
    assert over_policy.details["violations"][0]["origin"] == "policy:refund_cap_in_refunds"

    step = (ArgumentLimit(argument="amount", max=50),)
    ctx = confirmed(replace(CTX, step_limits=step), "refund_order", REFUND)
    over_step = run(tools.call(ctx, "refund_order", REFUND))
    assert over_step.code == "limit_exceeded"
    assert over_step.details["violations"][0]["origin"] == "step"
    assert source.executions == []


def test_limits_fan_out_over_lists_and_check_allowed_values() -> None:
    tools = executor()
    items = [{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 9}, {"sku": "c", "quantity": 0}]
    result = run(tools.call(CTX, "add_items", {"order_id": "1", "items": items}))
    assert result.code == "limit_exceeded"
    assert [v["argument"] for v in result.details["violations"]] == [
        "items.1.quantity",
        "items.2.quantity",
    ]
    shipping = {"order_id": "1", "items": [{"sku": "a", "quantity": 1}], "shipping": "drone"}
    result = run(tools.call(replace(CTX, step_key="t1/s2"), "add_items", shipping))
    assert result.code == "limit_exceeded"
    assert "one of 'standard', 'express'" in result.message


def test_calls_per_conversation_are_counted_in_the_ledger() -> None:
    ledger, source = InMemoryCallLedger(), shop()
    tools = executor(ledger, source)
    args = {"order_id": "1", "items": [{"sku": "a", "quantity": 1}]}
    run(tools.call(replace(CTX, step_key="s0"), "add_items", {"order_id": "1"}))  # refused
    for n in (1, 2):
        assert run(tools.call(replace(CTX, step_key=f"s{n}"), "add_items", args)).ok
    third = run(tools.call(replace(CTX, step_key="s3"), "add_items", args))
    assert (third.status, third.code) == ("refused", "call_limit_reached")
    again = run(tools.call(replace(CTX, step_key="s2"), "add_items", args))
    assert again.replayed and again.ok  # an earlier step is not another call
    other = run(tools.call(replace(CTX, conversation_id="conv_2"), "add_items", args))
    assert other.ok
    assert len(source.executed("addItems")) == 3


# ---- confirmation ----------------------------------------------------------------------------


def test_irreversible_needs_a_confirmation_of_exactly_this_call() -> None:
    source = shop()
    tools = executor(source=source)
    first = run(tools.call(CTX, "refund_order", REFUND))
    assert (first.status, first.code) == ("refused", "confirmation_required")
    assert first.details["arguments_sha256"] == arguments_sha256(REFUND)
    assert "refund_order(amount=80" in first.details["summary"]
    assert "Refund money" in first.details["summary"]
    other_amount = {**REFUND, "amount": 90}
    wrong = confirmed(CTX, "refund_order", other_amount)
    assert run(tools.call(wrong, "refund_order", REFUND)).code == "confirmation_required"
    other_tool = confirmed(CTX, "cancel_order", REFUND)
    assert run(tools.call(other_tool, "refund_order", REFUND)).code == "confirmation_required"
    assert source.executions == []
    # Same step after the customer said yes: the earlier refusals do not block it.
    accepted = run(tools.call(confirmed(CTX, "refund_order", REFUND), "refund_order", REFUND))
    assert accepted.status == "succeeded"
    assert accepted.output == {"refunded": 80, "status": "ok"}
    assert source.executed("refundOrder") == [REFUND]


def test_confirmation_matches_canonical_arguments() -> None:
    reordered = {"reason": "damaged", "amount": 80.0, "order_id": "#W1001"}
    ctx = replace(CTX, confirmations=(Confirmation("refund_order", arguments_sha256(REFUND), "m"),))
    assert run(executor().call(ctx, "refund_order", reordered)).ok


# ---- idempotency -----------------------------------------------------------------------------


def test_a_repeated_step_replays_and_never_repeats_the_call() -> None:
    ledger, source = InMemoryCallLedger(), shop()
    tools = executor(ledger, source)
    ctx = confirmed(CTX, "refund_order", REFUND)
    first = run(tools.call(ctx, "refund_order", REFUND))
    again = run(executor(ledger, source).call(ctx, "refund_order", REFUND))
    assert first.ok and not first.replayed
    assert again.ok and again.replayed and again.output == first.output
    assert again.call_id == first.call_id and again.idempotency_key == first.idempotency_key
    assert len(source.executions) == 1
    assert source.executions[0].idempotency_key == first.idempotency_key

    different = {**REFUND, "amount": 20}
    conflict = run(tools.call(confirmed(CTX, "refund_order", different), "refund_order", different))
    assert (conflict.status, conflict.code) == ("refused", "idempotency_conflict")
    next_step = replace(ctx, step_key="t2/s1")
    assert not run(tools.call(next_step, "refund_order", REFUND)).replayed
    assert len(source.executions) == 2


def test_reads_carry_no_key_and_are_not_replayed() -> None:
    source = shop()
    tools = executor(source=source)
    for _ in range(2):
        assert run(tools.call(CTX, "get_order", {"order_id": "#W1"})).ok
    assert [i.idempotency_key for i in source.executions] == [None, None]


class CrashingLedger(InMemoryCallLedger):
    """The process "dies" after the request left, before its outcome is stored."""

    class Crash(BaseException):
        pass

    def __init__(self) -> None:
        super().__init__()
        self.crash = True

    async def finish(self, call_id: str, finish: CallFinish) -> Any:
        if self.crash:
            self.crash = False
            raise self.Crash
        return await super().finish(call_id, finish)


@pytest.mark.parametrize("honours", [False, True])
def test_crash_between_call_and_acknowledgement(honours: bool) -> None:
    ledger, source = CrashingLedger(), shop(honours=honours)
    ctx = confirmed(CTX, "refund_order", REFUND)
    with pytest.raises(CrashingLedger.Crash):
        run(executor(ledger, source).call(ctx, "refund_order", REFUND))
    [pending] = ledger.records.values()
    assert pending.status == "pending" and len(source.executions) == 1

    retried = run(executor(ledger, source).call(ctx, "refund_order", REFUND))
    assert len(source.executions) == 1  # never carried out twice
    if honours:
        assert (retried.status, retried.output) == ("succeeded", {"refunded": 80, "status": "ok"})
        assert len(source.invocations) == 2  # re-sent under the same key, deduplicated
        assert source.invocations[1].idempotency_key == source.invocations[0].idempotency_key
        assert ledger.records[pending.id].attempts == 2
    else:
        assert (retried.status, retried.code) == ("outcome_unknown", "outcome_unknown")
        assert "human" in retried.message
        assert len(source.invocations) == 1  # not re-sent
        assert ledger.records[pending.id].status == "outcome_unknown"
        later = run(executor(ledger, source).call(ctx, "refund_order", REFUND))
        assert later.status == "outcome_unknown" and len(source.invocations) == 1
