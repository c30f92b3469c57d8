"""The builder's extraction, scored against ground truth nobody here wrote.

ABCD (ASAPP): the agent guidelines (`guidelines.json`, 10 flows, 55 subflows) go in as the SOP,
as JSON and as a Markdown rendering (headings per flow and subflow, numbered actions) that
measures document extraction rather than JSON structure; each with and without a tool file of
ABCD's agent actions (ontology.json `actions`). Scored: (a) subflows recovered as procedures
(title matching, precision and recall), (b) for each matched procedure, the ordered action names
of its steps against `kb.json`'s required action sequence (action precision / recall, exact
sequence rate, normalised edit distance). A reference row scores the guidelines' own buttons
against `kb.json`: the two ground truths disagree in places, which caps what a perfect reader
of the guidelines can reach.

STAR (Rasa): for a few tasks, a procedure built (i) from the task's flowchart and (ii) from that
task's dialogues alone (every dialogue whose wizard could do only that task; the builder is not
told the task), each with a tool file rendered from the task's API schema, scored against the
flowchart graph: node and edge precision / recall, order concordance and main-path LCS.

Per model: `none` (rules only), `scripted` (a deterministic stand-in that answers every
constrained question with its first option: shows the model path and what it changes), and
`local:<name>` (an embedded model, slow: use --quick). Seconds, model calls and tokens are
recorded. Writes benchmarks/results/builder.json; results of models not run this time are kept
from the file already there; a --quick run is stored as "<model> (quick)", next to full runs.

    PYTHONPATH=src:. python benchmarks/builder.py [--quick] [--model none --model scripted]
        [--model local:qwen2.5-coder-0.5b] [--output PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.builder_abcd import KB_RULE, QUICK_FLOWS, TITLE_RULE, run_abcd
from benchmarks.builder_mapping import ACTION_RULES, NODE_RULE
from benchmarks.builder_models import builder_for, scripted_model
from benchmarks.builder_star import QUICK_TASKS, STAR_TASKS, run_star

RESULTS = Path(__file__).parent / "results" / "builder.json"


def _digests(section: Any, path: str = "") -> dict[str, str]:
    """The spec digest of every build in a result section, by its path ("abcd.json")."""
    found: dict[str, str] = {}
    if isinstance(section, dict):
        build_stats = section.get("build")
        if isinstance(build_stats, dict) and "spec_digest" in build_stats:
            found[path] = build_stats["spec_digest"]
        for key, value in section.items():
            if key != "build":
                found |= _digests(value, f"{path}.{key}" if path else key)
    return found


def _changed_by_model(results: dict[str, Any]) -> dict[str, Any]:
    """For each model, the builds whose spec differs from the rules-only build's of the same
    size (full or quick)."""
    changed = {}
    for name, result in results.items():
        baseline = results.get("none (quick)" if result.get("quick") else "none")
        if baseline is not None and baseline is not result:
            ours, theirs = _digests(result), _digests(baseline)
            changed[name] = sorted(p for p, d in ours.items() if theirs.get(p, d) != d)
    return changed


def _totals(section: Any) -> dict[str, float]:
    """Seconds, model calls and tokens summed over every build in a result section."""
    totals = {"seconds": 0.0, "model_calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0}
    if isinstance(section, dict):
        if "build" in section and isinstance(section["build"], dict):
            for key in totals:
                totals[key] += section["build"].get(key, 0)
        for value in section.values():
            if isinstance(value, dict) and value is not section.get("build"):
                for key, amount in _totals(value).items():
                    totals[key] += amount
    return {key: round(value, 3) for key, value in totals.items()}


async def run_model(name: str, quick: bool, tasks: Sequence[str]) -> dict[str, Any]:
    local = None
    if name == "none":
        model: Any = None
    elif name == "scripted":
        model = scripted_model()
    else:
        from deputy.config import load_settings
        from deputy.llm.local import LocalModels

        local = LocalModels(load_settings().model_cache_dir)
        model = local.get(name)
    try:
        builder = builder_for(model)
        started, load_at_start = time.perf_counter(), os.getloadavg()
        abcd = await run_abcd(builder, quick)
        star = await run_star(builder, tasks)
        return {
            "quick": quick,
            "abcd": abcd,
            "star": star,
            "totals": {
                **_totals({"abcd": abcd, "star": star}),
                "wall_seconds": round(time.perf_counter() - started, 1),
                # other work on the machine slows a local model down a lot
                "load_average_at_start": [round(x, 2) for x in load_at_start],
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            },
        }
    finally:
        if local is not None:
            local.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="none, scripted or local:<name> (repeat for several; default: none and scripted)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"ABCD: {QUICK_FLOWS} flows, with the action tools only; STAR: "
        f"{', '.join(QUICK_TASKS)}; results are stored as '<model> (quick)'",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.model or ["none", "scripted"]
    tasks = QUICK_TASKS if args.quick else STAR_TASKS
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    results: dict[str, Any] = dict(previous.get("results", {}))
    keys = [f"{name} (quick)" if args.quick else name for name in names]
    for name, key in zip(names, keys, strict=True):
        print(f"model {name}", flush=True)
        results[key] = asyncio.run(run_model(name, args.quick, tasks))
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "data": {
            "abcd": "asappresearch/abcd @ 6b8700c: guidelines.json (input), kb.json and "
            "ontology.json (truth; ontology actions also as an optional tool file)",
            "star": "RasaHQ/STAR @ 3058975: tasks/<task>/<task>.json (input and truth), "
            "dialogues/ (input), apis/apis/<task>.json (input, as a tool file)",
        },
        "rules": {
            "subflow_titles": TITLE_RULE,
            "kb_keys": KB_RULE,
            "action_names": ACTION_RULES,
            "action_vocabulary": "kb.json's names (ontology.json actions); a button or tool "
            "name maps to the equal name after normalising, else the one sharing most words "
            "(Jaccard >= 1/3, plurals folded)",
            "star_nodes": NODE_RULE,
            "star_truth": "nodes: the flowchart's labels except outcomes (labels no edge leads "
            "to, with replies of at most 3 words: yes, no, query_success...); edges: the graph's "
            "edges between two nodes (an outcome's edges are not scored: the JSON does not say "
            "which node an outcome leaves); order: pairs (a, b) with b reachable from a",
            "star_procedure": "flowchart: the procedure built from it; dialogues: the one "
            "learned from the most conversations",
            "model_scripted": "answers every constrained question with its first option and "
            "every phrase with the first list item of the material it was shown; not 'capable'",
        },
        "results": results,
        "specs_changed_by_model": _changed_by_model(results),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for key in keys:
        abcd, star = results[key]["abcd"], results[key]["star"]
        print(f"== {key}: {results[key]['totals']}")
        for key in ("json", "json_with_action_tools", "prose", "prose_with_action_tools"):
            if key not in abcd:
                continue
            recovered = abcd[key]["subflows_recovered"]
            actions = abcd[key]["actions_from_tools"]
            print(
                f"  abcd {key:24} subflows P {recovered['precision']} R {recovered['recall']}"
                f" | actions P {actions['action_precision']} R {actions['action_recall']}"
                f" exact {actions['exact_sequence_rate']} edit {actions['edit_distance']}"
            )
        for key in ("mean_flowchart", "mean_dialogues"):
            print(f"  star {key:16} {star[key]}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
