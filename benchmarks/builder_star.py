"""STAR in the builder benchmark: a task's procedure built from its flowchart and from its
dialogues alone (each with a tool file of the task's API), scored against the flowchart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from benchmarks.builder_inputs import JSON, material, star_dialogues, star_flowchart, star_tools
from benchmarks.builder_mapping import NodeMapper, largest_learned
from benchmarks.builder_models import Builder, timed_build
from benchmarks.builder_scoring import flowchart_truth, graph_scores, mean

STAR_GOAL = "Help customers over chat with their requests."
STAR_TASKS = ("ride_book", "apartment_search", "restaurant_book", "doctor_followup")
QUICK_TASKS = ("ride_book", "restaurant_book")


async def run_star(builder: Builder, tasks: Sequence[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for task in tasks:
        flowchart = star_flowchart(task)
        truth = flowchart_truth(flowchart)
        mapper = NodeMapper(flowchart["replies"], truth)
        tools = material("mat_tools", f"{task}_api.json", JSON, json.dumps(star_tools(task)))
        dialogues = star_dialogues(task)
        sources = {
            "flowchart": material("mat_flowchart", f"{task}.json", JSON, json.dumps(flowchart)),
            "dialogues": material("mat_dialogues", "dialogues.json", JSON, json.dumps(dialogues)),
        }
        task_results: dict[str, Any] = {
            "truth": {
                "nodes": len(truth.nodes),
                "edges": len(truth.edges),
                "main_path": list(truth.main_path),
            }
        }
        for name, source in sources.items():
            result, stats = await timed_build(builder, [source, tools], STAR_GOAL)
            procedures = list(result.spec.procedures)
            chosen = largest_learned(procedures) if name == "dialogues" else None
            chosen = chosen or (procedures[0] if procedures else None)
            entry: dict[str, Any] = {"build": stats, "procedures": len(procedures)}
            if chosen is not None:
                order, nodes, edges = mapper.read(chosen)
                entry |= {
                    "procedure": chosen.id,
                    "order": order,
                    **graph_scores(nodes, edges, order, truth),
                }
            if name == "dialogues":
                entry["dialogues"] = len(dialogues)
            task_results[name] = entry
            print(f"  star {task} {name}: {stats['seconds']} s", flush=True)
        results[task] = task_results
    means = {
        f"mean_{name}": {
            metric: mean(results[task][name].get(metric) for task in tasks)
            for metric in (
                "node_precision",
                "node_recall",
                "edge_precision",
                "edge_recall",
                "order_concordance",
                "main_path_lcs",
            )
        }
        for name in ("flowchart", "dialogues")
    }
    results.update(means)
    return results
