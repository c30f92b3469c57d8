"""The semantic diff: one test per area, the permission-widening rules, the text, and the
self/mirror properties on generated pairs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from deputy.domain.spec import AgentSpec, SpecChange, diff_specs, load_spec, render_diff_text
from deputy.domain.spec.paths import resolve
from deputy.testing.specs import agent_spec_pairs

# Shrinking a failing spec can take Hypothesis minutes; let it finish and report it.
SHRINK_TIMEOUT = 600

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "specs"
OPENAPI = {"kind": "openapi", "source": "shop", "operation": "refundOrder"}
BASE: dict[str, Any] = {
    "name": "Refunds",
    "goal": "Refund orders within policy.",
    "procedures": [
        {
            "id": "return_order",
            "title": "Return an order",
            "when": "The customer wants to return an order.",
            "slots": [{"id": "order_id"}],
            "steps": [
                {"id": "ask_order", "kind": "ask", "slot": "order_id", "text": "Which order?"},
                {"id": "sure", "kind": "confirm", "text": "Refund it?", "on_decline": "kept"},
                {
                    "id": "refund",
                    "kind": "call_tool",
                    "tool": "refund_order",
                    "arguments": {"order_id": "{order_id}"},
                    "limits": [{"argument": "amount", "max": 100}],
                },
                {"id": "done", "kind": "end", "exit": "refunded", "text": "Refunded."},
                {"id": "kept", "kind": "end", "exit": "kept", "text": "Kept."},
            ],
            "exits": [
                {"id": "refunded", "outcome": "resolved"},
                {"id": "kept", "outcome": "resolved"},
            ],
        }
    ],
    "policies": [
        {
            "id": "cap",
            "text": "Never refund more than 200.",
            "applies_to": ["return_order"],
            "limits": [{"tool": "refund_order", "argument": "amount", "max": 200}],
            "forbids_tools": ["delete_account"],
        }
    ],
    "tools": [
        {
            "name": "refund_order",
            "effect": "irreversible",
            "binding": OPENAPI,
            "limits": [{"argument": "amount", "max": 500, "one_of": [10, 20]}],
            "max_calls_per_conversation": 2,
        },
        {"name": "issue_refund", "effect": "irreversible", "binding": OPENAPI},
        {"name": "lookup", "effect": "read", "binding": OPENAPI, "retries": 1},
        {"name": "delete_account", "effect": "irreversible", "binding": OPENAPI},
    ],
    "knowledge": {"sources": [{"id": "faq", "title": "FAQ"}]},
    "guardrails": {"preset": "standard", "mask_pii": True, "forbidden_topics": ["politics"]},
    "outcomes": {"billing": {"model": "outcome_based", "price_per_resolution": "0.85"}},
    "mode": "guided",
}

Row = tuple[str, str, str, Any, Any, bool]


def rows(old: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> list[Row]:
    new = copy.deepcopy(old)
    change(new)
    diff = diff_specs(AgentSpec.model_validate(old), AgentSpec.model_validate(new))
    return [(c.kind, c.area, c.path, c.before, c.after, c.widens_permissions) for c in diff.changes]


def only(change: Callable[[dict[str, Any]], None]) -> SpecChange:
    new = copy.deepcopy(BASE)
    change(new)
    [result] = diff_specs(AgentSpec.model_validate(BASE), AgentSpec.model_validate(new)).changes
    return result


def procedure(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = spec["procedures"][0]
    return result


def step(spec: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in procedure(spec)["steps"] if s["id"] == step_id)


def tool(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in spec["tools"] if t["name"] == name)


def test_a_spec_has_no_changes_from_itself() -> None:
    retail = load_spec((EXAMPLES / "retail_support.yaml").read_text(encoding="utf-8"))
    diff = diff_specs(retail, retail)
    assert diff.empty and not diff.widens_permissions
    assert render_diff_text(diff) == "No changes.\n"


def test_a_step_calling_another_tool_is_one_readable_change() -> None:
    change = only(lambda s: step(s, "refund").update(tool="issue_refund"))
    assert (change.kind, change.area, change.path) == (
        "changed",
        "step",
        "procedures[return_order].steps[refund].tool",
    )
    assert (change.before, change.after) == ("refund_order", "issue_refund")
    assert change.summary == "step `refund` now calls `issue_refund` instead of `refund_order`"
    assert change.widens_permissions
    assert change.widens_because == "the step now calls `issue_refund` (irreversible)"


def test_steps_are_matched_by_id_and_compared_field_by_field() -> None:
    def edit(s: dict[str, Any]) -> None:
        steps = procedure(s)["steps"]
        steps.insert(1, {"id": "lookup", "kind": "call_tool", "tool": "lookup"})
        step(s, "ask_order")["text"] = "Which order, please?"
        step(s, "refund")["arguments"] = {"order_id": "{order_id}", "note": "x"}
        step(s, "sure")["on_decline"] = "done"

    path = "procedures[return_order].steps"
    assert rows(BASE, edit) == [
        ("added", "step", f"{path}[lookup]", None, {**edit_step_defaults("lookup")}, False),
        (
            "changed",
            "step",
            f"{path}[ask_order].text",
            "Which order?",
            "Which order, please?",
            False,
        ),
        ("changed", "step", f"{path}[sure].on_decline", "kept", "done", False),
        ("added", "step", f"{path}[refund].arguments[note]", None, "x", False),
    ]


def edit_step_defaults(step_id: str) -> dict[str, Any]:
    return AgentSpec.model_validate(
        {
            "name": "n",
            "goal": "g",
            "procedures": [
                {
                    "id": "p",
                    "title": "t",
                    "when": "w",
                    "steps": [{"id": step_id, "kind": "call_tool", "tool": "lookup"}],
                }
            ],
        }
    ).model_dump(mode="json")["procedures"][0]["steps"][0]


def test_reordered_steps_and_removed_confirmations() -> None:
    def edit(s: dict[str, Any]) -> None:
        steps = procedure(s)["steps"]
        steps[:] = [steps[0], steps[2], steps[3], steps[4]]  # no confirm step
        steps[1], steps[2] = steps[2], steps[1]

    changes = rows(BASE, edit)
    removed, order = changes
    assert removed[:3] == ("removed", "step", "procedures[return_order].steps[sure]")
    assert removed[5] is True
    assert order == (
        "changed",
        "step",
        "procedures[return_order].steps",
        ["ask_order", "refund", "done", "kept"],
        ["ask_order", "done", "refund", "kept"],
        False,
    )


@pytest.mark.parametrize(
    ("edit", "area", "path", "widens"),
    [
        (
            lambda s: procedure(s).update(when="Always."),
            "procedure",
            "procedures[return_order].when",
            False,
        ),
        (
            lambda s: procedure(s)["slots"].append({"id": "reason"}),
            "slot",
            "procedures[return_order].slots[reason]",
            False,
        ),
        (
            lambda s: procedure(s)["slots"][0].update(type="integer"),
            "slot",
            "procedures[return_order].slots[order_id].type",
            False,
        ),
        (
            lambda s: procedure(s)["exits"][1].update(outcome="abandoned"),
            "exit",
            "procedures[return_order].exits[kept].outcome",
            False,
        ),
        (lambda s: s.update(name="Refund desk"), "name", "name", False),
        (lambda s: s.update(goal="Refund faster."), "goal", "goal", False),
        (lambda s: s.update(persona={"name": "Ana"}), "persona", "persona.name", False),
        (lambda s: s.update(languages=["fr", "en"]), "languages", "languages", False),
        (lambda s: s.update(mode="reasoning"), "mode", "mode", True),
        (
            lambda s: s["knowledge"]["sources"].append({"id": "terms", "title": "Terms"}),
            "knowledge",
            "knowledge.sources[terms]",
            False,
        ),
        (lambda s: s["knowledge"].update(top_k=8), "knowledge", "knowledge.top_k", False),
        (
            lambda s: s.update(channels={"voice": {"enabled": True}}),
            "channels",
            "channels.voice.enabled",
            False,
        ),
        (
            lambda s: s.update(escalation={"rules": [{"id": "angry", "when": "Angry."}]}),
            "escalation",
            "escalation.rules[angry]",
            False,
        ),
        (
            lambda s: s["outcomes"]["billing"].update(price_per_resolution="0.95"),
            "outcomes",
            "outcomes.billing.price_per_resolution",
            False,
        ),
        (
            lambda s: s.update(autonomy={"canary_percent": 20}),
            "autonomy",
            "autonomy.canary_percent",
            False,
        ),
        (lambda s: s.update(slos={"latency_p95_ms": 3000}), "slos", "slos.latency_p95_ms", False),
        (
            lambda s: s["policies"][0].update(text="Never more than 100."),
            "policy",
            "policies[cap].text",
            False,
        ),
        (
            lambda s: tool(s, "lookup").update(timeout_seconds=5),
            "tool",
            "tools[lookup].timeout_seconds",
            False,
        ),
        (
            lambda s: tool(s, "lookup").update(description="Look up."),
            "tool",
            "tools[lookup].description",
            False,
        ),
    ],
)
def test_each_area(
    edit: Callable[[dict[str, Any]], None], area: str, path: str, widens: bool
) -> None:
    change = only(edit)
    assert (change.area, change.path, change.widens_permissions) == (area, path, widens)


def test_prices_diff_as_exact_decimal_strings() -> None:
    change = only(lambda s: s["outcomes"]["billing"].update(price_per_resolution="0.95"))
    assert (change.before, change.after) == ("0.85", "0.95")


WIDENING: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "new write tool",
        lambda s: s["tools"].append({"name": "note", "effect": "write", "binding": OPENAPI}),
        "tools[note]",
        "adds the write tool `note`",
    ),
    (
        "weaker effect",
        lambda s: tool(s, "delete_account").update(effect="write"),
        "tools[delete_account].effect",
        "changes the effect of `delete_account` from irreversible to write",
    ),
    (
        "stronger effect",
        lambda s: tool(s, "lookup").update(effect="write", retries=0),
        "tools[lookup].effect",
        "changes the effect of `lookup` from read to write",
    ),
    (
        "tool limit raised",
        lambda s: tool(s, "refund_order")["limits"][0].update(max=900),
        "tools[refund_order].limits[amount].max",
        "raises or removes a maximum",
    ),
    (
        "tool limit removed",
        lambda s: tool(s, "refund_order").update(limits=[]),
        "tools[refund_order].limits[amount]",
        "removes the limit `amount`",
    ),
    (
        "allowed value added",
        lambda s: tool(s, "refund_order")["limits"][0]["one_of"].append(30),
        "tools[refund_order].limits[amount].one_of[30]",
        "allows one more value, 30",
    ),
    (
        "step limit removed",
        lambda s: (
            step(s, "refund")["limits"][0].pop("max")
            and step(s, "refund")["limits"][0].update(min=1)
        ),
        "procedures[return_order].steps[refund].limits[amount].max",
        "raises or removes a maximum",
    ),
    (
        "more calls",
        lambda s: tool(s, "refund_order").update(max_calls_per_conversation=None),
        "tools[refund_order].max_calls_per_conversation",
        "allows more calls",
    ),
    (
        "more retries",
        lambda s: tool(s, "lookup").update(retries=3),
        "tools[lookup].retries",
        "retries `lookup` up to 3 times",
    ),
    (
        "rebound",
        lambda s: tool(s, "issue_refund").update(binding={**OPENAPI, "operation": "refundAll"}),
        "tools[issue_refund].binding",
        "binds the irreversible tool `issue_refund` to another operation",
    ),
    ("policy removed", lambda s: s.update(policies=[]), "policies[cap]", "removes policy `cap`"),
    (
        "policy limit loosened",
        lambda s: s["policies"][0]["limits"][0].update(max=300),
        "policies[cap].limits[refund_order:amount].max",
        "raises or removes a maximum",
    ),
    (
        "policy limit removed",
        lambda s: s["policies"][0].update(limits=[]),
        "policies[cap].limits[refund_order:amount]",
        "removes the limit `refund_order:amount`",
    ),
    (
        "forbids less",
        lambda s: s["policies"][0].update(forbids_tools=[]),
        "policies[cap].forbids_tools[delete_account]",
        "policy `cap` no longer forbids `delete_account`",
    ),
    (
        "applies to fewer",
        lambda s: (
            s["procedures"].append({**procedure(s), "id": "other"})
            or s["policies"][0].update(applies_to=["other"])
        ),
        "policies[cap].applies_to[return_order]",
        "policy `cap` applies to fewer procedures",
    ),
    (
        "weaker preset",
        lambda s: s["guardrails"].update(preset="minimal"),
        "guardrails.preset",
        "weakens the guardrail preset from standard to minimal",
    ),
    (
        "check off",
        lambda s: s["guardrails"].update(mask_pii=False),
        "guardrails.mask_pii",
        "turns off `mask_pii`",
    ),
    (
        "topic allowed",
        lambda s: s["guardrails"].update(forbidden_topics=[]),
        "guardrails.forbidden_topics[politics]",
        'no longer forbids the topic "politics"',
    ),
    (
        "auto deploy",
        lambda s: s.update(autonomy={"mode": "auto_with_rollback"}),
        "autonomy.mode",
        "new versions deploy without a reviewer (auto_with_rollback)",
    ),
    (
        "reasoning",
        lambda s: s.update(mode=None),
        "mode",
        "the model decides each step (reasoning mode) instead of following the procedure",
    ),
    (
        "new acting step",
        lambda s: procedure(s)["steps"].insert(
            3, {"id": "wipe", "kind": "call_tool", "tool": "delete_account"}
        ),
        "procedures[return_order].steps[wipe]",
        "the procedure now calls `delete_account` (irreversible)",
    ),
    (
        "confirm becomes say",
        lambda s: step(s, "sure").update(kind="say", on_decline=None),
        "procedures[return_order].steps[sure].kind",
        "step `sure` no longer asks for confirmation",
    ),
]


@pytest.mark.parametrize(
    ("edit", "path", "because"),
    [pytest.param(edit, path, because, id=name) for name, edit, path, because in WIDENING],
)
def test_changes_that_widen_permissions_are_flagged(
    edit: Callable[[dict[str, Any]], None], path: str, because: str
) -> None:
    new = copy.deepcopy(BASE)
    edit(new)
    diff = diff_specs(AgentSpec.model_validate(BASE), AgentSpec.model_validate(new))
    [change] = [c for c in diff.changes if c.path == path]
    assert change.widens_permissions and change.widens_because == because
    assert diff.widens_permissions


NARROWING: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    (
        "new read tool",
        lambda s: s["tools"].append({"name": "faq", "effect": "read", "binding": OPENAPI}),
    ),
    ("limit lowered", lambda s: tool(s, "refund_order")["limits"][0].update(max=50)),
    ("limit added", lambda s: tool(s, "lookup").update(limits=[{"argument": "q", "max": 1}])),
    ("value removed", lambda s: tool(s, "refund_order")["limits"][0].update(one_of=[10])),
    ("fewer calls", lambda s: tool(s, "refund_order").update(max_calls_per_conversation=1)),
    ("policy added", lambda s: s["policies"].append({"id": "polite", "text": "Be polite."})),
    ("policy everywhere", lambda s: s["policies"][0].update(applies_to=[])),
    ("forbids more", lambda s: s["policies"][0]["forbids_tools"].append("issue_refund")),
    ("stronger preset", lambda s: s["guardrails"].update(preset="regulated")),
    ("read binding", lambda s: tool(s, "lookup").update(binding={**OPENAPI, "operation": "find"})),
    ("tool removed", lambda s: s.update(tools=s["tools"][:3])),
    (
        "read step",
        lambda s: procedure(s)["steps"].insert(
            1, {"id": "peek", "kind": "call_tool", "tool": "lookup"}
        ),
    ),
]


@pytest.mark.parametrize(("edit"), [pytest.param(edit, id=name) for name, edit in NARROWING])
def test_changes_that_do_not_widen_permissions(edit: Callable[[dict[str, Any]], None]) -> None:
    new = copy.deepcopy(BASE)
    edit(new)
    diff = diff_specs(AgentSpec.model_validate(BASE), AgentSpec.model_validate(new))
    assert diff.changes and not diff.widens_permissions


def test_the_review_text_puts_widening_changes_first() -> None:
    new = copy.deepcopy(BASE)
    new["goal"] = "Refund faster."
    step(new, "refund")["tool"] = "issue_refund"
    new["guardrails"]["preset"] = "regulated"
    text = render_diff_text(
        diff_specs(AgentSpec.model_validate(BASE), AgentSpec.model_validate(new))
    )
    assert text == (
        "3 changes, 1 widening what the agent may do.\n"
        "\n"
        "! Widens permissions (review these first):\n"
        "  ~ procedures[return_order].steps[refund].tool: step `refund` now calls `issue_refund`"
        " instead of `refund_order`  [widens: the step now calls `issue_refund` (irreversible)]\n"
        "\n"
        "goal:\n"
        '  ~ goal: `goal` changed from "Refund orders within policy." to "Refund faster."\n'
        "\n"
        "step:\n"
        "  ! ~ procedures[return_order].steps[refund].tool: step `refund` now calls `issue_refund`"
        " instead of `refund_order`  [widens: the step now calls `issue_refund` (irreversible)]\n"
        "\n"
        "guardrails:\n"
        '  ~ guardrails.preset: `guardrails.preset` changed from "standard" to "regulated"\n'
    )


def test_additions_and_removals_are_described() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["tools"].append({"name": "note", "effect": "write", "binding": OPENAPI})
        s["procedures"].append({**procedure(s), "id": "exchange", "title": "Exchange"})
        del procedure(s)["exits"][1]

    new = copy.deepcopy(BASE)
    edit(new)
    diff = diff_specs(AgentSpec.model_validate(BASE), AgentSpec.model_validate(new))
    summaries = {c.path: c.summary for c in diff.changes}
    assert summaries == {
        "procedures[return_order].exits[kept]": "exit `kept` removed from procedure `return_order`",
        "procedures[exchange]": "new procedure `exchange` (Exchange)",
        "tools[note]": "new tool `note` (write, openapi)",
    }
    assert diff.widens_permissions  # the new procedure calls the irreversible `refund_order`


def mirrored(change: SpecChange) -> tuple[str, str, str, str, str]:
    kind = {"added": "removed", "removed": "added"}.get(change.kind, change.kind)
    return (kind, change.area, change.path, repr(change.after), repr(change.before))


def plain(change: SpecChange) -> tuple[str, str, str, str, str]:
    return (change.kind, change.area, change.path, repr(change.before), repr(change.after))


@pytest.mark.timeout(SHRINK_TIMEOUT)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_spec_pairs())
def test_diffs_are_empty_on_equal_specs_and_mirror_images(
    pair: tuple[AgentSpec, AgentSpec],
) -> None:
    old, new = pair
    assert diff_specs(old, old).empty and diff_specs(new, new).empty
    forward, backward = diff_specs(old, new), diff_specs(new, old)
    assert sorted(map(mirrored, forward.changes)) == sorted(map(plain, backward.changes))
    for change in forward.changes:  # each path names an element where it exists
        if change.kind != "added":
            resolve(old, change.path)
        if change.kind != "removed":
            resolve(new, change.path)
    text = render_diff_text(forward)
    assert text.startswith("No changes.") == forward.empty
    assert all(change.path in text for change in forward.changes)
