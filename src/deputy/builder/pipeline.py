"""Goal + materials → AgentSpec draft, scenario suite and build report.

result = await build(BuildInput(goal="...", materials=(MaterialInput(ref, data), ...)),
                     model=model, progress=on_progress)
result.spec, result.scenarios, result.report
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from deputy.builder.asker import Asker
from deputy.builder.assemble import agent_name, assemble, suggest
from deputy.builder.extract import extract
from deputy.builder.mine import mine_transcripts
from deputy.builder.outline import outline_document
from deputy.builder.provenance import provenance_problems
from deputy.builder.read import read_material
from deputy.builder.report import (
    BuildReport,
    BuildStats,
    CoverageItem,
    FileProblem,
    MaterialSummary,
    OpenQuestion,
    ToolInference,
)
from deputy.builder.rules import rule_from_sentence, unenforced_amount, unique_id
from deputy.builder.scenarios import scenario_suite
from deputy.builder.sources import (
    Anchor,
    MaterialProblem,
    MaterialRef,
    OutlineSection,
    ReadResult,
    SourceDocument,
    ToolDescription,
    Transcriber,
    Transcript,
)
from deputy.builder.tool_select import prune_unused, select_tools
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import (
    AgentSpec,
    EscalationRule,
    KnowledgeSource,
    Policy,
    SpecDiff,
    lint_spec,
)
from deputy.llm.types import Model


@dataclass(frozen=True, slots=True)
class MaterialInput:
    ref: MaterialRef
    data: bytes


@dataclass(frozen=True, slots=True)
class BuildInput:
    goal: str
    name: str | None = None
    constraints: tuple[str, ...] = ()
    materials: tuple[MaterialInput, ...] = ()
    tools: tuple[ToolDescription, ...] = ()
    """Tools of the workspace's registered tool sources (bound), besides those in tool files."""


class Progress(Protocol):
    """Told as the build goes: the stage ("read", "extract", "transcripts", "scenarios",
    "check"), how many of its units are done and how many there are."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


@dataclass(frozen=True, slots=True)
class BuildResult:
    spec: AgentSpec
    scenarios: ScenarioSuite
    report: BuildReport


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """A change request applied to a draft: the new spec and suite, the diff a reviewer reads,
    what was done (one line per edit), the scenarios to run again, and questions when part of
    the request could not be applied (nothing applied: `applied` is empty and the spec is the
    same)."""

    spec: AgentSpec
    scenarios: ScenarioSuite
    diff: SpecDiff
    applied: tuple[str, ...]
    affected_scenarios: tuple[str, ...]
    questions: tuple[OpenQuestion, ...] = ()


# ---- the build ---------------------------------------------------------------------------

MAX_FILE_BYTES = 25_000_000


def _no_progress(stage: str, done: int, total: int) -> None:
    del stage, done, total


@dataclass
class _Gathered:
    reads: list[ReadResult] = field(default_factory=list)

    @property
    def documents(self) -> list[SourceDocument]:
        return [d for read in self.reads for d in read.documents]

    @property
    def outlines(self) -> list[OutlineSection]:
        return [o for read in self.reads for o in read.outlines]

    @property
    def transcripts(self) -> list[Transcript]:
        return [t for read in self.reads for t in read.transcripts]

    @property
    def tools(self) -> list[ToolDescription]:
        return [t for read in self.reads for t in read.tools]

    @property
    def problems(self) -> list[MaterialProblem]:
        return [p for read in self.reads for p in read.problems]


async def _read_all(
    build_input: BuildInput, progress: Progress, transcriber: Transcriber | None
) -> _Gathered:
    """Each material read in a worker thread (parsing PDF and DOCX is CPU work, and the event
    loop may be serving an API); progress is told on the caller's thread."""
    gathered = _Gathered()
    total = len(build_input.materials)
    progress("read", 0, total)
    for done, material in enumerate(build_input.materials, start=1):
        read = await anyio.to_thread.run_sync(
            functools.partial(
                read_material,
                material.ref,
                material.data,
                transcriber=transcriber,
                max_bytes=MAX_FILE_BYTES,
            )
        )
        gathered.reads.append(read)
        progress("read", done, total)
    return gathered


@dataclass
class _ConstraintRules:
    """What the client's constraints became."""

    policies: list[Policy] = field(default_factory=list)
    escalation_rules: list[EscalationRule] = field(default_factory=list)
    coverage: list[CoverageItem] = field(default_factory=list)
    questions: list[OpenQuestion] = field(default_factory=list)


def _constraint_rules(
    constraints: Sequence[str],
    tools: Sequence[ToolDescription],
    procedure_ids: Sequence[str],
) -> _ConstraintRules:
    found = _ConstraintRules()
    for number, text in enumerate(constraints, start=1):
        anchor = Anchor(kind="constraint", label=f"constraint {number}", quote=text.strip())
        draft = rule_from_sentence(text, anchor, tools=tools, procedure_ids=procedure_ids)
        if draft is None or not (draft.policies or draft.escalation_rules):
            found.coverage.append(
                CoverageItem(
                    material=None,
                    span=anchor.label,
                    quote=text[:400],
                    status="ignored",
                    reason="no rule could be read from this constraint; state it as "
                    "'never …', '… only if …' or '… over $N needs a human'",
                )
            )
            continue
        found.policies.extend(draft.policies)
        found.escalation_rules.extend(draft.escalation_rules)
        if gap := unenforced_amount(text, draft):
            found.questions.append(OpenQuestion(kind="gap", text=gap, refs=(anchor.label,)))
        found.coverage.append(
            CoverageItem(
                material=None,
                span=anchor.label,
                quote=text[:400],
                status="mapped",
                rules=tuple(
                    [f"policies[{p.id}]" for p in draft.policies]
                    + [f"escalation.rules[{r.id}]" for r in draft.escalation_rules]
                ),
            )
        )
    return found


def _knowledge_sources(sections: Sequence[OutlineSection]) -> list[KnowledgeSource]:
    """One source per material that holds background sections."""
    by_material: dict[str, tuple[str, list[str]]] = {}
    for section in sections:
        material = section.anchor.material
        if material is None:
            continue
        _, titles = by_material.setdefault(material.id, (material.name, []))
        titles.append(section.title)
    taken: set[str] = set()
    sources: list[KnowledgeSource] = []
    for material_id, (name, titles) in by_material.items():
        base = re.sub(r"[^a-z0-9]+", "_", name.lower().rsplit(".", 1)[0]).strip("_")
        base = base if base and base[0].isalpha() else f"source_{base}"
        source_id = unique_id(base[:60], taken)
        taken.add(source_id)
        sources.append(
            KnowledgeSource(
                id=source_id,
                material=material_id,
                title=name[:200],
                description=("Background: " + "; ".join(dict.fromkeys(titles)))[:1000],
            )
        )
    return sources


def _tool_inferences(
    spec: AgentSpec, tools: Sequence[ToolDescription]
) -> tuple[ToolInference, ...]:
    used: dict[str, list[str]] = {}
    for procedure in spec.procedures:
        for step in procedure.steps:
            if step.tool is not None:
                used.setdefault(step.tool, []).append(procedure.id)
    return tuple(
        ToolInference(
            tool=tool.name,
            effect=tool.effect,
            reason=tool.effect_reason,
            bound=tool.binding is not None,
            used_by=tuple(dict.fromkeys(used.get(tool.name, []))),
        )
        for tool in tools
    )


def _unbound_questions(tools: Sequence[ToolDescription]) -> list[OpenQuestion]:
    unbound = [tool.name for tool in tools if tool.binding is None]
    if not unbound:
        return []
    return [
        OpenQuestion(
            kind="unbound_tool",
            text=(
                f"{len(unbound)} tool(s) are known only from a description and are bound to a "
                "placeholder: register the tool source that offers them (OpenAPI document or "
                "MCP server) and rebuild with it, or edit their bindings."
            ),
            refs=tuple(f"tools[{name}]" for name in unbound),
        )
    ]


def _material_summaries(gathered: _Gathered) -> tuple[MaterialSummary, ...]:
    summaries: list[MaterialSummary] = []
    for read in gathered.reads:
        yielded = len(read.documents) + len(read.outlines) + len(read.transcripts) + len(read.tools)
        status = "failed" if not yielded else "partly_used" if read.problems else "used"
        detail = "; ".join(p.message for p in read.problems)[:500]
        if yielded:
            counts = [
                f"{len(read.documents)} document(s)" if read.documents else "",
                f"{len(read.outlines)} guideline section(s)" if read.outlines else "",
                f"{len(read.transcripts)} conversation(s)" if read.transcripts else "",
                f"{len(read.tools)} tool(s)" if read.tools else "",
            ]
            detail = ", ".join(c for c in counts if c) + (f"; {detail}" if detail else "")
        summaries.append(
            MaterialSummary(
                id=read.material.id,
                name=read.material.name,
                kind=read.kind,
                status=status,
                detail=detail,
            )
        )
    return tuple(summaries)


async def build(
    build_input: BuildInput,
    *,
    model: Model | None,
    progress: Progress | None = None,
    transcriber: Transcriber | None = None,
    metadata: Mapping[str, str] | None = None,
) -> BuildResult:
    """Read every material (a bad file becomes a problem in the report), outline the documents,
    extract procedures, policies and escalation rules, add the client's constraints, mine the
    transcripts for intents, edge cases and flows the documents lack, assemble and lint the
    spec, write the scenario suite, and check that every rule's provenance is real.
    `metadata` goes with every model request (`workspace_id`: whom its usage is metered to)."""
    started = time.monotonic()
    report_progress = progress or _no_progress
    asker = Asker(model, metadata=metadata)
    gathered = await _read_all(build_input, report_progress, transcriber)
    sections = [o for d in gathered.documents for o in outline_document(d)]
    sections.extend(gathered.outlines)
    context = "\n".join(
        [build_input.goal, *build_input.constraints, *(d.document.text for d in gathered.documents)]
        + [f"{s.title} {s.intro}" for s in gathered.outlines]
        + [turn.text for t in gathered.transcripts for turn in t.turns[:6]]
    )
    selection = select_tools(gathered.tools, build_input.tools, context=context)
    tools = selection.tools
    extraction = await extract(
        sections, tools, asker=asker, goal=build_input.goal, progress=report_progress
    )
    procedures = list(extraction.procedures)
    mining = await mine_transcripts(
        gathered.transcripts, procedures, tools, asker=asker, progress=report_progress
    )
    learned = (
        await extract(mining.flows, tools, asker=asker, goal=build_input.goal)
        if mining.flows
        else None
    )
    if learned is not None:
        procedures.extend(learned.procedures)
    selection = prune_unused(
        selection, {step.tool for p in procedures for step in p.steps if step.tool}
    )
    tools = selection.tools
    constrained = _constraint_rules(build_input.constraints, tools, [p.id for p in procedures])
    recordings = sum(1 for read in gathered.reads if read.kind == "recording")
    spec = assemble(
        name=agent_name(build_input.goal, build_input.name),
        goal=build_input.goal,
        procedures=procedures,
        policies=[
            *extraction.policies,
            *(learned.policies if learned else ()),
            *constrained.policies,
        ],
        escalation_rules=[
            *extraction.escalation_rules,
            *(learned.escalation_rules if learned else ()),
            *constrained.escalation_rules,
        ],
        tools=tools,
        knowledge=_knowledge_sources(extraction.knowledge),
        suggestions=(
            suggestions := suggest(
                gathered.documents,
                gathered.transcripts,
                goal=build_input.goal,
                recordings=recordings,
            )
        ),
    )
    report_progress("scenarios", 0, 1)
    scenarios = scenario_suite(
        spec,
        edge_cases=mining.edge_cases,
        intents=mining.intents,
        transcripts=gathered.transcripts,
        name=f"{spec.name} scenarios",
    )
    report_progress("scenarios", 1, 1)
    report_progress("check", 0, 1)
    problems = provenance_problems(
        spec, gathered.reads, goal=build_input.goal, constraints=build_input.constraints
    )
    lint = tuple(lint_spec(spec))
    report_progress("check", 1, 1)
    questions = [
        *extraction.questions,
        *(learned.questions if learned else ()),
        *_unbound_questions(tools),
        *constrained.questions,
        *(OpenQuestion(kind="gap", text=f"provenance check: {problem}") for problem in problems),
    ]
    report = BuildReport(
        model=asker.name,
        materials=_material_summaries(gathered),
        problems=tuple(
            FileProblem(
                material=p.material.id, name=p.material.name, code=p.code, message=p.message
            )
            for p in gathered.problems
        ),
        coverage=(
            *extraction.coverage,
            *(learned.coverage if learned else ()),
            *mining.coverage,
            *selection.coverage,
            *constrained.coverage,
        ),
        questions=tuple(questions),
        tools=_tool_inferences(spec, tools),
        lint=lint,
        suggestions=suggestions.notes,
        stats=BuildStats(
            procedures=len(spec.procedures),
            policies=len(spec.policies),
            scenarios=len(scenarios.scenarios),
            tools=len(spec.tools),
            model_calls=asker.stats.calls,
            model_failures=asker.stats.failures,
            input_tokens=asker.stats.input_tokens,
            output_tokens=asker.stats.output_tokens,
            seconds=round(time.monotonic() - started, 3),
        ),
    )
    return BuildResult(spec=spec, scenarios=scenarios, report=report)
