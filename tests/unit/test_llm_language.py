"""LanguageDetector's own rules on a fake classifier: cleaning, too-little-text, threshold,
macrolanguage codes, the Japanese/Chinese script rule."""

from __future__ import annotations

from typing import Any

import pytest

from deputy.llm.errors import ModelUnavailable
from deputy.llm.language import UNDETERMINED, LanguageDetector, LanguageGuess


class FakeClassifier:
    def __init__(self, *scores: tuple[str, float]) -> None:
        self.scores = list(scores)
        self.seen: list[str] = []
        self.models: list[str] = []

    def detect(self, text: str, *, model: str, k: int) -> list[dict[str, Any]]:
        self.seen.append(text)
        self.models.append(model)
        return [{"lang": lang, "score": score} for lang, score in self.scores[:k]]


def detector(*scores: tuple[str, float], **options: Any) -> tuple[LanguageDetector, FakeClassifier]:
    fake = FakeClassifier(*scores)
    return LanguageDetector(classifier=fake, **options), fake


def test_confident_guess_and_the_lite_model_only() -> None:
    lid, fake = detector(("es", 0.93), ("pt", 0.04))

    assert lid.detect("¿Dónde está mi pedido?") == LanguageGuess("es", 0.93)
    assert fake.models == ["lite"]


def test_below_threshold_is_undetermined_with_the_best_confidence() -> None:
    lid, _ = detector(("en", 0.41), ("es", 0.38))

    guess = lid.detect("Bonjour, I need help por favor")

    assert guess == LanguageGuess(UNDETERMINED, 0.41)
    assert not guess.determined
    assert lid.detect("Bonjour, I need help por favor", threshold=0.4).code == "en"


@pytest.mark.parametrize("text", ["", "   ", "ok", "?!", "12345", "好", "https://example.com/x"])
def test_too_little_text_is_undetermined_without_asking_the_model(text: str) -> None:
    lid, fake = detector(("en", 0.99))

    assert lid.detect(text) == LanguageGuess(UNDETERMINED, 0.0)
    assert lid.candidates(text) == []
    assert fake.seen == []


def test_ids_urls_addresses_and_numbers_are_removed_before_classifying() -> None:
    lid, fake = detector(("es", 0.9))

    lid.detect(
        "Mi pedido #W2378156 de 49,99 € no llegó\nescribid a ana@example.com o "
        "https://shop.example.com/orders @soporte"
    )

    assert fake.seen == ["Mi pedido de € no llegó", "escribid a o"]


def test_sentences_are_weighted_by_their_letters() -> None:
    class PerSentence:
        def detect(self, text: str, *, model: str, k: int) -> list[dict[str, Any]]:
            lang = "es" if "pedido" in text else "en"
            return [{"lang": lang, "score": 0.9}, {"lang": "pt", "score": 0.1}]

    lid = LanguageDetector(classifier=PerSentence())
    text = "Where is it? Quiero cancelar mi pedido ahora mismo."  # 9 and 32 letters

    guesses = lid.candidates(text, k=3)

    assert [g.code for g in guesses] == ["es", "en", "pt"]
    assert guesses[0].confidence == pytest.approx(0.9 * 32 / 41, abs=1e-4)
    assert guesses[1].confidence == pytest.approx(0.9 * 9 / 41, abs=1e-4)
    assert guesses[2].confidence == pytest.approx(0.1, abs=1e-4)


def test_short_sentences_are_judged_together() -> None:
    lid, fake = detector(("en", 0.9))

    assert lid.detect("Ok. Ok. Ok.").code == "en"
    assert fake.seen == ["Ok Ok Ok"]


def test_input_is_cut_to_max_chars() -> None:
    lid, fake = detector(("en", 0.9), max_chars=20)

    lid.detect("word " * 100)

    assert len(fake.seen[0]) <= 20


def test_macrolanguage_parts_are_summed_under_their_iso_639_1_code() -> None:
    lid, _ = detector(("zh", 0.41), ("yue", 0.2), ("wuu", 0.1), ("ja", 0.05), ("en", 0.01))

    guess = lid.detect("我想要退款，谢谢")  # noqa: RUF001

    assert guess.code == "zh"
    assert guess.confidence == pytest.approx(0.76)  # "ja" without kana is Chinese as well


def test_wikipedia_codes_become_iso_codes() -> None:
    lid, _ = detector(("als", 0.7), ("de", 0.2))

    assert lid.candidates("Grüezi mitenand, wie gahts?") == [
        LanguageGuess("gsw", 0.7),
        LanguageGuess("de", 0.2),
    ]


def test_japanese_needs_kana() -> None:
    with_kana, _ = detector(("ja", 0.9))
    latin, _ = detector(("ja", 0.6), ("en", 0.3))

    assert with_kana.detect("ありがとうございます").code == "ja"
    assert latin.candidates("SOMETHING SHOUTED") == [LanguageGuess("en", 0.3)]


def test_candidates_are_ranked_and_limited() -> None:
    lid, _ = detector(("en", 0.5), ("es", 0.3), ("pt", 0.1), ("gl", 0.05))

    assert [g.code for g in lid.candidates("ok gracias thank you", k=2)] == ["en", "es"]


def test_classifier_failure_is_model_unavailable() -> None:
    class Broken:
        def detect(self, text: str, *, model: str, k: int) -> list[dict[str, Any]]:
            raise ValueError("predict processes one line at a time")

    with pytest.raises(ModelUnavailable):
        LanguageDetector(classifier=Broken()).detect("hello there")


@pytest.mark.parametrize(
    "options", [{"threshold": 1.5}, {"threshold": -0.1}, {"min_letters": 0}, {"max_chars": 0}]
)
def test_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LanguageDetector(**options)
