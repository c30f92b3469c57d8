"""What the guardrails do for one agent: its preset's defaults with the spec's overrides applied.

| setting                          | minimal   | standard             | regulated                  |
|----------------------------------|-----------|----------------------|----------------------------|
| injection heuristics             | on        | on                   | on                         |
| injection model check            | off       | on (with a model)    | on (with a model)          |
| model check failure              | n/a       | heuristics decide,   | escalate                   |
|                                  |           | failure recorded     |                            |
| model-only injection verdict     | n/a       | flag                 | escalate                   |
| PII in customer text             | ignored   | detected, flagged    | detected, masked in store  |
| PII in stored transcripts / logs | kept      | kept                 | masked                     |
| other people's PII in replies    | kept      | masked               | masked (card: last 4 kept) |
| forbidden topics                 | spec only | spec only            | healthcare/finance + spec  |
| topic model check                | off       | off                  | on (with a model)          |
| grounding of concrete facts      | off       | flag                 | block                      |
| forbidden promises               | off       | on (guarantees flag) | on (guarantees block)      |
| policy judge (model)             | off       | off                  | on (with a model)          |
| disclaimers appended             | spec only | spec only            | default + spec             |
| runtime mode default             | reasoning | reasoning            | guided (`AgentSpec`)       |

Overrides (`AgentSpec.guardrails`): `forbidden_topics` are added to the preset's (a name of a
built-in topic such as `medication_dosage` brings its phrase list; any other text is matched as a
phrase); `disclaimers` are appended after the preset's; `mask_pii` switches masking in storage and
in replies on or off together; `require_grounding` True makes ungrounded facts block, False turns
the grounding check off; `detect_prompt_injection` False turns off both injection checks, True
turns the heuristics on (the model check follows the preset)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from deputy.domain.spec import AgentSpec, Guardrails
from deputy.domain.spec.operations import GuardrailPreset

OnModelFailure = Literal["fallback", "flag", "escalate"]
GroundingMode = Literal["off", "flag", "block"]


@dataclass(frozen=True, slots=True)
class Topic:
    """A subject the agent must not speak about; `patterns` are case-insensitive regexes."""

    name: str
    patterns: tuple[str, ...]
    description: str = ""

    def compiled(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in self.patterns)


REGULATED_TOPICS: tuple[Topic, ...] = (
    Topic(
        "medical_diagnosis",
        (
            r"\byou (?:probably |likely |might |may |could )?(?:have|are suffering from) "
            r"(?:an? )?(?:\w+ ){0,2}(?:infection|disease|disorder|syndrome|cancer|diabetes|"
            r"flu|virus|condition|deficiency)\b",
            r"\b(?:my|the|a) diagnosis is\b",
            r"\bsounds like (?:an? )?(?:\w+ ){0,2}(?:infection|disease|disorder|syndrome)\b",
            r"\bsymptoms (?:suggest|indicate|point to)\b",
        ),
        "telling someone what illness they have",
    ),
    Topic(
        "medication_dosage",
        (
            r"\b\d+(?:\.\d+)? ?(?:mg|mcg|milligrams?|micrograms?|ml|units?)\b"
            r"(?=[^.]{0,40}\b(?:of|daily|per day|twice|every|dose)\b)",
            r"\b(?:take|double|increase|reduce|skip) (?:your |the )?(?:dose|dosage|medication)\b",
            r"\btake \d+ (?:pills?|tablets?|capsules?)\b",
            r"\b(?:recommended|safe|maximum|correct) (?:dose|dosage)\b",
        ),
        "how much of a medicine to take",
    ),
    Topic(
        "investment_advice",
        (
            r"\byou should (?:buy|sell|invest|short|hold)\b",
            r"\b(?:good|great|safe|smart) investment\b",
            r"\binvest (?:in|your)\b",
            r"\bguaranteed (?:returns?|profit|gains?)\b",
            r"\b(?:stocks?|shares|crypto(?:currency)?|bitcoin|etfs?) (?:will|are going to) "
            r"(?:rise|go up|grow|double)\b",
        ),
        "what to invest in",
    ),
    Topic(
        "tax_advice",
        (
            r"\b(?:deduct|write off|claim) (?:it|this|that|the \w+) (?:on|from) your taxes\b",
            r"\b(?:tax[- ]deductible|tax write-?off)\b",
            r"\bavoid (?:paying )?(?:taxes|tax)\b",
            r"\byou (?:don't|do not|won't|will not) (?:need to|have to) (?:pay|report|declare) "
            r"(?:any )?tax",
        ),
        "how to handle one's taxes",
    ),
    Topic(
        "legal_advice",
        (
            r"\byou should (?:sue|file a lawsuit|take legal action|press charges)\b",
            r"\byou have a (?:strong |good |solid )?(?:legal )?case\b",
            r"\b(?:is|are|would be) (?:legally )?liable\b",
            r"\bmy legal advice\b",
            r"\b(?:this|that|it) is (?:not )?(?:legal|illegal) for you to\b",
        ),
        "what someone should do legally",
    ),
)
BUILTIN_TOPICS: dict[str, Topic] = {topic.name: topic for topic in REGULATED_TOPICS}

REGULATED_DISCLAIMER = (
    "This is general information, not medical, legal, tax or investment advice; "
    "please consult a qualified professional about your situation."
)


@dataclass(frozen=True, slots=True)
class GuardrailSettings:
    """Every guardrail switch, resolved. Build with `resolve_guardrails(spec)` or
    `preset_settings(preset)`."""

    preset: GuardrailPreset
    detect_prompt_injection: bool
    injection_model_check: bool
    model_only_injection: Literal["flag", "escalate", "block"]
    on_model_failure: OnModelFailure
    detect_pii_input: bool
    mask_pii: bool
    """Mask PII in stored transcripts and logs (and in the stored form of replies)."""
    mask_pii_in_replies: bool
    """Mask PII in a reply that the customer did not give in this conversation."""
    keep_card_last4: bool
    forbidden_topics: tuple[Topic, ...]
    topic_model_check: bool
    grounding: GroundingMode
    check_promises: bool
    guarantees_block: bool
    policy_judge: bool
    disclaimers: tuple[str, ...]
    injection_flag_threshold: float = 0.5
    injection_block_threshold: float = 0.8

    @property
    def strict(self) -> bool:
        return self.preset == "regulated"


_PRESETS: dict[GuardrailPreset, GuardrailSettings] = {
    "minimal": GuardrailSettings(
        preset="minimal",
        detect_prompt_injection=True,
        injection_model_check=False,
        model_only_injection="flag",
        on_model_failure="fallback",
        detect_pii_input=False,
        mask_pii=False,
        mask_pii_in_replies=False,
        keep_card_last4=False,
        forbidden_topics=(),
        topic_model_check=False,
        grounding="off",
        check_promises=False,
        guarantees_block=False,
        policy_judge=False,
        disclaimers=(),
    ),
    "standard": GuardrailSettings(
        preset="standard",
        detect_prompt_injection=True,
        injection_model_check=True,
        model_only_injection="flag",
        on_model_failure="fallback",
        detect_pii_input=True,
        mask_pii=False,
        mask_pii_in_replies=True,
        keep_card_last4=False,
        forbidden_topics=(),
        topic_model_check=False,
        grounding="flag",
        check_promises=True,
        guarantees_block=False,
        policy_judge=False,
        disclaimers=(),
    ),
    "regulated": GuardrailSettings(
        preset="regulated",
        detect_prompt_injection=True,
        injection_model_check=True,
        model_only_injection="escalate",
        on_model_failure="escalate",
        detect_pii_input=True,
        mask_pii=True,
        mask_pii_in_replies=True,
        keep_card_last4=True,
        forbidden_topics=REGULATED_TOPICS,
        topic_model_check=True,
        grounding="block",
        check_promises=True,
        guarantees_block=True,
        policy_judge=True,
        disclaimers=(REGULATED_DISCLAIMER,),
    ),
}


def preset_settings(preset: GuardrailPreset) -> GuardrailSettings:
    """A preset's defaults, without overrides."""
    return _PRESETS[preset]


def topic_from_text(text: str) -> Topic:
    """A spec's forbidden topic: a built-in topic by name (`medication_dosage`, or the same
    with spaces), otherwise the text itself as a phrase (whitespace-flexible, whole words)."""
    key = re.sub(r"[\s-]+", "_", text.strip().lower())
    if key in BUILTIN_TOPICS:
        return BUILTIN_TOPICS[key]
    words = [re.escape(word) for word in text.split()]
    return Topic(text.strip(), (r"\b" + r"\s+".join(words) + r"\b",), "set in the spec")


def apply_overrides(base: GuardrailSettings, overrides: Guardrails) -> GuardrailSettings:
    settings = base
    if overrides.forbidden_topics:
        names = {topic.name for topic in settings.forbidden_topics}
        extra = [topic_from_text(text) for text in overrides.forbidden_topics]
        added = tuple(topic for topic in extra if topic.name not in names)
        settings = replace(settings, forbidden_topics=settings.forbidden_topics + added)
    if overrides.disclaimers:
        settings = replace(settings, disclaimers=settings.disclaimers + overrides.disclaimers)
    if overrides.mask_pii is not None:
        settings = replace(
            settings, mask_pii=overrides.mask_pii, mask_pii_in_replies=overrides.mask_pii
        )
    if overrides.require_grounding is not None:
        settings = replace(settings, grounding="block" if overrides.require_grounding else "off")
    if overrides.detect_prompt_injection is False:
        settings = replace(settings, detect_prompt_injection=False, injection_model_check=False)
    elif overrides.detect_prompt_injection:
        settings = replace(settings, detect_prompt_injection=True)
    return settings


def resolve_guardrails(spec: AgentSpec | Guardrails) -> GuardrailSettings:
    """The guardrails of `spec` (or of its `guardrails` section): preset, then overrides."""
    section = spec.guardrails if isinstance(spec, AgentSpec) else spec
    return apply_overrides(preset_settings(section.preset), section)
