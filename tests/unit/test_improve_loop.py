"""The improvement loop end to end with fakes: production conversations where the agent never
offers exchanges → a proposed candidate that handles exchanges, validated against the live
version and filed; a candidate that regresses is rejected and nothing is filed; a validator
error fails the candidate; a request that changes nothing is rejected before validation."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deputy.builder.scenarios import scenario_suite
from deputy.domain.improvement import Candidate, ConversationEvaluation, FailureCluster
from deputy.domain.sandbox_results import TrialResult
from deputy.domain.scenarios import Scenario, ScenarioSuite
from deputy.domain.spec import AgentSpec
from deputy.improve.conversations import ProductionConversation
from deputy.improve.loop import LoopInput, Validation, improve
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.sandbox.compare import compare
from deputy.testing import FunctionModel, structured
from tests.unit.test_improve_conversations import (
    address_failure,
    exchange_failure,
    resolved_return,
    returns_only_spec,
)

END = datetime(2025, 3, 17, tzinfo=UTC)


def _handles_exchanges(spec: AgentSpec) -> bool:
    return any(re.search(r"exchang", f"{p.title} {p.when}", re.I) for p in spec.procedures)


def _trial(scenario_id: str, passed: bool) -> TrialResult:
    return TrialResult(
        scenario_id=scenario_id,
        trial=0,
        seed=7,
        reward=1.0 if passed else 0.0,
        passed=passed,
        termination="customer_stop",
    )


@dataclass
class FakeValidator:
    """A toy sandbox: a regression scenario passes when the spec handles exchanges, every other
    scenario passes, except `breaks` on the candidate."""

    live: AgentSpec
    breaks: tuple[str, ...] = ()
    error: Exception | None = None
    calls: list[tuple[AgentSpec, ScenarioSuite, str]] = field(default_factory=list)

    def _run(self, spec: AgentSpec, suite: ScenarioSuite, candidate: bool) -> list[TrialResult]:
        results = []
        for scenario in suite.scenarios:
            if scenario.kind == "regression":
                passed = _handles_exchanges(spec)
            else:
                passed = not (candidate and scenario.id in self.breaks)
            results.append(_trial(scenario.id, passed))
        return results

    async def validate(self, candidate: AgentSpec, suite: ScenarioSuite, note: str) -> Validation:
        self.calls.append((candidate, suite, note))
        if self.error is not None:
            raise self.error
        comparison = compare(
            self._run(self.live, suite, False), self._run(candidate, suite, True), seed=7
        )
        return Validation(
            candidate_version=4,
            baseline_run_id="sbx_live",
            candidate_run_id="sbx_candidate",
            comparison=comparison,
        )


@dataclass
class FakeSink:
    filed: list[tuple[Candidate, FailureCluster, str]] = field(default_factory=list)

    async def file(self, candidate: Candidate, cluster: FailureCluster, rationale: str) -> str:
        self.filed.append((candidate, cluster, rationale))
        return f"prp_{len(self.filed)}"


def _conversations() -> list[ProductionConversation]:
    return [
        *(exchange_failure(i) for i in range(6)),
        address_failure(0),
        address_failure(1),
        resolved_return(0),
        resolved_return(1),
    ]


def _inputs(spec: AgentSpec, **changes: Any) -> LoopInput:
    base = LoopInput(
        spec=spec,
        live_version=3,
        suite=scenario_suite(spec, name="retail scenarios"),
        conversations=_conversations(),
        window_start=END - timedelta(days=7),
        window_end=END,
    )
    return dataclasses.replace(base, **changes)


def _transcript(request: ModelRequest) -> str:
    text = request.messages[-1].content
    return text.split("<transcript>")[-1]


def _retail_model(change: str, edits: list[dict[str, str]]) -> FunctionModel:
    """Answers the loop's questions: the judge by the transcript, then the change request, the
    builder's edit operations and the regression expectation."""

    def answer(request: ModelRequest) -> ModelResponse:
        if request.schema_name == "conversation_evaluation":
            said = _transcript(request)
            if "exchange" in said:
                return structured(
                    {
                        "intent": "exchange a delivered item",
                        "reasoning": "The agent said it can only help with returns.",
                        "resolved": False,
                        "policy_adherence": True,
                        "tone_ok": True,
                        "cause": "missing_procedure",
                    }
                )
            if "address" in said:
                return structured(
                    {
                        "intent": "change a shipping address",
                        "reasoning": "modify_pending_order_address failed.",
                        "resolved": False,
                        "policy_adherence": True,
                        "tone_ok": True,
                        "cause": "tool_error",
                    }
                )
            return structured(
                {
                    "intent": "return a delivered item",
                    "reasoning": "The return was made and the customer thanked the agent.",
                    "resolved": True,
                    "policy_adherence": True,
                    "tone_ok": True,
                    "cause": "none",
                }
            )
        if request.schema_name == "change_request":
            return structured({"change_request": change})
        if request.schema_name == "spec_edits":
            return structured({"operations": edits})
        if request.schema_name == "expectation":
            return structured({"expectation": "The agent offers to exchange the item."})
        raise AssertionError(f"unexpected question {request.schema_name}")

    return FunctionModel(answer)


EXCHANGE_REQUEST = (
    "Also handle exchanges of delivered items: collect the order id and the items, and offer "
    "another option of the same product instead of only a return."
)
EXCHANGE_EDITS = [
    {
        "op": "add_procedure",
        "title": "Exchange items of a delivered order",
        "text": "The customer wants to exchange items of a delivered order for other options.",
    }
]


def _previous() -> list[ConversationEvaluation]:
    return [
        ConversationEvaluation(
            conversation_id=f"old_{i}",
            agent_version=3,
            outcome="resolved",
            resolved=True,
            policy_adherence=True,
            tone_ok=True,
            failed=False,
        )
        for i in range(10)
    ]


def test_a_recurring_exchange_failure_becomes_a_filed_proposal() -> None:
    spec = returns_only_spec()
    validator, sink = FakeValidator(spec), FakeSink()
    stages: list[tuple[str, int, int]] = []

    async def progress(stage: str, done: int, total: int) -> None:
        stages.append((stage, done, total))

    model = _retail_model(EXCHANGE_REQUEST, EXCHANGE_EDITS)
    inputs = _inputs(spec, previous=_previous())
    report = asyncio.run(
        improve(inputs, model=model, validator=validator, sink=sink, progress=progress)
    )

    assert report.conversations == 10 and report.previous_conversations == 10
    assert [e.failed for e in report.evaluations] == [True] * 8 + [False] * 2
    assert all(e.judged_by == "test:function" for e in report.evaluations)
    assert [(c.id, c.cause, len(c.conversation_ids)) for c in report.clusters] == [
        ("c1", "missing_procedure", 6),
        ("c2", "tool_error", 2),
    ]
    assert report.clusters[0].label == "exchange a delivered item"
    assert {r.cause for r in report.regressions} == {"missing_procedure", "tool_error"}

    (candidate,) = report.candidates
    assert candidate.status == "proposed", candidate.reason
    assert candidate.cluster_id == "c1"
    assert "exchanges of delivered items" in candidate.change_request
    assert candidate.proposal_id == "prp_1"
    assert candidate.version == 4
    assert (candidate.baseline_run_id, candidate.candidate_run_id) == ("sbx_live", "sbx_candidate")
    assert candidate.regression_scenario_ids == (
        "reg_cnv_exchange_0",
        "reg_cnv_exchange_1",
        "reg_cnv_exchange_2",
    )
    assert "exchange_items_of_a_delivered_order" in candidate.diff_text
    assert candidate.comparison is not None
    assert set(candidate.comparison.improvements) == set(candidate.regression_scenario_ids)
    assert "regression scenarios improved: 3 of 3" in candidate.reason

    (validated, suite, note) = validator.calls[0]
    assert _handles_exchanges(validated) and not _handles_exchanges(spec)
    ids = [s.id for s in suite.scenarios]
    assert ids[:3] == list(candidate.regression_scenario_ids)
    assert set(ids) >= {s.id for s in inputs.suite.scenarios}
    assert any(i.startswith("exchange_items_of_a_delivered_order") for i in ids)  # added
    regression: Scenario = suite.scenarios[0]
    assert regression.assertions.judge == ("The agent offers to exchange the item.",)
    assert "c1" in note and "exchange a delivered item" in note

    ((filed, cluster, rationale),) = sink.filed
    assert filed.status == "proposed" and filed.proposal_id is None
    assert cluster.id == "c1"
    assert "6 of 10 production conversations (60%)" in rationale
    assert "added procedure exchange_items_of_a_delivered_order" in rationale
    assert "verdict" in rationale

    assert stages[0] == ("evaluate", 0, 10) and ("evaluate", 10, 10) in stages
    assert [s for s in stages if s[0] != "evaluate"] == [
        ("cluster", 0, 1),
        ("cluster", 1, 1),
        ("propose", 0, 1),
        ("propose", 1, 1),
        ("validate", 1, 1),
    ]


def test_without_a_model_the_rules_propose_handling_exchanges() -> None:
    spec = returns_only_spec()
    validator, sink = FakeValidator(spec), FakeSink()
    report = asyncio.run(
        improve(_inputs(spec, max_candidates=2), model=None, validator=validator, sink=sink)
    )
    exchange, address = report.candidates
    assert exchange.change_request == "Also handle exchange requests."
    assert exchange.status == "proposed", exchange.reason
    assert exchange.proposal_id == "prp_1"
    assert address.cluster_id == "c2"
    assert report.clusters[1].cause == "tool_error"
    assert address.change_request.startswith("For address requests, when a tool call fails")
    # the address rule does not make the toy sandbox's exchange replays pass: still filed,
    # since nothing regressed, and the reason says the replays did not improve
    assert address.status == "proposed"
    assert "regression scenarios improved: 0 of 2" in address.reason
    assert [c.proposal_id for c, _, _ in sink.filed] == [None, None]
    assert len(validator.calls) == 2


def test_a_candidate_that_regresses_is_rejected_and_nothing_is_filed() -> None:
    spec = returns_only_spec()
    validator = FakeValidator(spec, breaks=("return_order_items_happy_path",))
    sink = FakeSink()
    model = _retail_model(EXCHANGE_REQUEST, EXCHANGE_EDITS)
    report = asyncio.run(improve(_inputs(spec), model=model, validator=validator, sink=sink))
    (candidate,) = report.candidates
    assert candidate.status == "rejected"
    assert candidate.reason == "the candidate regressed on return_order_items_happy_path"
    assert candidate.proposal_id is None
    assert candidate.comparison is not None
    assert candidate.comparison.regressions == ("return_order_items_happy_path",)
    assert sink.filed == []


def test_a_validator_error_fails_the_candidate_with_its_message() -> None:
    spec = returns_only_spec()
    validator = FakeValidator(spec, error=RuntimeError("sandbox run sbx_9 was cancelled"))
    sink = FakeSink()
    report = asyncio.run(improve(_inputs(spec), model=None, validator=validator, sink=sink))
    (candidate,) = report.candidates
    assert candidate.status == "failed"
    assert candidate.reason == "validation failed: sandbox run sbx_9 was cancelled"
    assert candidate.regression_scenario_ids  # what was tried stays visible
    assert sink.filed == []


def test_a_request_that_changes_nothing_is_rejected_before_validation() -> None:
    spec = returns_only_spec()
    validator, sink = FakeValidator(spec), FakeSink()
    model = _retail_model("What should the agent do about exchanges?", [])
    report = asyncio.run(improve(_inputs(spec), model=model, validator=validator, sink=sink))
    (candidate,) = report.candidates
    assert candidate.status == "rejected"
    assert candidate.reason.startswith("the change request changed nothing: could not read")
    assert validator.calls == [] and sink.filed == []
    assert len(report.evaluations) == 10 and report.clusters


@pytest.mark.parametrize("conversations", [[], [resolved_return(0)]])
def test_nothing_failed_means_no_candidate(conversations: list[ProductionConversation]) -> None:
    spec = returns_only_spec()
    validator, sink = FakeValidator(spec), FakeSink()
    report = asyncio.run(
        improve(
            _inputs(spec, conversations=conversations), model=None, validator=validator, sink=sink
        )
    )
    assert report.clusters == () and report.candidates == ()
    assert report.conversations == len(conversations)
    assert validator.calls == []
