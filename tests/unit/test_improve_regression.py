"""Failing production conversations as regression scenarios: valid scenarios that replay the
real customer's messages, keep the conversation's context and link back to it."""

from __future__ import annotations

import asyncio

from deputy.domain.improvement import FailureCluster
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.improve.conversations import customer_messages
from deputy.improve.regression import regression_scenarios, scenario_id
from deputy.sandbox.customers import customer_for
from tests.unit.test_improve_conversations import (
    agent,
    conversation,
    exchange_failure,
)

EXPECTATION = "The agent offers to exchange the item for another option of the same product."


def _cluster(*ids: str) -> FailureCluster:
    return FailureCluster(
        id="c1",
        cause="missing_procedure",
        label="exchanges of delivered items",
        conversation_ids=ids,
        share=0.5,
    )


def test_each_failing_conversation_becomes_a_scripted_regression_scenario() -> None:
    conversations = [exchange_failure(i) for i in range(5)]
    cluster = _cluster(*(c.id for c in conversations))
    scenarios = regression_scenarios(cluster, conversations, [], expectation=EXPECTATION)
    assert [s.id for s in scenarios] == [
        "reg_cnv_exchange_0",
        "reg_cnv_exchange_1",
        "reg_cnv_exchange_2",
    ]
    first = scenarios[0]
    assert Scenario.model_validate(first.model_dump()) == first
    assert first.kind == "regression"
    assert first.script == tuple(customer_messages(conversations[0]))
    assert first.customer.opening == first.script[0]
    assert first.assertions.judge == (EXPECTATION,)
    assert first.source is not None
    assert (first.source.source, first.source.kind) == ("cnv_exchange_0", "transcript")
    assert first.customer.knows == {
        "email": "ivan.santos3158@example.com",
        "order_id": "#W6893533",
    }
    ScenarioSuite(name="regressions", scenarios=tuple(scenarios))  # ids are unique


def test_the_scenario_replays_the_real_customer_messages() -> None:
    made = exchange_failure(3)
    (scenario,) = regression_scenarios(_cluster(made.id), [made], [], expectation=EXPECTATION)
    replayed = customer_for(scenario, None, seed=0)

    async def play() -> list[str]:
        said: list[str] = []
        while True:
            turn = await replayed.next([])
            if turn.stop is not None:
                return said
            said.append(turn.text)

    assert asyncio.run(play()) == customer_messages(made)


def test_odd_ids_are_made_valid_and_silent_conversations_skipped() -> None:
    assert scenario_id("CNV-01HX/9 z") == "reg_cnv_01hx_9_z"
    assert len(scenario_id("x" * 200)) == 64
    silent = conversation("cnv_silent", agent("Hello? Anyone there?"), outcome="abandoned")
    talking = exchange_failure(0)
    scenarios = regression_scenarios(
        _cluster("cnv_missing", silent.id, talking.id),
        [silent, talking],
        [],
        expectation=EXPECTATION,
        limit=1,
    )
    assert [s.id for s in scenarios] == ["reg_cnv_exchange_0"]
