"""The sandbox scenario suite the builder writes for a draft.

    suite = scenario_suite(spec, edge_cases=mining.edge_cases, intents=mining.intents,
                           transcripts=transcripts)

For each procedure: a happy path (a cooperative customer who knows plausible values for its
slots), and edge cases from its structure: each check's failing branch, each confirmation
declined, each handoff, each limit exceeded; plus the edge cases seen in real conversations
of its intent. Across the suite: customers who are not excessively cooperative (impatient,
confused, adversarial) and one who asks for something no procedure covers. From transcripts:
one scripted regression scenario per intent, replaying a real conversation's customer turns.

Ids are snake_case and derived from what a scenario tests (procedure, step, kind), so the suite
written again for an edited spec keeps the ids of the scenarios that did not change:
`affected_scenarios` compares two suites."""

from __future__ import annotations

from collections.abc import Sequence

from deputy.builder.mine import IntentCluster
from deputy.builder.mine_edges import EdgeCase
from deputy.builder.scenarios_cross import (
    anchor_key,
    intent_procedure,
    mined_scenarios,
    persona_scenarios,
    regression_scenario,
)
from deputy.builder.scenarios_paths import happy_path, paths
from deputy.builder.scenarios_procedure import (
    happy_scenario,
    limit_scenarios,
    structural_scenarios,
)
from deputy.builder.sources import Transcript
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec

__all__ = ["affected_scenarios", "scenario_suite"]


def _edge_cases_by_procedure(
    spec: AgentSpec, edge_cases: Sequence[EdgeCase], intents: Sequence[IntentCluster]
) -> dict[str | None, list[EdgeCase]]:
    """Mined edge cases per spec procedure: their own, or that of the intent their conversation
    was grouped under (a learned procedure has the intent's title); None: cross-cutting."""
    by_conversation: dict[tuple[str, str], str] = {}
    for intent in intents:
        procedure_id = intent_procedure(spec, intent)
        if procedure_id is not None:
            by_conversation.update((anchor_key(a), procedure_id) for a in intent.openings)
    attached: dict[str | None, list[EdgeCase]] = {}
    for case in edge_cases:
        own = case.procedure if case.procedure and spec.procedure(case.procedure) else None
        procedure_id = own or by_conversation.get(anchor_key(case.anchor))
        attached.setdefault(procedure_id, []).append(case)
    return attached


def _unique(scenarios: Sequence[Scenario]) -> tuple[Scenario, ...]:
    """The scenarios with repeated ids suffixed `_2`, `_3`... in order."""
    taken: set[str] = set()
    unique: list[Scenario] = []
    for scenario in scenarios:
        base, number, identifier = scenario.id, 2, scenario.id
        while identifier in taken:
            suffix = f"_{number}"
            identifier, number = f"{base[: 64 - len(suffix)]}{suffix}", number + 1
        taken.add(identifier)
        unique.append(scenario.model_copy(update={"id": identifier}))
    return tuple(unique)


def scenario_suite(
    spec: AgentSpec,
    *,
    edge_cases: Sequence[EdgeCase] = (),
    intents: Sequence[IntentCluster] = (),
    transcripts: Sequence[Transcript] = (),
    name: str | None = None,
) -> ScenarioSuite:
    """The suite for `spec` (see the module)."""
    by_key = {(t.material.id, t.id): t for t in transcripts}
    attached = _edge_cases_by_procedure(spec, edge_cases, intents)
    scenarios: list[Scenario] = []
    for procedure in spec.procedures:
        every = paths(procedure)
        scenarios.append(happy_scenario(spec, procedure, happy_path(procedure, every)))
        scenarios.extend(structural_scenarios(spec, procedure, every))
        scenarios.extend(limit_scenarios(spec, procedure))
        scenarios.extend(mined_scenarios(spec, procedure, attached.get(procedure.id, []), by_key))
    scenarios.extend(persona_scenarios(spec))
    scenarios.extend(mined_scenarios(spec, None, attached.get(None, []), by_key))
    for intent in intents:
        replay = regression_scenario(spec, intent, by_key)
        if replay is not None:
            scenarios.append(replay)
    return ScenarioSuite(
        name=(name or f"{spec.name} scenarios")[:200], scenarios=_unique(scenarios)
    )


def affected_scenarios(
    before: ScenarioSuite, after: ScenarioSuite, changed_procedures: set[str]
) -> tuple[str, ...]:
    """Ids of `after`'s scenarios to run again: those that exercise (or expect) a changed
    procedure, and those that are new or whose content differs from `before`."""
    old = {scenario.id: scenario for scenario in before.scenarios}
    return tuple(
        s.id
        for s in after.scenarios
        if s.procedure in changed_procedures
        or s.assertions.expected_procedure in changed_procedures
        or old.get(s.id) != s
    )
