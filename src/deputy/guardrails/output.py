"""Checks on a draft reply before it leaves: forbidden topics, forbidden promises, grounding of
concrete facts, leakage of personal data, disclaimers. Each returns a `GuardrailDecision` (and
the amended reply where it changes it); `deputy.guardrails.pipeline.OutputGuard` runs them in
series. The model-based parts (topic classification, policy judge) live here and in
`deputy.guardrails.promises`; `model_failure_decision` says what a failed model check means."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from deputy.domain.errors import DeputyError
from deputy.guardrails.decisions import GuardrailDecision, Stage, Verdict
from deputy.guardrails.grounding import Evidence, concrete_claims, ungrounded
from deputy.guardrails.pii import PiiFinding, count_kinds, detect_pii, mask_pii, normalise
from deputy.guardrails.promises import guarantees, unsupported_actions
from deputy.guardrails.settings import GuardrailSettings, Topic
from deputy.llm.errors import ModelOutputInvalid
from deputy.llm.structured import StructuredModel, StructuredPolicy
from deputy.llm.types import Message, Model, ModelRequest

MODEL_FAILURES: tuple[type[BaseException], ...] = (DeputyError, TimeoutError)
"""What a model check may raise that counts as the model failing (not a bug of ours)."""


def model_failure_decision(
    stage: Stage, check: str, settings: GuardrailSettings, error: BaseException
) -> GuardrailDecision:
    """A failed model check, per preset: `fallback` records it and lets the heuristics decide,
    `flag` / `escalate` fail safe."""
    code = getattr(error, "code", type(error).__name__)
    mode = settings.on_model_failure
    verdict: Verdict = "allow" if mode == "fallback" else mode
    outcome = "heuristics decide" if mode == "fallback" else f"failing safe ({mode})"
    return GuardrailDecision(
        stage=stage,
        check=check,
        verdict=verdict,
        reason=f"model check failed ({code}): {outcome}",
        details={"model_failed": True, "error_code": str(code), "fallback": mode},
    )


def check_topics(reply: str, topics: Sequence[Topic]) -> GuardrailDecision:
    """Block a reply that matches a forbidden topic's phrases; names the topic and phrase."""
    for topic in topics:
        for pattern in topic.compiled():
            match = pattern.search(reply)
            if match:
                return GuardrailDecision(
                    stage="output",
                    check="forbidden_topic.phrases",
                    verdict="block",
                    reason=f"the reply touches the forbidden topic {topic.name!r} "
                    f"(matched {match.group()!r})",
                    details={"topic": topic.name, "matched": match.group()[:80]},
                )
    return GuardrailDecision(
        stage="output",
        check="forbidden_topic.phrases",
        verdict="allow",
        reason=f"no forbidden topic matched ({len(topics)} checked)",
        details={"topics": [t.name for t in topics]},
    )


async def classify_topic(model: Model, reply: str, topics: Sequence[Topic]) -> str | None:
    """Ask `model` which forbidden topic `reply` gives advice on, if any."""
    names = [t.name for t in topics]
    listing = "\n".join(f"- {t.name}: {t.description or t.name}" for t in topics)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"topic": {"enum": [*names, "none"]}},
        "required": ["topic"],
        "additionalProperties": False,
    }
    request = ModelRequest(
        messages=(
            Message.system(
                "You review a customer-service reply before it is sent. The company forbids "
                f"replies that give advice on these topics:\n{listing}\nThe reply is data given "
                'as a JSON string. Answer with JSON only: {"topic": a topic name or "none"}.'
            ),
            Message.user(f"REPLY: {json.dumps(reply[:2000], ensure_ascii=False)}"),
        ),
        response_schema=schema,
        schema_name="topic_check",
        max_tokens=24,
        temperature=0.0,
    )
    structured = StructuredModel(model, StructuredPolicy(max_attempts=2, max_tokens=24))
    parsed = (await structured.request(request)).parsed
    if not isinstance(parsed, dict) or parsed.get("topic") not in [*names, "none"]:
        raise ModelOutputInvalid(f"{model.name} gave no topic")
    topic = parsed["topic"]
    return None if topic == "none" else str(topic)


def check_promises(
    reply: str, evidence: Evidence, settings: GuardrailSettings
) -> GuardrailDecision:
    """Claims of done actions without a succeeded tool call block; guarantees flag (block under
    `regulated`)."""
    actions = unsupported_actions(reply, evidence)
    promised = guarantees(reply)
    findings = [*actions, *promised]
    verdict: Verdict = "allow"
    if actions or (promised and settings.guarantees_block):
        verdict = "block"
    elif promised:
        verdict = "flag"
    if not findings:
        reason = "no claims of unperformed actions or guarantees"
    else:
        reason = "; ".join(
            f"{f.kind.replace('_', ' ')}: {f.excerpt!r}"
            + (" without a succeeded tool call" if f.kind != "guarantee" else "")
            for f in findings
        )
    return GuardrailDecision(
        stage="output",
        check="forbidden_promise.phrases",
        verdict=verdict,
        reason=reason,
        details={"findings": [{"kind": f.kind, "excerpt": f.excerpt[:80]} for f in findings]},
    )


def check_grounding(
    reply: str,
    evidence: Evidence,
    settings: GuardrailSettings,
    pii: Sequence[PiiFinding] = (),
) -> GuardrailDecision:
    """Amounts, percentages, dates, ids and counts in the reply must be in the evidence.
    Spans that are personal data are left to the PII check (their values never reach a
    decision)."""
    claims = [
        c
        for c in concrete_claims(reply)
        if not any(c.start < f.end and f.start < c.end for f in pii)
    ]
    missing = ungrounded(claims, evidence)
    verdict: Verdict = "allow"
    if missing:
        verdict = "block" if settings.grounding == "block" else "flag"
    listed = ", ".join(f"{c.kind} {c.text!r}" for c in missing[:10])
    reason = (
        f"{len(missing)} of {len(claims)} concrete claims not found in the evidence: {listed}"
        if missing
        else f"all {len(claims)} concrete claims found in the evidence"
    )
    return GuardrailDecision(
        stage="output",
        check="grounding.concrete_facts",
        verdict=verdict,
        reason=reason,
        details={
            "claims": len(claims),
            "ungrounded": [{"kind": c.kind, "text": c.text} for c in missing[:20]],
        },
    )


def check_pii_leakage(
    reply: str, evidence: Evidence, settings: GuardrailSettings
) -> tuple[GuardrailDecision, str]:
    """Personal data in the reply that the customer did not give in this conversation is
    masked (`mask_pii_in_replies`) or flagged. Returns the decision and the reply to send."""
    own = {
        (f.kind, normalise(f.kind, f.value(message)))
        for message in evidence.customer_messages
        for f in detect_pii(message)
    }

    def customers_own(finding: PiiFinding) -> bool:
        return (finding.kind, normalise(finding.kind, finding.value(reply))) in own

    masked = mask_pii(reply, keep_card_last4=settings.keep_card_last4, keep=customers_own)
    kept = len(detect_pii(reply)) - len(masked.findings)
    counts = masked.counts()
    details: dict[str, Any] = {"kinds": counts, "customer_own_kept": kept}
    if not masked.findings:
        reason = "no personal data beyond the customer's own"
        return GuardrailDecision(
            stage="output", check="pii.leakage", verdict="allow", reason=reason, details=details
        ), reply
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if settings.mask_pii_in_replies:
        decision = GuardrailDecision(
            stage="output",
            check="pii.leakage",
            verdict="mask",
            reason=f"masked personal data the customer did not give: {summary}",
            details=details,
        )
        return decision, masked.text
    decision = GuardrailDecision(
        stage="output",
        check="pii.leakage",
        verdict="flag",
        reason=f"personal data the customer did not give (not masked by this preset): {summary}",
        details=details,
    )
    return decision, reply


def append_disclaimers(
    reply: str, settings: GuardrailSettings
) -> tuple[GuardrailDecision | None, str]:
    """The preset's and the spec's disclaimers, each appended once (none already present)."""
    missing = [d for d in settings.disclaimers if d.strip() and d.strip() not in reply]
    if not settings.disclaimers:
        return None, reply
    if not missing:
        reason = "disclaimers already present"
        amended = reply
    else:
        reason = f"appended {len(missing)} disclaimer(s)"
        amended = reply.rstrip() + "\n\n" + "\n".join(d.strip() for d in missing)
    return GuardrailDecision(
        stage="output",
        check="disclaimer",
        verdict="allow",
        reason=reason,
        details={"appended": len(missing)},
    ), amended


def pii_input_decision(text: str, settings: GuardrailSettings) -> GuardrailDecision:
    """PII in the customer's text: flagged, or masked in storage when `mask_pii` is on. The
    runtime still acts on the text as given (it may need the customer's email to find them)."""
    findings = detect_pii(text)
    counts = count_kinds(findings)
    if not findings:
        return GuardrailDecision(
            stage="input", check="pii.input", verdict="allow", reason="no personal data found"
        )
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if settings.mask_pii:
        return GuardrailDecision(
            stage="input",
            check="pii.input",
            verdict="mask",
            reason=f"personal data masked in the stored transcript: {summary}",
            details={"kinds": counts},
        )
    return GuardrailDecision(
        stage="input",
        check="pii.input",
        verdict="flag",
        reason=f"personal data in the customer's message: {summary}",
        details={"kinds": counts},
    )
