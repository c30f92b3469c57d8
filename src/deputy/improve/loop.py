"""The improvement loop over one agent's recent production conversations:

    report = await improve(LoopInput(spec, live_version, suite, conversations, start, end),
                           model=model, validator=validator, sink=sink)

1. **evaluate** every conversation (`deputy.improve.evaluate`);
2. **cluster** the failures by cause and intent, and compare failure rates with the previous
   period's evaluations (`deputy.improve.cluster`);
3. **propose**, for each of the `max_candidates` largest clusters: a change request
   (`deputy.improve.propose`) applied by the builder (`apply_change`) to the live spec (no diff:
   the candidate is rejected with the builder's questions), a sentence saying what the agent
   should now do, and regression scenarios replaying the cluster's failing conversations;
4. **validate**: the validator stores the candidate as a new version and runs the live version
   and the candidate on the same suite (the regression scenarios, the agent's existing
   scenarios, and those the change added) with the same seed. The candidate is filed as a
   proposal only when no scenario regressed and the verdict is not `worse`; otherwise it is
   rejected with the regressed scenario ids. A validator (or filing) error fails the candidate
   with its message.

Every step's result lands in the report, rejected and failed candidates included. The library
touches no database: the validator and the proposal sink are the platform's ports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from deputy.builder.changes import apply_change
from deputy.builder.pipeline import ChangeResult
from deputy.builder.sources import ToolDescription
from deputy.domain.improvement import (
    Candidate,
    ConversationEvaluation,
    FailureCluster,
    ImprovementReport,
)
from deputy.domain.sandbox_results import Comparison
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec, render_diff_text
from deputy.improve.cluster import cluster_failures, period_regressions
from deputy.improve.conversations import ProductionConversation
from deputy.improve.evaluate import evaluate_all
from deputy.improve.propose import change_request, regression_expectation
from deputy.improve.regression import regression_scenarios
from deputy.llm.types import Model
from deputy.sandbox.compare import render_comparison

Progress = Callable[[str, int, int], Awaitable[None]]


@dataclass(frozen=True)
class Validation:
    """A candidate stored as `candidate_version` and compared with the live version."""

    candidate_version: int
    baseline_run_id: str
    candidate_run_id: str
    comparison: Comparison


class Validator(Protocol):
    async def validate(self, candidate: AgentSpec, suite: ScenarioSuite, note: str) -> Validation:
        """Store `candidate` as a new (undeployed) version and run the live version and it on
        `suite` with the same seed; `note` says where the version came from."""
        ...


class ProposalSink(Protocol):
    async def file(self, candidate: Candidate, cluster: FailureCluster, rationale: str) -> str:
        """File `candidate` as a proposal for review; its id."""
        ...


@dataclass(frozen=True)
class LoopInput:
    spec: AgentSpec
    """The live version's spec."""
    live_version: int
    suite: ScenarioSuite
    """The agent's existing scenarios (what must not regress)."""
    conversations: Sequence[ProductionConversation]
    window_start: datetime
    window_end: datetime
    previous: Sequence[ConversationEvaluation] = ()
    """The previous period's evaluations, for regressions."""
    max_candidates: int = 1
    tools: Sequence[ToolDescription] = ()
    """Tool descriptions the builder may bind in a change (beyond the spec's own)."""
    suite_scenarios: int | None = None
    """Existing (and added) scenarios run beside the regression scenarios; None: all."""


async def _no_progress(stage: str, done: int, total: int) -> None:
    del stage, done, total


def candidate_suite(
    regression: Sequence[Scenario],
    existing: ScenarioSuite,
    changed: ScenarioSuite,
    *,
    affected: Sequence[str] = (),
    limit: int | None = None,
) -> ScenarioSuite:
    """The regression scenarios, then at most `limit` of the existing suite and the scenarios
    the change added (a scenario whose id is already taken is left out: the earlier one wins):
    those the change affects first, then happy paths, then the rest, each in suite order. A
    bound matters on local models, which take about a minute per scenario and version."""
    taken = {scenario.id for scenario in regression}
    pool: list[Scenario] = []
    for scenario in (*existing.scenarios, *changed.scenarios):
        if scenario.id not in taken:
            taken.add(scenario.id)
            pool.append(scenario)
    touched = set(affected)

    def rank(scenario: Scenario) -> int:
        if scenario.id in touched:
            return 0
        return 1 if scenario.kind == "happy_path" else 2

    chosen = sorted(pool, key=rank)[:limit] if limit is not None else pool
    return ScenarioSuite(name=existing.name, scenarios=(*regression, *chosen))


def _verdict(comparison: Comparison, regression_ids: Sequence[str]) -> tuple[bool, str]:
    """(file it?, why), from the A/B."""
    if comparison.regressions:
        return False, f"the candidate regressed on {', '.join(comparison.regressions)}"
    if comparison.verdict == "worse":
        return False, (
            f"the candidate did worse than the live version (pass^1 "
            f"{comparison.baseline_pass_1:.0%} -> {comparison.candidate_pass_1:.0%}, "
            f"p = {comparison.p_value:.3f})"
        )
    wanted = set(regression_ids)
    fixed = sum(1 for d in comparison.per_scenario if d.scenario_id in wanted and d.delta > 0)
    return True, (
        f"no scenario regressed; verdict {comparison.verdict.replace('_', ' ')} (pass^1 "
        f"{comparison.baseline_pass_1:.0%} -> {comparison.candidate_pass_1:.0%}); regression "
        f"scenarios improved: {fixed} of {len(regression_ids)}"
    )


def _rationale(
    cluster: FailureCluster,
    evaluated: int,
    request: str,
    change: ChangeResult,
    validation: Validation,
    live_version: int,
) -> str:
    applied = "\n".join(f"- {line}" for line in change.applied) or "- (nothing listed)"
    return (
        f"{len(cluster.conversation_ids)} of {evaluated} production conversations "
        f"({cluster.share:.0%}) failed with cause {cluster.cause} on requests like "
        f'"{cluster.label}".\n\nChange request: {request}\n\nWhat the builder changed:\n'
        f"{applied}\n\nSandbox A/B of version {validation.candidate_version} against the live "
        f"version {live_version}:\n{render_comparison(validation.comparison)}"
    )[:20_000]


async def _try_cluster(
    inputs: LoopInput,
    cluster: FailureCluster,
    evaluations: Sequence[ConversationEvaluation],
    *,
    model: Model | None,
    validator: Validator,
    sink: ProposalSink,
    step: Callable[[str], Awaitable[None]],
) -> Candidate:
    request = await change_request(cluster, inputs.conversations, evaluations, inputs.spec, model)
    change = await apply_change(inputs.spec, inputs.suite, request, model=model, tools=inputs.tools)
    if change.diff.empty:
        questions = "; ".join(q.text for q in change.questions) or "no question asked"
        await step("propose")
        await step("validate")  # nothing to validate
        return Candidate(
            cluster_id=cluster.id,
            change_request=request,
            status="rejected",
            reason=f"the change request changed nothing: {questions}"[:2000],
        )
    expectation = await regression_expectation(cluster, request, model)
    regression = regression_scenarios(
        cluster, inputs.conversations, evaluations, expectation=expectation
    )
    suite = candidate_suite(
        regression,
        inputs.suite,
        change.scenarios,
        affected=change.affected_scenarios,
        limit=inputs.suite_scenarios,
    )
    draft = Candidate(
        cluster_id=cluster.id,
        change_request=request,
        status="proposed",
        reason="",
        diff_text=render_diff_text(change.diff),
        regression_scenario_ids=tuple(s.id for s in regression),
    )
    await step("propose")
    note = f"candidate from the improvement loop for cluster {cluster.id} ({cluster.cause}: "
    note += f"{cluster.label})"
    try:
        validation = await validator.validate(change.spec, suite, note[:500])
    except Exception as exc:
        await step("validate")
        return draft.model_copy(
            update={"status": "failed", "reason": f"validation failed: {exc}"[:2000]}
        )
    await step("validate")
    validated = draft.model_copy(
        update={
            "version": validation.candidate_version,
            "baseline_run_id": validation.baseline_run_id,
            "candidate_run_id": validation.candidate_run_id,
            "comparison": validation.comparison,
        }
    )
    keep, why = _verdict(validation.comparison, draft.regression_scenario_ids)
    if not keep:
        return validated.model_copy(update={"status": "rejected", "reason": why})
    proposed = validated.model_copy(update={"reason": why})
    rationale = _rationale(
        cluster, len(evaluations), request, change, validation, inputs.live_version
    )
    try:
        proposal_id = await sink.file(proposed, cluster, rationale)
    except Exception as exc:
        return proposed.model_copy(
            update={"status": "failed", "reason": f"filing the proposal failed: {exc}"[:2000]}
        )
    return proposed.model_copy(update={"proposal_id": proposal_id})


async def improve(
    inputs: LoopInput,
    *,
    model: Model | None,
    validator: Validator,
    sink: ProposalSink,
    progress: Progress | None = None,
) -> ImprovementReport:
    """Run the loop once (see the module); `progress(stage, done, total)` for the stages
    "evaluate", "cluster", "propose" and "validate"."""
    report = progress or _no_progress
    conversations = inputs.conversations
    await report("evaluate", 0, len(conversations))

    async def evaluated(done: int, total: int) -> None:
        await report("evaluate", done, total)

    evaluations = await evaluate_all(conversations, inputs.spec, model, evaluated)
    await report("cluster", 0, 1)
    clusters = cluster_failures(evaluations)
    regressions = period_regressions(evaluations, inputs.previous)
    await report("cluster", 1, 1)
    chosen = clusters[: max(0, inputs.max_candidates)]
    done = {"propose": 0, "validate": 0}

    async def step(stage: str) -> None:
        done[stage] += 1
        await report(stage, done[stage], len(chosen))

    await report("propose", 0, len(chosen))
    candidates = [
        await _try_cluster(
            inputs, cluster, evaluations, model=model, validator=validator, sink=sink, step=step
        )
        for cluster in chosen
    ]
    return ImprovementReport(
        window_start=inputs.window_start,
        window_end=inputs.window_end,
        conversations=len(conversations),
        previous_conversations=len(inputs.previous),
        evaluations=tuple(evaluations),
        clusters=tuple(clusters),
        regressions=tuple(regressions),
        candidates=tuple(candidates),
    )
