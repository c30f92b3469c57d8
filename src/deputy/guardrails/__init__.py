"""Guardrails for the conversation runtime: input checks (prompt injection heuristics and a
model check, PII), tool checks (the executor's refusals as decisions), output checks (PII
leakage, forbidden topics, grounding, forbidden promises, disclaimers) and the presets
`minimal`, `standard`, `regulated`. See `deputy.guardrails.settings` for what each preset does.

Depends on `deputy.domain` and `deputy.llm` only."""

from deputy.guardrails.decisions import (
    GuardrailDecision,
    GuardrailReport,
    Stage,
    Verdict,
)
from deputy.guardrails.grounding import Claim, Evidence, ToolEvidence, concrete_claims, ungrounded
from deputy.guardrails.injection import (
    InjectionScan,
    ModelVerdict,
    SignalMatch,
    classify_injection,
    scan_injection,
)
from deputy.guardrails.pii import (
    MaskedText,
    PiiFinding,
    PiiKind,
    detect_pii,
    iban_valid,
    luhn_valid,
    mask_pii,
)
from deputy.guardrails.pipeline import InputGuard, OutputGuard, redact_for_storage, tool_decision
from deputy.guardrails.settings import (
    GuardrailSettings,
    Topic,
    preset_settings,
    resolve_guardrails,
)

__all__ = [
    "Claim",
    "Evidence",
    "GuardrailDecision",
    "GuardrailReport",
    "GuardrailSettings",
    "InjectionScan",
    "InputGuard",
    "MaskedText",
    "ModelVerdict",
    "OutputGuard",
    "PiiFinding",
    "PiiKind",
    "SignalMatch",
    "Stage",
    "ToolEvidence",
    "Topic",
    "Verdict",
    "classify_injection",
    "concrete_claims",
    "detect_pii",
    "iban_valid",
    "luhn_valid",
    "mask_pii",
    "preset_settings",
    "redact_for_storage",
    "resolve_guardrails",
    "scan_injection",
    "tool_decision",
    "ungrounded",
]
