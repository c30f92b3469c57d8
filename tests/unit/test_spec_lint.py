"""The linter: each code on the broken example, the flow semantics on small specs, and
properties on generated specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from deputy.domain.spec import AgentSpec, lint_errors, lint_spec, load_spec
from deputy.domain.spec.lint import LINT_SEVERITY, LintFinding
from deputy.domain.spec.paths import resolve
from deputy.testing.specs import agent_specs

# Shrinking a failing spec can take Hypothesis minutes; let it finish and report it.
SHRINK_TIMEOUT = 600

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
READ = {"kind": "openapi", "source": "shop", "operation": "op"}

# Every finding in examples/specs/broken.yaml: code, path, and words its message must hold.
BROKEN = [
    ("unknown_exit", "procedures[refund].steps[declined].exit", ["`kept_order`", "`refunded`"]),
    ("unused_exit", "procedures[refund].exits[abandoned]", ["`abandoned`", "never reached"]),
    (
        "invalid_slot_pattern",
        "procedures[refund].slots[reason].pattern",
        ["`reason`", "unterminated character set"],
    ),
    (
        "slot_used_before_asked",
        "procedures[refund].steps[preview].text",
        ["`preview`", "slot `amount`", "filled by `ask_amount`"],
    ),
    (
        "unknown_argument",
        "procedures[refund].steps[lookup].arguments[verbose]",
        ["`lookup_order`", "no parameter `verbose`", "`order_id`"],
    ),
    ("undeclared_slot", "procedures[voucher].steps[ask_code].slot", ["slot `code`", "`voucher`"]),
    (
        "unknown_slot",
        "procedures[voucher].steps[send].arguments[note]",
        ["`{mail}`", "no slot `mail`", "did you mean `email`?"],
    ),
    ("invalid_template", "procedures[voucher].steps[bye].text", ["`bye`", "Single '{'"]),
    ("unused_slot", "procedures[voucher].slots[phone]", ["slot `phone`"]),
    (
        "irreversible_without_confirmation",
        "procedures[voucher].steps[refund_now]",
        ["irreversible tool `issue_refund`", "`confirm`"],
    ),
    (
        "unknown_tool",
        "procedures[voucher].steps[notify].tool",
        ["tool `notify_customer`", "does not declare"],
    ),
    (
        "unknown_step_target",
        "procedures[loop].steps[orphan].next",
        ["`wrap_upp`", "did you mean `wrap_up`?"],
    ),
    ("ignored_next", "procedures[loop].steps[decide].next", ["`decide`", "(`wrap_up`) is never"]),
    ("unreachable_step", "procedures[loop].steps[orphan]", ["`orphan`", "first step `ask_answer`"]),
    ("endless_loop", "procedures[loop].steps[spin]", ["steps `spin`, `spin_more`", "forever"]),
    ("no_exit", "procedures[no_way_out]", ["`no_way_out` has no exit", "first step `greet`"]),
    ("falls_off_end", "procedures[no_way_out].steps[greet]", ["after step `greet`"]),
    (
        "unknown_procedure",
        "policies[refund_cap].applies_to[returns]",
        ["policy `refund_cap`", "procedure `returns`"],
    ),
    (
        "policy_contradicts_limit",
        "procedures[refund].steps[pay].limits[amount]",
        ["step `pay`", "up to 1000", "policy `refund_cap` allows at most 200"],
    ),
    ("unknown_tool", "policies[no_vouchers].forbids_tools[gift_cards]", ["`gift_cards`"]),
    (
        "forbidden_tool_used",
        "procedures[voucher].steps[send].tool",
        ["`send_voucher`", "policy `no_vouchers` forbids"],
    ),
]


def spec(*procedures: dict[str, Any], **extra: Any) -> AgentSpec:
    return AgentSpec.model_validate(
        {"name": "Shop", "goal": "Help.", "procedures": list(procedures), **extra}
    )


def procedure(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    exits = [{"id": "done", "outcome": "resolved"}]
    return {"id": "p", "title": "P", "when": "always", "steps": list(steps), "exits": exits} | extra


def ask(step_id: str, slot: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "kind": "ask", "slot": slot, "text": f"{slot}?", **extra}


def say(step_id: str, text: str = "ok", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "kind": "say", "text": text, **extra}


def end(step_id: str = "finish", text: str = "Bye.") -> dict[str, Any]:
    return {"id": step_id, "kind": "end", "exit": "done", "text": text}


def call(step_id: str, tool: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "kind": "call_tool", "tool": tool, **extra}


def tool(name: str, effect: str = "read", **extra: Any) -> dict[str, Any]:
    return {"name": name, "effect": effect, "binding": READ, **extra}


def codes(findings: list[LintFinding]) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in findings]


def test_the_retail_example_is_lint_clean() -> None:
    retail = load_spec((EXAMPLES / "retail_support.yaml").read_text(encoding="utf-8"))
    assert lint_spec(retail) == []
    assert len(retail.procedures) >= 8 and len(retail.tools) == 14


def test_the_broken_example_holds_each_finding_once() -> None:
    broken = load_spec((EXAMPLES / "broken.yaml").read_text(encoding="utf-8"))
    findings = lint_spec(broken)
    assert sorted(codes(findings)) == sorted((code, path) for code, path, _ in BROKEN)
    for code, path, words in BROKEN:
        [finding] = [f for f in findings if (f.code, f.path) == (code, path)]
        assert finding.severity == LINT_SEVERITY[code]
        for word in words:
            assert word in finding.message, (code, finding.message)
        resolve(broken, finding.path)  # the path names an element of the spec
    assert {code for code, _, _ in BROKEN} == set(LINT_SEVERITY)  # every code is shown
    assert len(lint_errors(findings)) == 15


def test_a_slot_must_be_filled_on_every_path() -> None:
    branchy = procedure(
        {"id": "known", "kind": "check", "condition": "Known customer?", "then": "lookup"},
        ask("ask_order", "order_id", next="use"),
        call("lookup", "find", save_as="order_id"),
        say("use", "Order {order_id}, customer {customer_id}, status {order_id.status}"),
        end(),
        slots=[{"id": "customer_id", "source": "context"}, {"id": "order_id"}],
    )
    assert lint_spec(spec(branchy, tools=[tool("find")])) == []
    one_branch = procedure(
        {"id": "known", "kind": "check", "condition": "Known?", "then": "use"},
        ask("ask_order", "order_id"),
        say("use", "Order {order_id[0]}"),
        end(),
        slots=[{"id": "order_id"}],
    )
    [finding] = lint_spec(spec(one_branch))
    assert (finding.code, finding.path) == (
        "slot_used_before_asked",
        "procedures[p].steps[use].text",
    )


def test_a_loop_keeps_what_holds_around_it() -> None:
    retry = procedure(
        ask("ask_zip", "zip"),
        {"id": "valid", "kind": "check", "condition": "Is {zip} valid?", "then": "finish"},
        say("again", "Try again, {zip} is not valid.", next="ask_zip"),
        end("finish", "Thanks, {zip}."),
        slots=[{"id": "zip"}],
    )
    assert lint_spec(spec(retry)) == []


@pytest.mark.parametrize(
    ("steps", "flagged"),
    [
        pytest.param(
            [{"id": "sure", "kind": "confirm", "text": "Sure?", "on_decline": "refund"}],
            True,
            id="the decline path reaches the call",
        ),
        pytest.param(
            [
                {"id": "sure", "kind": "confirm", "text": "Sure?", "on_decline": "finish"},
                call("first", "refund"),
            ],
            True,
            id="one confirmation covers one irreversible call",
        ),
        pytest.param(
            [{"id": "sure", "kind": "confirm", "text": "Sure?", "on_decline": "finish"}],
            False,
            id="confirmed",
        ),
    ],
)
def test_irreversible_calls_need_a_confirmation_on_every_path(
    steps: list[dict[str, Any]], flagged: bool
) -> None:
    flow = procedure(*steps, call("refund", "refund"), end())
    findings = lint_spec(spec(flow, tools=[tool("refund", "irreversible")]))
    expected = [("irreversible_without_confirmation", "procedures[p].steps[refund]")]
    assert codes(findings) == (expected if flagged else [])


def test_write_tools_need_no_confirmation_and_handoff_uses_escalated_exits() -> None:
    flow = procedure(
        call("note", "add_note"),
        {"id": "human", "kind": "handoff", "text": "A colleague takes over."},
        exits=[{"id": "escalated", "outcome": "escalated"}],
    )
    assert lint_spec(spec(flow, tools=[tool("add_note", "write")])) == []


def test_falling_off_the_end_is_a_warning_when_an_exit_is_reachable() -> None:
    flow = procedure(
        {"id": "happy", "kind": "check", "condition": "Happy?", "then": "finish"},
        say("sorry", "Sorry.", next="tail"),
        end(),
        say("tail", "Bye."),
    )
    [finding] = lint_spec(spec(flow))
    assert (finding.severity, finding.code, finding.path) == (
        "warning",
        "falls_off_end",
        "procedures[p].steps[tail]",
    )


def test_check_otherwise_defaults_to_the_steps_continuation() -> None:
    flow = procedure(
        {"id": "ok", "kind": "check", "condition": "OK?", "then": "finish", "next": "finish"},
        say("never", "Unreachable."),
        end(),
    )
    assert codes(lint_spec(spec(flow))) == [("unreachable_step", "procedures[p].steps[never]")]


def test_positional_template_fields_are_malformed() -> None:
    flow = procedure(say("hi", "Hello {}!"), end())
    [finding] = lint_spec(spec(flow))
    assert finding.code == "invalid_template" and "names no slot" in finding.message


REFUND = tool("refund", "irreversible", limits=[{"argument": "amount", "max": 500, "min": 1}])


def refund_flow(*limits: dict[str, Any]) -> dict[str, Any]:
    return procedure(
        {"id": "sure", "kind": "confirm", "text": "Sure?", "on_decline": "finish"},
        call("pay", "refund", limits=list(limits)),
        end(),
    )


@pytest.mark.parametrize(
    ("policy_limit", "step_limit", "reasons"),
    [
        ({"max": 200}, {"max": 300}, ["allows up to 300 where policy `cap` allows at most 200"]),
        ({"min": 10}, {"min": 5}, ["allows down to 5 where policy `cap` requires at least 10"]),
        ({"max": 200}, {"min": 300}, ["requires at least 300", "no value satisfies both"]),
        ({"min": 10}, {"max": 5}, ["allows at most 5", "no value satisfies both"]),
        ({"one_of": [1, 2]}, {"one_of": [2, 3]}, ["allows `3`, which policy `cap` does not"]),
        ({"max": 200}, {"one_of": [50, 250]}, ["allows `250`"]),
        ({"max": 200}, {"max": 150}, []),
    ],
)
def test_a_step_limit_looser_than_a_policy_contradicts_it(
    policy_limit: dict[str, Any], step_limit: dict[str, Any], reasons: list[str]
) -> None:
    policy = {
        "id": "cap",
        "text": "Cap refunds.",
        "applies_to": ["p"],
        "limits": [{"tool": "refund", "argument": "amount", **policy_limit}],
    }
    findings = lint_spec(
        spec(refund_flow({"argument": "amount", **step_limit}), tools=[REFUND], policies=[policy])
    )
    if not reasons:
        assert findings == []
        return
    [finding] = findings
    assert (finding.code, finding.path) == (
        "policy_contradicts_limit",
        "procedures[p].steps[pay].limits[amount]",
    )
    assert finding.message.startswith("the limit on `amount` of `refund` in step `pay`")
    for reason in reasons:
        assert reason in finding.message


def test_a_tool_limit_contradicts_only_policies_that_apply_everywhere() -> None:
    cap = {"tool": "refund", "argument": "amount", "max": 200}
    everywhere = {"id": "cap", "text": "Cap.", "limits": [cap]}
    [finding] = lint_spec(spec(refund_flow(), tools=[REFUND], policies=[everywhere]))
    assert finding.path == "tools[refund].limits[amount]"
    assert finding.message == (
        "tool `refund`'s own limit on `amount` allows up to 500 where policy `cap` allows at "
        "most 200"
    )
    somewhere = {**everywhere, "applies_to": ["p"]}
    assert lint_spec(spec(refund_flow(), tools=[REFUND], policies=[somewhere])) == []


def test_policies_name_known_procedures_and_tools() -> None:
    policy = {
        "id": "rule",
        "text": "Rule.",
        "applies_to": ["other"],
        "limits": [{"tool": "missing", "argument": "x", "max": 1}],
        "forbids_tools": ["refund"],
    }
    findings = lint_spec(spec(refund_flow(), tools=[REFUND], policies=[policy]))
    assert codes(findings) == [
        ("unknown_procedure", "policies[rule].applies_to[other]"),
        ("unknown_tool", "policies[rule].limits[missing:x]"),
    ]  # `refund` is forbidden in `other` only, so `p` may call it


@pytest.mark.timeout(SHRINK_TIMEOUT)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_specs())
def test_lint_never_crashes_and_every_finding_points_at_the_spec(generated: AgentSpec) -> None:
    findings = lint_spec(generated)
    for finding in findings:
        assert finding.severity == LINT_SEVERITY[finding.code]
        resolve(generated, finding.path)
        assert finding.message
    assert lint_spec(generated) == findings  # deterministic
