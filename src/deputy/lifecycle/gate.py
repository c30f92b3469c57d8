"""What a reviewer sees before deciding, computed from data alone: the sandbox gate (may this
candidate go further on its evidence?), the permission view of a first version (nothing is live
to diff against, so the whole spec is what gets approved), and the cost impact.

The gate is `missing` without a finished run of the candidate, or (when a version is live)
without an A/B against it; `failed` when every sandbox conversation failed to run, or the A/B
regressed a scenario or found the candidate worse; `passed` otherwise. Autonomy deploys only
what passed; a human may still decide either way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deputy.domain.lifecycle import CostImpact, GateStatus
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.domain.spec import AgentSpec, ArgumentLimit, Tool
from deputy.domain.spec.diff_text import WIDENS_MARKER, show

AUTO_DEPLOY_REASON = "new versions deploy without a reviewer (auto_with_rollback)"


@dataclass(frozen=True)
class Gate:
    status: GateStatus
    reason: str


def _pass_1(card: Scorecard) -> str:
    estimate = card.pass_hat.get(1)
    return "-" if estimate is None else f"{estimate.value:.3f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sandbox_gate(
    scorecard: Scorecard | None, comparison: Comparison | None, *, base_version: int | None
) -> Gate:
    """The gate for a candidate with this evidence, and why, in one sentence."""
    if scorecard is None:
        return Gate("missing", "The candidate has no finished sandbox run.")
    if scorecard.conversations == 0 or scorecard.errors >= scorecard.conversations:
        return Gate(
            "failed",
            f"None of the candidate's {_plural(scorecard.conversations, 'sandbox conversation')}"
            " ran without error.",
        )
    if base_version is None:
        return Gate(
            "passed",
            f"First version: its sandbox run finished with pass^1 {_pass_1(scorecard)} over "
            f"{_plural(scorecard.conversations, 'conversation')}.",
        )
    if comparison is None:
        return Gate("missing", f"There is no sandbox A/B against the live version {base_version}.")
    if comparison.regressions:
        worse = " and is worse overall" if comparison.verdict == "worse" else ""
        return Gate(
            "failed",
            f"Against version {base_version} the candidate regressed "
            f"{_plural(len(comparison.regressions), 'scenario')} "
            f"({', '.join(comparison.regressions)}){worse}.",
        )
    if comparison.verdict == "worse":
        return Gate(
            "failed",
            f"The candidate is worse than version {base_version} "
            f"(sign test p = {comparison.p_value:.4f}).",
        )
    return Gate(
        "passed",
        f"No scenario regressed against version {base_version} over "
        f"{_plural(comparison.scenarios, 'shared scenario')} (pass^1 "
        f"{comparison.baseline_pass_1:.3f} -> {comparison.candidate_pass_1:.3f}, "
        f"{comparison.verdict.replace('_', ' ')}).",
    )


def cost_impact(baseline: Scorecard | None, candidate: Scorecard | None) -> CostImpact:
    """Mean model cost per sandbox conversation of each side (None where unknown)."""
    return CostImpact(
        baseline_usd=None if baseline is None else baseline.cost.mean_per_conversation_usd,
        candidate_usd=None if candidate is None else candidate.cost.mean_per_conversation_usd,
    )


# ---- a first version, seen as a whole ------------------------------------------------------


def first_version_widening(spec: AgentSpec) -> list[str]:
    """Why a first version widens what the agent may do (empty: it only reads and answers).
    Worded like `diff_specs`'s reasons for the same additions."""
    reasons = [
        f"adds the {tool.effect} tool `{tool.name}`" for tool in spec.tools if tool.effect != "read"
    ]
    reasons += [
        f"passes conversations to the agent {show(route.agent)} (route `{route.id}`)"
        for route in spec.routes
    ]
    if spec.autonomy.mode == "auto_with_rollback":
        reasons.append(AUTO_DEPLOY_REASON)
    return reasons


def _limit(limit: ArgumentLimit) -> str:
    parts = []
    if limit.min is not None:
        parts.append(f"{limit.argument} >= {limit.min:g}")
    if limit.max is not None:
        parts.append(f"{limit.argument} <= {limit.max:g}")
    if limit.one_of is not None:
        parts.append(f"{limit.argument} one of {', '.join(map(str, limit.one_of))}")
    return " and ".join(parts)


def _binding(tool: Tool) -> str:
    binding = tool.binding
    if binding.kind == "openapi":
        return f"openapi {binding.source}.{binding.operation}"
    if binding.kind == "mcp":
        return f"mcp {binding.source}/{binding.tool}"
    if binding.kind == "http":
        return f"http {binding.method} {binding.url}"
    return f"builtin {binding.builtin}"


def _tool(tool: Tool) -> str:
    bounds = [_limit(limit) for limit in tool.limits]
    if tool.max_calls_per_conversation is not None:
        bounds.append(f"at most {tool.max_calls_per_conversation} calls per conversation")
    text = f"  - {tool.name} ({tool.effect}, {_binding(tool)})"
    return text + (f": {'; '.join(bounds)}" if bounds else ": no limits")


def _section(title: str, lines: Sequence[str]) -> list[str]:
    return ["", f"{title} ({len(lines)}):", *lines] if lines else ["", f"{title}: none"]


def first_version_text(spec: AgentSpec) -> str:
    """The review text of a first version: what widens permissions first, then the goal, the
    procedures, the policies, each tool with its effect tier and limits, the guardrails and
    the autonomy mode."""
    reasons = first_version_widening(spec)
    lines = ["First version: nothing is live yet, so the whole spec is under review."]
    if reasons:
        lines += ["", f"{WIDENS_MARKER} Widens permissions (review these first):"]
        lines += [f"  {WIDENS_MARKER} {reason}" for reason in reasons]
    lines += ["", f"goal: {spec.goal}", f"runtime mode: {spec.runtime_mode}"]
    lines += _section(
        "procedures",
        [f"  - {p.id}: {p.title} ({_plural(len(p.steps), 'step')})" for p in spec.procedures],
    )
    policies = []
    for policy in spec.policies:
        scope = ", ".join(policy.applies_to) or "every procedure"
        text = f"  - {policy.id}: {show(policy.text, 100)} (applies to {scope})"
        if policy.forbids_tools:
            text += f"; forbids {', '.join(policy.forbids_tools)}"
        if policy.limits:
            text += f"; limits {'; '.join(_limit(limit) for limit in policy.limits)}"
        policies.append(text)
    lines += _section("policies", policies)
    lines += _section("tools", [_tool(tool) for tool in spec.tools])
    if spec.routes:
        lines += _section(
            "routes", [f"  - {route.id}: to {show(route.agent)}" for route in spec.routes]
        )
    guardrails = spec.guardrails
    overrides = [
        f"{name} {'on' if value else 'off'}"
        for name, value in (
            ("mask_pii", guardrails.mask_pii),
            ("require_grounding", guardrails.require_grounding),
            ("detect_prompt_injection", guardrails.detect_prompt_injection),
        )
        if value is not None
    ]
    if guardrails.forbidden_topics:
        overrides.append(f"forbidden topics: {', '.join(guardrails.forbidden_topics)}")
    lines += [
        "",
        f"guardrails: preset {guardrails.preset}"
        + (f" ({'; '.join(overrides)})" if overrides else ""),
        f"autonomy: {spec.autonomy.mode}"
        + (
            f" (canary {spec.autonomy.canary_percent}%)"
            if spec.autonomy.mode == "auto_with_rollback"
            else ""
        ),
    ]
    return "\n".join(lines) + "\n"
