"""The guardrails as the runtime calls them, in series and before the action they guard.

- `InputGuard.check(text)` before the runtime acts on a customer's message: injection
  heuristics, then the model check (skipped when the heuristics already stopped the turn), then
  PII detection. `InputGuard.check_tool_output(tool, output)` before a tool's output reaches the
  model: the same heuristics with tool-output weights; the model check runs only when the
  heuristics saw a signal (one model call per suspicious output, not per tool call).
- `OutputGuard.check(reply, evidence, policies=...)` before a reply leaves: forbidden topics
  (phrases, then the model), forbidden promises (phrases, then the policy judge), grounding, PII
  leakage (masking), disclaimers.
- `tool_decision(...)` turns an executor refusal into a tool-stage decision.

Each guard stops at the first `block` or `escalate`; every check that ran leaves a decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from deputy.domain.spec import Policy
from deputy.guardrails.decisions import GuardrailDecision, GuardrailReport, Stage, Verdict
from deputy.guardrails.grounding import Evidence
from deputy.guardrails.injection import (
    InjectionScan,
    Source,
    classify_injection,
    scan_injection,
    tool_output_text,
)
from deputy.guardrails.output import (
    MODEL_FAILURES,
    append_disclaimers,
    check_grounding,
    check_pii_leakage,
    check_promises,
    check_topics,
    classify_topic,
    model_failure_decision,
    pii_input_decision,
)
from deputy.guardrails.pii import detect_pii, mask_pii
from deputy.guardrails.promises import judge_policies
from deputy.guardrails.settings import GuardrailSettings
from deputy.llm.errors import ModelUnavailable
from deputy.llm.types import Model


def redact_for_storage(text: str, settings: GuardrailSettings) -> str:
    """The form of `text` that transcripts and logs keep: PII masked when `mask_pii` is on
    (the `regulated` preset), the text unchanged otherwise."""
    if not settings.mask_pii:
        return text
    return mask_pii(text, keep_card_last4=settings.keep_card_last4).text


def _heuristic_decision(
    scan: InjectionScan, stage: Stage, check: str, settings: GuardrailSettings
) -> GuardrailDecision:
    verdict: Verdict = "allow"
    if scan.score >= settings.injection_block_threshold:
        verdict = "block"
    elif scan.score >= settings.injection_flag_threshold:
        verdict = "flag"
    return GuardrailDecision(
        stage=stage, check=check, verdict=verdict, reason=scan.describe(), details=scan.details()
    )


async def _model_check(
    check: str,
    stage: Stage,
    settings: GuardrailSettings,
    call: Callable[[], Awaitable[GuardrailDecision]] | None,
) -> GuardrailDecision:
    """Run a model-based check, mapping a missing model or a failure per preset."""
    if call is None:
        return model_failure_decision(
            stage, check, settings, ModelUnavailable("no model is configured for guardrails")
        )
    try:
        return await call()
    except MODEL_FAILURES as error:
        return model_failure_decision(stage, check, settings, error)


class InputGuard:
    """Checks on what comes in: the customer's messages and tools' outputs."""

    def __init__(self, settings: GuardrailSettings, model: Model | None = None) -> None:
        self.settings = settings
        self.model = model

    async def check(self, text: str) -> GuardrailReport:
        decisions = await self._injection(text, "customer", "input", "prompt_injection", True)
        if not any(d.stops for d in decisions) and self.settings.detect_pii_input:
            decisions.append(pii_input_decision(text, self.settings))
        return GuardrailReport.of(
            "input", decisions, text=text, stored_text=redact_for_storage(text, self.settings)
        )

    async def check_tool_output(self, tool: str, output: Any) -> GuardrailReport:
        """`output` is the tool's JSON output (or text). A block means: withhold it from the
        model and record why."""
        text = tool_output_text(output)
        decisions = await self._injection(
            text, "tool_output", "tool", "prompt_injection.tool_output", False
        )
        decisions = [
            d.model_copy(update={"details": {**d.details, "tool": tool}}) for d in decisions
        ]
        return GuardrailReport.of(
            "tool", decisions, text=text, stored_text=redact_for_storage(text, self.settings)
        )

    async def _injection(
        self, text: str, source: Source, stage: Stage, prefix: str, always_model: bool
    ) -> list[GuardrailDecision]:
        settings = self.settings
        if not settings.detect_prompt_injection:
            return []
        scan = scan_injection(text, source=source)
        heuristic = _heuristic_decision(scan, stage, f"{prefix}.heuristic", settings)
        decisions = [heuristic]
        if heuristic.stops or not settings.injection_model_check:
            return decisions
        if not always_model and not scan.matches:
            return decisions
        model = self.model

        async def ask() -> GuardrailDecision:
            assert model is not None
            verdict = await classify_injection(model, text, source=source)
            details: dict[str, Any] = {"model": verdict.model, "injection": verdict.injection}
            if not verdict.injection:
                return GuardrailDecision(
                    stage=stage,
                    check=f"{prefix}.model",
                    verdict="allow",
                    reason=f"{verdict.model} judged it safe",
                    details=details,
                )
            corroborated = heuristic.verdict != "allow"
            result: Verdict = "block" if corroborated else settings.model_only_injection
            also = " and the heuristics flagged it" if corroborated else " (heuristics did not)"
            return GuardrailDecision(
                stage=stage,
                check=f"{prefix}.model",
                verdict=result,
                reason=f"{verdict.model} judged it a prompt injection{also}",
                details=details,
            )

        decisions.append(
            await _model_check(f"{prefix}.model", stage, settings, ask if model else None)
        )
        return decisions


class OutputGuard:
    """Checks on a draft reply. Returns the reply to send (`report.text`: masked, with
    disclaimers) unless the report blocks or escalates. Model checks that the settings turn on
    (topic classification and the policy judge under `regulated`) need `model`; without one
    they count as failed model checks (under `regulated`: escalate)."""

    def __init__(self, settings: GuardrailSettings, model: Model | None = None) -> None:
        self.settings = settings
        self.model = model

    async def check(
        self, reply: str, evidence: Evidence, *, policies: Sequence[Policy] = ()
    ) -> GuardrailReport:
        settings = self.settings
        model = self.model
        decisions: list[GuardrailDecision] = []

        def done(text: str) -> GuardrailReport:
            return GuardrailReport.of(
                "output", decisions, text=text, stored_text=redact_for_storage(text, settings)
            )

        def stopped() -> bool:
            return bool(decisions) and decisions[-1].stops

        topics = settings.forbidden_topics
        if topics:
            decisions.append(check_topics(reply, topics))
            if stopped():
                return done(reply)
            if settings.topic_model_check:

                async def ask_topic() -> GuardrailDecision:
                    assert model is not None
                    topic = await classify_topic(model, reply, topics)
                    verdict: Verdict = "allow"
                    if topic is not None:
                        verdict = "block" if settings.strict else "flag"
                    reason = (
                        f"{model.name} found the forbidden topic {topic!r}"
                        if topic
                        else f"{model.name} found no forbidden topic"
                    )
                    return GuardrailDecision(
                        stage="output",
                        check="forbidden_topic.model",
                        verdict=verdict,
                        reason=reason,
                        details={"topic": topic, "model": model.name},
                    )

                decisions.append(
                    await _model_check(
                        "forbidden_topic.model", "output", settings, ask_topic if model else None
                    )
                )
                if stopped():
                    return done(reply)
        if settings.check_promises:
            decisions.append(check_promises(reply, evidence, settings))
            if stopped():
                return done(reply)
        if settings.policy_judge and policies:

            async def ask_judge() -> GuardrailDecision:
                assert model is not None
                verdict = await judge_policies(model, reply, policies)
                result: Verdict = "block" if verdict.violates else "allow"
                reason = (
                    f"{verdict.model} judged that the reply breaks policy {verdict.policy!r}"
                    if verdict.violates
                    else f"{verdict.model} found no policy broken ({len(policies)} checked)"
                )
                return GuardrailDecision(
                    stage="output",
                    check="forbidden_promise.policy_judge",
                    verdict=result,
                    reason=reason,
                    details={"policy": verdict.policy, "model": verdict.model},
                )

            decisions.append(
                await _model_check(
                    "forbidden_promise.policy_judge",
                    "output",
                    settings,
                    ask_judge if model else None,
                )
            )
            if stopped():
                return done(reply)
        if settings.grounding != "off":
            decisions.append(check_grounding(reply, evidence, settings, detect_pii(reply)))
            if stopped():
                return done(reply)
        text = reply
        if settings.mask_pii_in_replies or settings.detect_pii_input:
            decision, text = check_pii_leakage(reply, evidence, settings)
            decisions.append(decision)
        disclaimer, text = append_disclaimers(text, settings)
        if disclaimer is not None:
            decisions.append(disclaimer)
        return done(text)


_TOOL_CHECKS: dict[str, tuple[str, Verdict, str]] = {
    "confirmation_required": ("tool.confirmation", "block", "needs the customer's confirmation"),
    "limit_exceeded": ("tool.limits", "block", "exceeds a limit"),
    "call_limit_reached": ("tool.limits", "block", "reached its call limit"),
    "forbidden_by_policy": ("tool.policy", "block", "is forbidden by a policy"),
    "invalid_arguments": ("tool.schema", "block", "has arguments that fail its schema"),
    "unknown_tool": ("tool.unknown", "block", "is not a tool of this agent"),
    "idempotency_conflict": ("tool.idempotency", "block", "conflicts with an earlier call"),
    "unavailable": ("tool.unavailable", "escalate", "is not available in this runtime"),
    "outcome_unknown": ("tool.outcome_unknown", "escalate", "may or may not have taken effect"),
    "transport_error": ("tool.error", "flag", "could not be reached"),
    "tool_error": ("tool.error", "flag", "answered with an error"),
}


def tool_decision(
    *, tool: str, status: str, code: str | None = None, message: str = ""
) -> GuardrailDecision | None:
    """The tool-stage decision for an executor result given as plain fields (`status`, `code`,
    `message` of `deputy.tools.results.ToolCallResult`); None for a success."""
    if status == "succeeded":
        return None
    check, verdict, what = _TOOL_CHECKS.get(
        code or "", ("tool.refused" if status == "refused" else "tool.error", "flag", "failed")
    )
    if status == "refused" and verdict == "flag":
        verdict = "block"
    if status == "outcome_unknown":
        check, verdict, what = _TOOL_CHECKS["outcome_unknown"]
    reason = f"{tool} {what}" + (f": {message}" if message else "")
    return GuardrailDecision(
        stage="tool",
        check=check,
        verdict=verdict,
        reason=reason[:2000],
        details={"tool": tool, "status": status, "code": code},
    )
