"""The embedded local models, measured: for each catalog model that is installed, the time to
prepare (assemble + verify, first run only) and load it, prompt and generation tokens/s, latency
per JSON-Schema-constrained call, and accuracy on a labelled set built from tau2-bench retail
tasks (benchmarks/data/tau2_retail_first_messages.json):

- procedure routing: which policy procedure a customer's first message needs (7 classes);
- slot extraction: every order id (normalised to #W + 7 digits) and email in the message, asked
  in two schema shapes (a possibly empty list; null or a non-empty list) because the shape
  changes what small models get right under a grammar.

Writes benchmarks/results/models.json and prints a summary.

    .venv/bin/python benchmarks/models.py [--models local:smollm2-135m,...] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from deputy.config import load_settings
from deputy.llm.errors import ModelError
from deputy.llm.local import LocalModels
from deputy.llm.local.backend import system_info
from deputy.llm.local.hardware import physical_cores, usable_cpus
from deputy.llm.local.model import LocalModel
from deputy.llm.types import Message, ModelRequest

HERE = Path(__file__).parent
DATA = HERE / "data" / "tau2_retail_first_messages.json"
RESULTS = HERE / "results" / "models.json"

# ~400 tokens of policy text: the prompt-processing probe (each run makes it unique: no cache).
POLICY = (
    Path(__file__).resolve().parents[2]
    / "shared/data/tau2-bench/data/tau2/domains/retail/policy.md"
)


def routing_request(message: str, procedures: dict[str, str]) -> ModelRequest:
    listing = "\n".join(f"- {name}: {meaning}" for name, meaning in procedures.items())
    return ModelRequest(
        messages=(
            Message.system(
                "You route customer messages for an online retail store. Choose the one "
                f"procedure the customer's message needs:\n{listing}\nAnswer in JSON."
            ),
            Message.user(message),
        ),
        response_schema={
            "type": "object",
            "properties": {"procedure": {"enum": list(procedures)}},
            "required": ["procedure"],
            "additionalProperties": False,
        },
        schema_name="procedure",
        max_tokens=32,
    )


def _slot_list(items: dict[str, Any], shape: str) -> dict[str, Any]:
    if shape == "list":  # a possibly empty list
        return {"type": "array", "items": items, "maxItems": 4}
    # "null_or_list": null, or a list of at least one. Under a grammar, small models asked for a
    # list tend to invent an item rather than close an empty one; deciding null first helps some.
    array = {"type": "array", "items": items, "minItems": 1, "maxItems": 4}
    return {"anyOf": [{"type": "null"}, array]}


SLOT_SHAPES = {"list": "an empty list", "null_or_list": "null"}


def extraction_request(message: str, shape: str) -> ModelRequest:
    return ModelRequest(
        messages=(
            Message.system(
                "Extract every order id and every email address from the customer's message. "
                "Order ids are '#W' followed by 7 digits; add '#W' when the customer leaves it "
                "out. Item and product ids are not order ids. Use "
                f"{SLOT_SHAPES[shape]} when the message has none. Answer in JSON."
            ),
            Message.user(message),
        ),
        response_schema={
            "type": "object",
            "properties": {
                "order_ids": _slot_list({"type": "string", "pattern": "^#W[0-9]{7}$"}, shape),
                "emails": _slot_list({"type": "string", "format": "email", "maxLength": 64}, shape),
            },
            "required": ["order_ids", "emails"],
            "additionalProperties": False,
        },
        schema_name="slots",
        max_tokens=160,
    )


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_s": round(statistics.fmean(ordered), 3),
        "median_s": round(statistics.median(ordered), 3),
        "p90_s": round(ordered[max(0, int(len(ordered) * 0.9) - 1)], 3),
    }


async def throughput(model: LocalModel) -> dict[str, float]:
    """Prompt tokens/s on an uncached ~450-token prompt; generation tokens/s on 128 tokens."""
    policy = POLICY.read_text(encoding="utf-8")[:2400] if POLICY.exists() else "policy " * 400
    engine = model.engine
    before = len(engine.history())
    await model.request(
        ModelRequest(
            messages=(Message.user(f"[{time.time_ns()}]\n{policy}\nSummarise in one line."),),
            max_tokens=1,
        )
    )
    await model.request(
        ModelRequest(
            messages=(Message.user("Write a long story about a lighthouse keeper."),),
            max_tokens=128,
        )
    )
    prompt_run, generation_run = engine.history()[before:]
    uncached = prompt_run.prompt_tokens - prompt_run.cached_tokens
    return {
        "prompt_tokens": uncached,
        "prompt_tokens_per_s": round(uncached / max(prompt_run.prompt_seconds, 1e-9), 1),
        "generated_tokens": generation_run.output_tokens,
        "generation_tokens_per_s": round(
            generation_run.output_tokens / max(generation_run.generation_seconds, 1e-9), 1
        ),
    }


async def bench_model(
    models: LocalModels, name: str, data: dict[str, Any], limit: int
) -> dict[str, Any]:
    started = time.perf_counter()
    models.ensure(name)
    prepare_s = time.perf_counter() - started
    model = models.get(name)
    engine = model.engine
    loads_before = len(engine.loads())
    await model.request(ModelRequest(messages=(Message.user("Hi"),), max_tokens=1))
    load_s = engine.loads()[loads_before].seconds if len(engine.loads()) > loads_before else 0.0
    speed = await throughput(model)

    examples = data["examples"][:limit] if limit else data["examples"]
    latencies: list[float] = []
    invalid = 0
    routed = [e for e in examples if e["procedure"]]
    route_hits = 0
    confusions: dict[str, int] = {}
    for example in routed:
        try:
            response = await model.request(routing_request(example["message"], data["procedures"]))
        except ModelError:
            invalid += 1
            continue
        latencies.append(response.latency_seconds)
        guess = response.parsed["procedure"]
        if guess == example["procedure"]:
            route_hits += 1
        else:
            key = f"{example['procedure']} -> {guess}"
            confusions[key] = confusions.get(key, 0) + 1

    extraction = {}
    for shape in SLOT_SHAPES:
        hits = {"exact": 0, "order_ids": 0, "emails": 0, "invalid": 0}
        for example in examples:
            try:
                response = await model.request(extraction_request(example["message"], shape))
            except ModelError:
                hits["invalid"] += 1
                continue
            latencies.append(response.latency_seconds)
            orders = set(response.parsed["order_ids"] or ()) == set(example["order_ids"])
            emails = {e.lower() for e in response.parsed["emails"] or ()} == set(example["emails"])
            hits["order_ids"] += orders
            hits["emails"] += emails
            hits["exact"] += orders and emails
        invalid += hits["invalid"]
        extraction[shape] = {
            "examples": len(examples),
            "exact_accuracy": round(hits["exact"] / max(len(examples), 1), 3),
            "order_ids_accuracy": round(hits["order_ids"] / max(len(examples), 1), 3),
            "emails_accuracy": round(hits["emails"] / max(len(examples), 1), 3),
            "invalid_outputs": hits["invalid"],
        }

    return {
        "gguf": str(models.ensure(name)),
        "threads": models.threads,
        "prepare_seconds": round(prepare_s, 2),
        "load_seconds": round(load_s, 2),
        **speed,
        "constrained_calls": len(latencies),
        "constrained_latency": summary(latencies) if latencies else {},
        "invalid_outputs": invalid,
        "routing": {
            "examples": len(routed),
            "accuracy": round(route_hits / max(len(routed), 1), 3),
            "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])),
        },
        "slot_extraction": extraction,
    }


async def run(names: list[str] | None, limit: int, cache_dir: Path) -> dict[str, Any]:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    load_at_start = os.getloadavg()
    models = LocalModels(cache_dir)
    results: dict[str, Any] = {}
    try:
        for status in models.catalog():
            if names and status.name not in names:
                continue
            if status.state == "not_installed":
                results[status.name] = {"skipped": f"not installed ({status.install_command})"}
                continue
            print(f"benchmarking {status.name} ...", flush=True)
            started = time.perf_counter()
            results[status.name] = await bench_model(models, status.name, data, limit)
            results[status.name]["benchmark_seconds"] = round(time.perf_counter() - started, 1)
            models.close()  # unload before the next model
    finally:
        models.close()
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "usable_cpus": usable_cpus(),
            "physical_cores": physical_cores(),
            "llama_cpp": system_info(),
            # other work on the machine slows llama.cpp down a lot: read the figures with these
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "dataset": {"file": str(DATA.relative_to(HERE.parent)), "source": data["source"]},
        "models": results,
    }


def print_summary(report: dict[str, Any]) -> None:
    header = (
        f"{'model':28} {'load s':>7} {'prompt t/s':>10} {'gen t/s':>8} "
        f"{'call p50 s':>10} {'routing':>8} {'slots':>6} {'slots*':>6} {'invalid':>7}"
    )
    print(header)
    for name, result in report["models"].items():
        if "skipped" in result:
            print(f"{name:28} skipped: {result['skipped']}")
            continue
        print(
            f"{name:28} {result['load_seconds']:>7} {result['prompt_tokens_per_s']:>10} "
            f"{result['generation_tokens_per_s']:>8} "
            f"{result['constrained_latency'].get('median_s', '-'):>10} "
            f"{result['routing']['accuracy']:>8} "
            f"{result['slot_extraction']['list']['exact_accuracy']:>6} "
            f"{result['slot_extraction']['null_or_list']['exact_accuracy']:>6} "
            f"{result['invalid_outputs']:>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", help="comma-separated names (default: every installed one)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N examples")
    parser.add_argument("--cache-dir", type=Path, help="default: the data dir's model cache")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = [name.strip() for name in args.models.split(",")] if args.models else None
    cache_dir = args.cache_dir or load_settings().model_cache_dir
    report = asyncio.run(run(names, args.limit, cache_dir))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_summary(report)
    print("slots: order ids + emails, exact; slots*: the same with null-or-list fields")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
