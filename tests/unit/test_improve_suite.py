"""The A/B suite of a candidate: regression scenarios first, then a bounded share of the rest
(what the change affects, then happy paths), never a scenario twice."""

from __future__ import annotations

from deputy.domain.scenarios import CustomerBrief, Scenario, ScenarioSuite
from deputy.improve.loop import candidate_suite


def scenario(scenario_id: str, kind: str = "edge_case") -> Scenario:
    return Scenario.model_validate(
        {
            "id": scenario_id,
            "title": scenario_id,
            "kind": kind,
            "customer": CustomerBrief(persona="A customer.", goal="Get help.").model_dump(),
            "script": ["Hello"],
        }
    )


def test_the_bound_keeps_regressions_then_affected_then_happy_paths() -> None:
    regression = [scenario("reg_1"), scenario("reg_2")]
    existing = ScenarioSuite(
        name="retail",
        scenarios=(
            scenario("edge_a"),
            scenario("happy_a", "happy_path"),
            scenario("edge_b"),
            scenario("happy_b", "happy_path"),
        ),
    )
    changed = ScenarioSuite(name="retail", scenarios=(*existing.scenarios, scenario("new_one")))
    suite = candidate_suite(regression, existing, changed, affected=["edge_b"], limit=3)
    assert [s.id for s in suite.scenarios] == ["reg_1", "reg_2", "edge_b", "happy_a", "happy_b"]
    whole = candidate_suite(regression, existing, changed)
    assert [s.id for s in whole.scenarios] == [
        "reg_1",
        "reg_2",
        "edge_a",
        "happy_a",
        "edge_b",
        "happy_b",
        "new_one",
    ]
    assert [s.id for s in candidate_suite(regression, existing, changed, limit=0).scenarios] == [
        "reg_1",
        "reg_2",
    ]
