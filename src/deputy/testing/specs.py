"""Hypothesis strategies for structurally valid AgentSpecs (needs `hypothesis`, a dev extra).

`agent_specs()` draws specs the model accepts: procedures with steps of every kind, branching
and loops, slots, exits, tools of every binding and effect, policies with limits, and every
operational section, with texts that are hard to serialise (YAML look-alikes, line breaks,
templates, unicode). Ids come mostly from a small vocabulary, so references usually resolve and
two drawn specs share ids (which makes their diff interesting); some references dangle on
purpose, so the linter has something to find. `agent_spec_pairs()` draws two specs that share
parts, for diff properties."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from deputy.domain.spec import AgentSpec

_VOCABULARY = ("a", "b", "c", "order", "refund", "cancel", "amount", "items", "x_1")
_ARGUMENTS = ("order_id", "amount", "reason", "items")
_STEP_KINDS = ("ask", "call_tool", "check", "confirm", "say", "handoff", "end")
_TRICKY = (
    "yes", "no", "null", "~", "true", "False", "123", "017", "1e5", "0x1f", "1:20", "2024-01-01",
    "- item", "a: b", "#hash", " leading", "trailing ", "multi\nline\n", "multi\nline",
    "ends with newlines\n\n", "\nstarts with one", "tab\there", "quote ' and \"", "{{literal}}",
    "ünïcödé ✓", "日本語", "line\u2028separator", "a\r\nb", "nul\x00byte", "<<", "!tag",
    "&anchor", "*alias", "%percent", "@at", "`tick`", "[not, a, list]", "{not: a map}", "...",
    "---", ".inf", ".nan", "- ", ": ", "\t", "\x85next", "\ufeffbom",
)  # fmt: skip

ids = st.one_of(st.sampled_from(_VOCABULARY), st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True))
_characters = st.characters(codec="utf-8")  # no lone surrogates
_plain = st.text(_characters, max_size=24)


def texts(names: tuple[str, ...] = _VOCABULARY, *, min_size: int = 0) -> st.SearchStrategy[str]:
    """Texts, some of them templates over `names` (`{order}`), some hard to serialise."""
    templated = st.builds(
        lambda before, name, after: f"{before}{{{name}}}{after}",
        _plain,
        st.sampled_from(names) if names else ids,
        _plain,
    )
    return st.one_of(_plain, st.sampled_from(_TRICKY), templated).filter(
        lambda text: len(text) >= min_size
    )


_scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    _plain,
)
json_values = st.recursive(
    st.none() | _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_plain, children, max_size=3),
    max_leaves=6,
)
_arguments_paths = st.one_of(
    st.sampled_from(_ARGUMENTS),
    st.sampled_from(("items.*.quantity", "refund.amount", "a-b", "x*")),
)


@st.composite
def provenances(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {"source": draw(st.sampled_from(("policy.md", "mat_1", "call 7")))}
    result["kind"] = draw(st.sampled_from(("document", "transcript", "goal", "manual")))
    if draw(st.booleans()):
        result["span"] = draw(st.sampled_from(("lines 3-9", "turns 4-7", "page 2")))
    if draw(st.booleans()):
        start = draw(st.integers(0, 5000))
        result |= {"start": start, "end": start + draw(st.integers(0, 500))}
    if draw(st.booleans()):
        result["quote"] = draw(texts())
    return result


_optional_provenance = st.none() | provenances()


@st.composite
def limits(draw: st.DrawFn, tools: tuple[str, ...] = ()) -> dict[str, Any]:
    """An argument limit; with `tools`, a policy limit on one of them."""
    result: dict[str, Any] = {"argument": draw(_arguments_paths)}
    if tools:
        result["tool"] = draw(st.sampled_from((*tools, "ghost_tool")))
    bounds = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-1000, 1000)
    low, high = sorted((draw(bounds), draw(bounds)))
    chosen = draw(st.sets(st.sampled_from(("max", "min", "one_of")), min_size=1))
    if "max" in chosen:
        result["max"] = high
    if "min" in chosen:
        result["min"] = low
    if "one_of" in chosen:
        result["one_of"] = draw(st.lists(_scalars, min_size=1, max_size=4))
    if draw(st.booleans()):
        result["message"] = draw(texts())
    return result


@st.composite
def steps(
    draw: st.DrawFn,
    step_id: str,
    *,
    targets: tuple[str, ...],
    slots: tuple[str, ...],
    tools: tuple[str, ...],
    exits: tuple[str, ...],
) -> dict[str, Any]:
    kind = draw(st.sampled_from(_STEP_KINDS))
    target = st.sampled_from(targets)
    step: dict[str, Any] = {"id": step_id, "kind": kind}
    words = texts(slots, min_size=1 if kind in ("ask", "confirm") else 0)
    step["text"] = draw(words)
    if kind == "ask":
        step["slot"] = draw(st.sampled_from(slots))
    elif kind == "call_tool":
        step["tool"] = draw(st.sampled_from((*tools, "ghost_tool")))
        step["arguments"] = draw(
            st.dictionaries(
                st.sampled_from((*_ARGUMENTS, "extra")), json_values | texts(slots), max_size=3
            )
        )
        if draw(st.booleans()):
            step["save_as"] = draw(st.sampled_from(slots))
        step["limits"] = draw(st.lists(limits(), max_size=2))
    elif kind == "check":
        step["condition"] = draw(texts(slots))
        step["then"] = draw(target)
        if draw(st.booleans()):
            step["otherwise"] = draw(target)
    elif kind == "confirm":
        step["on_decline"] = draw(target)
    elif kind == "handoff" and draw(st.booleans()):
        step["queue"] = draw(st.sampled_from(("support", "billing", "tier 2")))
    elif kind == "end":
        step["exit"] = draw(st.sampled_from(exits))
    if kind not in ("handoff", "end") and draw(st.booleans()):
        step["next"] = draw(target)
    if draw(st.booleans()):
        step["provenance"] = draw(provenances())
    return step


@st.composite
def slots(draw: st.DrawFn, slot_id: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(("string", "integer", "number", "boolean", "date", "enum")))
    slot: dict[str, Any] = {"id": slot_id, "type": kind}
    if kind == "enum":
        slot["values"] = draw(st.lists(texts(), min_size=1, max_size=3))
    slot["source"] = draw(st.sampled_from(("customer", "customer", "context")))
    if draw(st.booleans()):
        slot["description"] = draw(texts())
    if draw(st.integers(0, 4)) == 0:
        slot["pattern"] = draw(st.sampled_from((r"^\d{5}$", "[a-z]+", "(unclosed")))
    return slot


@st.composite
def procedures(draw: st.DrawFn, procedure_id: str, tools: tuple[str, ...]) -> dict[str, Any]:
    step_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    slot_ids = draw(st.lists(ids, max_size=3, unique=True))
    exit_ids = draw(st.lists(ids, max_size=3, unique=True))
    names = (*slot_ids, "order", "amount")
    exits = (*exit_ids, "unknown_exit")
    targets = (*step_ids, *step_ids, "nowhere")
    return {
        "id": procedure_id,
        "title": draw(texts(min_size=1)),
        "when": draw(texts(min_size=1)),
        "slots": [draw(slots(slot_id)) for slot_id in slot_ids],
        "steps": [
            draw(steps(s, targets=targets, slots=names, tools=tools, exits=exits)) for s in step_ids
        ],
        "exits": [
            {"id": e, "outcome": draw(st.sampled_from(("resolved", "escalated", "abandoned")))}
            for e in exit_ids
        ],
        "provenance": draw(_optional_provenance),
    }


_bindings = st.one_of(
    st.fixed_dictionaries({"kind": st.just("openapi"), "source": ids, "operation": ids}),
    st.fixed_dictionaries({"kind": st.just("mcp"), "source": ids, "tool": ids}),
    st.fixed_dictionaries(
        {
            "kind": st.just("http"),
            "method": st.sampled_from(("GET", "POST", "PUT", "PATCH", "DELETE")),
            "url": st.sampled_from(("https://api.example.com/orders/{order_id}", "http://h/x")),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("builtin"), "builtin": st.sampled_from(("handoff", "lookup_knowledge"))}
    ),
)


@st.composite
def tools(draw: st.DrawFn, name: str) -> dict[str, Any]:
    effect = draw(st.sampled_from(("read", "write", "irreversible")))
    tool: dict[str, Any] = {"name": name, "effect": effect, "binding": draw(_bindings)}
    tool["description"] = draw(texts())
    if draw(st.booleans()):
        properties = draw(st.lists(st.sampled_from(_ARGUMENTS), max_size=3, unique=True))
        tool["parameters"] = {"type": "object", "properties": {p: {} for p in properties}}
    tool["limits"] = draw(st.lists(limits(), max_size=2))
    tool["max_calls_per_conversation"] = draw(st.none() | st.integers(1, 1000))
    tool["timeout_seconds"] = draw(st.floats(0.5, 300))
    tool["retries"] = draw(st.integers(0, 5)) if effect == "read" else 0
    return tool


@st.composite
def policies(
    draw: st.DrawFn, policy_id: str, procedures: tuple[str, ...], tools: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "id": policy_id,
        "text": draw(texts(min_size=1)),
        "applies_to": draw(st.lists(st.sampled_from((*procedures, "elsewhere")), max_size=2)),
        "limits": draw(st.lists(limits(tools or ("ghost_tool",)), max_size=2)),
        "forbids_tools": draw(st.lists(st.sampled_from((*tools, "ghost_tool")), max_size=2)),
        "provenance": draw(_optional_provenance),
    }


_prices = st.decimals(min_value=0, max_value=Decimal("99999999"), places=2) | st.decimals(
    min_value=0, max_value=Decimal("99"), places=6
)
_maybe_bool = st.sampled_from((None, True, False))


@st.composite
def operations(draw: st.DrawFn) -> dict[str, Any]:
    """knowledge, guardrails, channels, escalation, outcomes, autonomy and slos."""
    billing_model = draw(st.sampled_from(("outcome_based", "consumption_based", "seat_based")))
    price_field = {
        "outcome_based": "price_per_resolution",
        "consumption_based": "price_per_1k_tokens",
        "seat_based": "price_per_seat_month",
    }[billing_model]
    billing = {"model": billing_model, price_field: draw(_prices)}
    if draw(st.booleans()):
        billing["price_per_conversation"] = draw(_prices)
    source = st.fixed_dictionaries({"id": ids, "title": texts(min_size=1)})
    return {
        "knowledge": {
            "sources": draw(st.lists(source, max_size=3, unique_by=lambda s: s["id"])),
            "retrieval": draw(st.sampled_from(("hybrid", "bm25", "vector"))),
            "top_k": draw(st.integers(1, 50)),
        },
        "guardrails": {
            "preset": draw(st.sampled_from(("minimal", "standard", "regulated"))),
            "forbidden_topics": draw(st.lists(texts(), max_size=2)),
            "disclaimers": draw(st.lists(texts(), max_size=2)),
            "mask_pii": draw(_maybe_bool),
            "require_grounding": draw(_maybe_bool),
            "detect_prompt_injection": draw(_maybe_bool),
        },
        "channels": {
            "chat": {"enabled": draw(st.booleans()), "greeting": draw(st.none() | texts())},
            "email": {
                "enabled": draw(st.booleans()),
                "address": draw(st.sampled_from((None, "help@example.com", "a.b@shop.example"))),
            },
            "voice": {"enabled": draw(st.booleans()), "barge_in": draw(st.booleans())},
            "messaging": {
                "platforms": draw(st.lists(st.sampled_from(("slack", "sms")), unique=True))
            },
            "openai": {"enabled": draw(st.booleans())},
        },
        "escalation": {
            "default_queue": draw(st.sampled_from(("support", "billing"))),
            "rules": draw(
                st.lists(
                    st.fixed_dictionaries({"id": ids, "when": texts(min_size=1)}),
                    max_size=2,
                    unique_by=lambda r: r["id"],
                )
            ),
            "on_customer_request": draw(st.booleans()),
            "after_failed_turns": draw(st.integers(1, 20)),
        },
        "outcomes": {
            "resolved": draw(texts()),
            "abandoned_after_minutes": draw(st.integers(1, 10080)),
            "billing": billing if draw(st.booleans()) else None,
        },
        "autonomy": {
            "mode": draw(st.sampled_from(("proposal_only", "auto_with_rollback"))),
            "canary_percent": draw(st.integers(1, 50)),
            "rollback_on": {"max_error_rate": draw(st.floats(0, 1))},
        },
        "slos": {
            "availability": draw(st.floats(0.5, 0.99999)),
            "latency_p95_ms": draw(st.integers(100, 60000)),
        },
    }


@st.composite
def agent_spec_data(draw: st.DrawFn) -> dict[str, Any]:
    """An AgentSpec as the raw data a YAML or JSON document holds."""
    tool_names = tuple(draw(st.lists(ids, max_size=4, unique=True)))
    procedure_ids = tuple(draw(st.lists(ids, max_size=3, unique=True)))
    policy_ids = draw(st.lists(ids, max_size=3, unique=True))
    data: dict[str, Any] = {
        "name": draw(texts(min_size=1)),
        "goal": draw(texts(min_size=1)),
        "persona": {"name": draw(st.sampled_from(("Robin", "Ana"))), "tone": draw(texts())},
        "languages": draw(
            st.lists(st.sampled_from(("en", "fr", "de", "pt-BR")), min_size=1, unique=True)
        ),
        "mode": draw(st.sampled_from((None, "reasoning", "guided"))),
        "procedures": [draw(procedures(p, tool_names)) for p in procedure_ids],
        "policies": [draw(policies(p, procedure_ids, tool_names)) for p in policy_ids],
        "tools": [draw(tools(name)) for name in tool_names],
    }
    return data | draw(operations())


def agent_specs() -> st.SearchStrategy[AgentSpec]:
    return agent_spec_data().map(AgentSpec.model_validate)


def _blend_lists(draw: st.DrawFn, key: str, first: list[Any], second: list[Any]) -> list[Any]:
    """Elements of both lists, one per id, each from either list."""
    by_id = {item[key]: item for item in second}
    result = []
    for item in first:
        other = by_id.pop(item[key], None)
        if other is not None and draw(st.booleans()):
            result.append(other)
        elif other is not None or draw(st.integers(0, 3)):
            result.append(item)
    result += [item for item in by_id.values() if draw(st.booleans())]
    return result


@st.composite
def agent_spec_pairs(draw: st.DrawFn) -> tuple[AgentSpec, AgentSpec]:
    """Two specs that share parts: the second takes each section, procedure, policy and tool
    from the first or from another drawn spec."""
    first = draw(agent_spec_data())
    other = draw(agent_spec_data())
    second = {name: draw(st.sampled_from((first[name], other[name]))) for name in first}
    second["procedures"] = _blend_lists(draw, "id", first["procedures"], other["procedures"])
    second["policies"] = _blend_lists(draw, "id", first["policies"], other["policies"])
    second["tools"] = _blend_lists(draw, "name", first["tools"], other["tools"])
    return AgentSpec.model_validate(first), AgentSpec.model_validate(second)
