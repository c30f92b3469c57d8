"""ABCD in the builder benchmark: the agent guidelines built as JSON and as a Markdown rendering
(with and without a tool file of ABCD's actions), scored against `kb.json`."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.builder_inputs import ABCD, JSON, abcd_tools, guidelines_markdown, load, material
from benchmarks.builder_mapping import ACTION_RULES, procedure_actions
from benchmarks.builder_models import Builder, timed_build
from benchmarks.builder_scoring import (
    collapse,
    map_action,
    match_titles,
    mean,
    normalise,
    sequence_scores,
)

from deputy.builder.pipeline import BuildResult

ABCD_GOAL = "Help customers of an online clothing store with orders, refunds, accounts and FAQs."
QUICK_FLOWS = 3
"""--quick builds ABCD's first three flows (17 subflows), with the action tool file only."""
TITLE_RULE = (
    "one-to-one: procedure title equal to the subflow name after normalising (lower case, "
    "letters and digits), then one containing the other as whole words, longest names first"
)
KB_RULE = (
    "kb.json keys are mapped to subflow names by position: the i-th subflow of a flow in "
    "ontology.json's intents is the i-th subflow of the same flow in guidelines.json (the "
    "counts agree for all 10 flows)"
)


def kb_by_subflow(
    guidelines: dict[str, Any], ontology: dict[str, Any], kb: dict[str, list[str]]
) -> dict[str, list[str]]:
    """kb.json's action sequences keyed by guidelines.json subflow name (see `KB_RULE`)."""
    by_name: dict[str, list[str]] = {}
    for flow, body in guidelines.items():
        keys = ontology["intents"]["subflows"][normalise(flow).replace(" ", "_")]
        names = list(body["subflows"])
        if len(keys) != len(names):
            raise ValueError(f"{flow}: {len(keys)} kb subflows, {len(names)} guideline subflows")
        by_name.update({name: kb[key] for name, key in zip(names, keys, strict=True)})
    return by_name


def _vocabulary(ontology: dict[str, Any]) -> list[str]:
    return sorted(action for group in ontology["actions"].values() for action in group)


def _sequence_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "procedures_scored": len(rows),
        "action_precision": mean(r["precision"] for r in rows),
        "action_recall": mean(r["recall"] for r in rows),
        "exact_sequence_rate": mean(float(r["exact"]) for r in rows),
        "edit_distance": mean(r["edit_distance"] for r in rows),
    }


def score_abcd(
    result: BuildResult, gold: dict[str, list[str]], vocabulary: list[str]
) -> dict[str, Any]:
    procedures = {p.title: p for p in result.spec.procedures}
    matched = match_titles(list(procedures), list(gold))
    scored: dict[str, Any] = {
        "subflows_recovered": {
            "precision": matched.precision,
            "recall": matched.recall,
            "procedures": len(procedures),
            "unmatched_subflows": sorted(set(gold) - {name for _, name in matched.pairs}),
            "unmatched_procedures": sorted(set(procedures) - {t for t, _ in matched.pairs}),
        }
    }
    for rule in ACTION_RULES:
        rows: list[dict[str, Any]] = []
        examples: list[dict[str, Any]] = []
        for title, name in matched.pairs:
            predicted = procedure_actions(procedures[title], vocabulary, quoted=rule != "tools")
            row = sequence_scores(predicted, gold[name])
            rows.append(row)
            if not row["exact"] and len(examples) < 3:
                examples.append({"subflow": name, "predicted": predicted, "kb": gold[name]})
        scored[f"actions_from_{rule}"] = {**_sequence_summary(rows), "mismatch_examples": examples}
    return scored


def guidelines_reference(
    guidelines: dict[str, Any], gold: dict[str, list[str]], vocabulary: list[str]
) -> dict[str, Any]:
    """The guidelines' own button sequences against kb.json: the ceiling for a perfect reader."""
    rows = []
    for body in guidelines.values():
        for name, subflow in body["subflows"].items():
            buttons = collapse(
                map_action(a.get("button", ""), vocabulary) for a in subflow["actions"]
            )
            rows.append(sequence_scores(buttons, gold[name]))
    return _sequence_summary(rows)


async def run_abcd(builder: Builder, quick: bool) -> dict[str, Any]:
    guidelines, ontology = load(ABCD / "guidelines.json"), load(ABCD / "ontology.json")
    gold = kb_by_subflow(guidelines, ontology, load(ABCD / "kb.json"))
    if quick:
        guidelines = {flow: guidelines[flow] for flow in list(guidelines)[:QUICK_FLOWS]}
        gold = {n: gold[n] for body in guidelines.values() for n in body["subflows"]}
    vocabulary = _vocabulary(ontology)
    tools = material("mat_tools", "abcd_actions.json", JSON, json.dumps(abcd_tools(ontology)))
    sources = {
        "json": material("mat_guidelines", "guidelines.json", JSON, json.dumps(guidelines)),
        "prose": material(
            "mat_handbook", "guidelines.md", "text/markdown", guidelines_markdown(guidelines)
        ),
    }
    results: dict[str, Any] = {}
    for name, source in sources.items():
        for with_tools in (True,) if quick else (False, True):
            materials = [source, tools] if with_tools else [source]
            result, stats = await timed_build(builder, materials, ABCD_GOAL)
            key = f"{name}_with_action_tools" if with_tools else name
            results[key] = {**score_abcd(result, gold, vocabulary), "build": stats}
            print(
                f"  abcd {key}: {stats['seconds']} s, {stats['model_calls']} model calls",
                flush=True,
            )
    results["reference_guidelines_buttons_vs_kb"] = guidelines_reference(
        guidelines, gold, vocabulary
    )
    results["subflows"] = len(gold)
    return results
