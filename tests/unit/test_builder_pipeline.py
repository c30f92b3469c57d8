"""The whole builder on the tau2 retail policy and tool descriptions: the spec covers the
policy's sections with real provenance, the scenario suite exists, and the report says what it
could not map. Rules only (no model), as on a machine without one."""

from __future__ import annotations

import asyncio
import json
import re
from functools import cache

import pytest

from deputy.builder.pipeline import BuildInput, BuildResult, MaterialInput, build
from deputy.builder.provenance import provenance_problems, spec_provenance
from deputy.builder.read import read_material
from deputy.builder.sources import MaterialRef
from deputy.domain.spec import lint_errors
from tests.processes import SHARED_DATA

RETAIL = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
TOOLS = SHARED_DATA / "tau2-bench" / "tools-data.json"
GOAL = "Help customers of our online store with their orders, returns, exchanges and accounts."


def _inputs(*extra: MaterialInput) -> BuildInput:
    return BuildInput(
        goal=GOAL,
        constraints=("Never issue refunds over $200 without a human.",),
        materials=(
            MaterialInput(
                MaterialRef("mat_policy", "policy.md", "text/markdown"),
                (RETAIL / "policy.md").read_bytes(),
            ),
            MaterialInput(
                MaterialRef("mat_tools", "tools-data.json", "application/json"),
                TOOLS.read_bytes(),
            ),
            *extra,
        ),
    )


@cache
def _retail() -> BuildResult:
    stages: list[tuple[str, int, int]] = []
    result = asyncio.run(
        build(_inputs(), model=None, progress=lambda s, d, t: stages.append((s, d, t)))
    )
    assert ("read", 2, 2) in stages
    assert any(stage == "extract" for stage, _, _ in stages)
    return result


def _titles() -> list[str]:
    return [f"{p.id} {p.title}".lower() for p in _retail().spec.procedures]


@pytest.mark.parametrize(
    "topic",
    [r"return", r"exchange", r"cancel", r"address", r"payment", r"authent|identit|verif"],
)
def test_the_policy_sections_become_procedures(topic: str) -> None:
    assert any(re.search(topic, title) for title in _titles()), _titles()


def test_every_rule_points_to_a_real_span_of_the_material() -> None:
    result = _retail()
    reads = [read_material(m.ref, m.data) for m in _inputs().materials]
    assert (
        provenance_problems(result.spec, reads, goal=GOAL, constraints=_inputs().constraints) == []
    )
    policy_text = (RETAIL / "policy.md").read_text()
    provenances = [p for _, p in spec_provenance(result.spec) if p is not None]
    from_policy = [p for p in provenances if p.source == "mat_policy"]
    assert len(from_policy) >= len(result.spec.procedures)
    for provenance in from_policy:
        assert provenance.start is not None and provenance.end is not None
        quoted = " ".join(policy_text[provenance.start : provenance.end].split())
        assert quoted == " ".join((provenance.quote or "").split())


def test_a_tampered_provenance_is_caught() -> None:
    result = _retail()
    reads = [read_material(m.ref, m.data) for m in _inputs().materials]
    procedure = result.spec.procedures[0]
    assert procedure.provenance is not None
    forged = procedure.model_copy(
        update={"provenance": procedure.provenance.model_copy(update={"quote": "Refund anything."})}
    )
    spec = result.spec.model_copy(update={"procedures": (forged, *result.spec.procedures[1:])})
    problems = provenance_problems(spec, reads, goal=GOAL, constraints=())
    assert any(procedure.id in problem for problem in problems)


def test_the_tools_are_the_retail_ones_with_effects_explained() -> None:
    result = _retail()
    retail_names = {tool["name"] for tool in json.loads(TOOLS.read_text())["retail"]["tools"]}
    names = {tool.name for tool in result.spec.tools}
    assert names == retail_names
    assert all(t.reason for t in result.report.tools)
    assert any(t.effect != "read" for t in result.spec.tools)
    ignored = " ".join(item.span for item in result.report.unmapped)
    assert "airline" in ignored and "telecom" in ignored
    assert any(q.kind == "unbound_tool" for q in result.report.questions)


def test_the_spec_lints_without_errors_and_has_a_scenario_suite() -> None:
    result = _retail()
    assert lint_errors(list(result.report.lint)) == []
    procedures = {p.id for p in result.spec.procedures}
    happy = {s.procedure for s in result.scenarios.scenarios if s.kind == "happy_path"}
    assert procedures <= happy
    assert any(s.kind == "edge_case" for s in result.scenarios.scenarios)
    assert result.report.stats.scenarios == len(result.scenarios.scenarios)


def test_the_constraint_becomes_a_rule_with_its_wording() -> None:
    result = _retail()
    constraint_rules = [
        p for p in result.spec.policies if p.provenance and p.provenance.kind == "constraint"
    ] + [
        r
        for r in result.spec.escalation.rules
        if r.provenance and r.provenance.kind == "constraint"
    ]
    assert constraint_rules
    mapped = [c for c in result.report.coverage if c.span == "constraint 1"]
    assert mapped and mapped[0].status == "mapped"
    # no retail tool takes an amount: the report says the $200 cannot be enforced
    gaps = [q for q in result.report.questions if q.refs == ("constraint 1",)]
    assert len(gaps) == 1 and "cannot enforce" in gaps[0].text


def test_a_broken_file_is_reported_and_the_build_goes_on() -> None:
    broken = MaterialInput(
        MaterialRef("mat_broken", "scan.pdf", "application/pdf"), b"%PDF-1.4\nnot really a pdf"
    )
    result = asyncio.run(build(_inputs(broken), model=None))
    assert [p.material for p in result.report.problems] == ["mat_broken"]
    summary = {m.id: m.status for m in result.report.materials}
    assert summary == {"mat_policy": "used", "mat_tools": "used", "mat_broken": "failed"}
    assert len(result.spec.procedures) == len(_retail().spec.procedures)
