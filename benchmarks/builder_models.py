"""The models the builder benchmark runs the builder with, and one timed build.

`none` is rules only; `scripted` is a deterministic stand-in for a small model (it answers
every constrained question with its first option and every short phrase with the first list
item of the material it was shown; it is not "capable", so it gets no whole-section readings);
`local:<name>` is an embedded model from `deputy.llm.local`'s catalog."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from deputy.builder.pipeline import BuildInput, BuildResult, MaterialInput, build
from deputy.llm.types import ModelCapabilities, ModelRequest, ModelResponse
from deputy.testing import FunctionModel, structured

Builder = Callable[[Sequence[MaterialInput], str], Awaitable[BuildResult]]


def _first_option(schema: Any, material_text: str) -> Any:
    """A minimal valid answer: the first enum value; for a string, the material's first list
    item (or its first line)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _first_option(properties[name], material_text)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [_first_option(schema.get("items"), material_text)] * schema.get("minItems", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    lines = [ln.strip() for ln in material_text.splitlines() if ln.strip("-* ")]
    listed = [ln[2:] for ln in lines if ln.startswith("- ")]
    line = (listed or lines or ["x"])[0]
    return line[: schema.get("maxLength", 80)].ljust(schema.get("minLength", 1), ".")


def scripted_model() -> FunctionModel:
    """A deterministic stand-in for a small model: not "capable" (no whole-section readings),
    it answers each constrained question with its first option and each short phrase with the
    first list item (else the first line) of the material it was shown."""

    def answer(request: ModelRequest) -> ModelResponse:
        text = request.messages[-1].content
        shown = text.split("<material>\n", 1)[-1].split("\n</material>", 1)[0]
        return structured(_first_option(request.response_schema, shown))

    capabilities = ModelCapabilities(
        native_tools=False, native_json_schema=True, context_tokens=8192
    )
    return FunctionModel(answer, name="test:scripted-first-option", capabilities=capabilities)


def builder_for(model: Any) -> Builder:
    async def run(materials: Sequence[MaterialInput], goal: str) -> BuildResult:
        return await build(BuildInput(goal=goal, materials=tuple(materials)), model=model)

    return run


def build_stats(result: BuildResult, seconds: float) -> dict[str, Any]:
    stats = result.report.stats
    return {
        "seconds": round(seconds, 3),
        "model_calls": stats.model_calls,
        "model_failures": stats.model_failures,
        "input_tokens": stats.input_tokens,
        "output_tokens": stats.output_tokens,
        "procedures": stats.procedures,
        "scenarios": stats.scenarios,
        "spec_digest": hashlib.sha256(result.spec.model_dump_json().encode()).hexdigest()[:16],
    }


async def timed_build(
    builder: Builder, materials: Sequence[MaterialInput], goal: str
) -> tuple[BuildResult, dict[str, Any]]:
    started = time.perf_counter()
    result = await builder(materials, goal)
    return result, build_stats(result, time.perf_counter() - started)
