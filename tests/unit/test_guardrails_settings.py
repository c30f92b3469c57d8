"""Presets and the spec's overrides."""

from __future__ import annotations

import pytest

from deputy.domain.spec import AgentSpec, Guardrails
from deputy.guardrails.settings import (
    REGULATED_DISCLAIMER,
    preset_settings,
    resolve_guardrails,
    topic_from_text,
)


def spec(**guardrails: object) -> AgentSpec:
    return AgentSpec(
        name="Shop", goal="Help customers", guardrails=Guardrails.model_validate(guardrails)
    )


def test_minimal_runs_injection_heuristics_only() -> None:
    s = resolve_guardrails(spec(preset="minimal"))
    assert s.detect_prompt_injection and not s.injection_model_check
    assert not (s.mask_pii or s.mask_pii_in_replies or s.detect_pii_input)
    assert (s.grounding, s.check_promises, s.forbidden_topics, s.disclaimers) == (
        "off",
        False,
        (),
        (),
    )


def test_standard_adds_the_model_check_pii_flagging_reply_masking_and_grounding() -> None:
    s = resolve_guardrails(spec())
    assert s.preset == "standard"
    assert s.injection_model_check and s.on_model_failure == "fallback"
    assert s.detect_pii_input and s.mask_pii_in_replies and not s.mask_pii
    assert s.grounding == "flag" and s.check_promises and not s.guarantees_block


def test_regulated_turns_everything_on_and_defaults_to_guided_mode() -> None:
    agent = spec(preset="regulated")
    s = resolve_guardrails(agent)
    assert s.mask_pii and s.mask_pii_in_replies and s.keep_card_last4
    assert s.grounding == "block" and s.guarantees_block and s.policy_judge
    assert s.on_model_failure == "escalate" and s.model_only_injection == "escalate"
    assert {t.name for t in s.forbidden_topics} >= {
        "medical_diagnosis",
        "medication_dosage",
        "investment_advice",
        "tax_advice",
        "legal_advice",
    }
    assert s.disclaimers == (REGULATED_DISCLAIMER,)
    assert agent.runtime_mode == "guided"


def test_overrides_add_topics_and_disclaimers_and_switch_checks() -> None:
    s = resolve_guardrails(
        spec(
            preset="regulated",
            forbidden_topics=("competitor pricing", "medication dosage"),
            disclaimers=("Calls are recorded.",),
            mask_pii=False,
            require_grounding=False,
            detect_prompt_injection=False,
        )
    )
    names = [t.name for t in s.forbidden_topics]
    assert names.count("medication_dosage") == 1 and "competitor pricing" in names
    assert s.disclaimers == (REGULATED_DISCLAIMER, "Calls are recorded.")
    assert not s.mask_pii and not s.mask_pii_in_replies
    assert s.grounding == "off"
    assert not s.detect_prompt_injection and not s.injection_model_check


def test_require_grounding_makes_standard_block_and_mask_pii_turns_storage_masking_on() -> None:
    s = resolve_guardrails(spec(require_grounding=True, mask_pii=True))
    assert s.grounding == "block" and s.mask_pii
    assert resolve_guardrails(Guardrails(preset="minimal", detect_prompt_injection=True)) == (
        preset_settings("minimal")
    )


@pytest.mark.parametrize(
    ("text", "hit", "miss"),
    [
        ("competitor pricing", "Our Competitor  Pricing is higher", "competitors price"),
        ("store credit", "Want STORE credit instead?", "store credits"),
    ],
)
def test_a_spec_topic_is_a_whole_word_phrase(text: str, hit: str, miss: str) -> None:
    (pattern,) = topic_from_text(text).compiled()
    assert pattern.search(hit) and not pattern.search(miss)
