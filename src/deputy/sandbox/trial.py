"""One trial: one simulated conversation between a customer and an agent version, in a tool
world of its own, then its evaluation.

Everything stateful is the trial's own: the tool world (`WorldFactory.open`, a fresh copy of
the seed state), the transcript (`MemoryJournal`), the tool-call ledger (`InMemoryCallLedger`)
and the customer's memory. The agent runs on the real runtime (`AgentRuntime.run_turn`) and its
tools go through the real executor (every check, confirmation, limit, idempotency), whose only
clients are the world's: a sandbox trial has no way to reach the client's production systems."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import JsonValue

from deputy.domain.sandbox_results import (
    CheckResult,
    Termination,
    ToolCallRecord,
    TranscriptMessage,
    TrialResult,
    UsageTotals,
)
from deputy.domain.scenarios import GuardrailStage, Scenario
from deputy.domain.spec import AgentSpec
from deputy.llm.types import Model, Usage
from deputy.runtime.context import ConversationRef, TurnInput
from deputy.runtime.journal import INBOUND_KEY, Entry, MemoryJournal, RecordedEntry
from deputy.runtime.outcomes import conversation_outcome
from deputy.runtime.ports import NoKnowledge, Retriever
from deputy.runtime.state import AgentState
from deputy.runtime.turn import AgentRuntime, TurnResult
from deputy.sandbox.customers import customer_for
from deputy.sandbox.evaluate import evaluate, judge_assertions
from deputy.sandbox.judge import ModelJudge
from deputy.sandbox.models import TalliedModel
from deputy.sandbox.ports import (
    Customer,
    CustomerStop,
    Judgement,
    ToolWorld,
    TrialEvidence,
    WorldFactory,
)
from deputy.sandbox.replay import expected_state, states_match
from deputy.tools.builtins import KnowledgePassage, MemoryScope
from deputy.tools.executor import ToolExecutor
from deputy.tools.memory_ledger import InMemoryCallLedger
from deputy.tools.results import CallContext

SANDBOX_WORKSPACE = "sandbox"
MAX_OUTPUT_CHARS = 4000
"""A tool output kept in a trial's record is cut to this (the agent saw it whole)."""

Price = Callable[[str, Usage], float | None]


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a run shares. Models are already limited per model (see
    `deputy.sandbox.models.ModelLimits`)."""

    spec: AgentSpec
    agent: Model
    world: WorldFactory
    customer: Model | None = None
    judge: Model | None = None
    guard: Model | None = None
    retriever: Retriever | None = None
    price: Price | None = None
    agent_id: str = "sandbox_agent"
    agent_for: Callable[[Scenario], Model] | None = None
    """A model chosen per scenario instead of `agent` (the oracle: each task's own actions)."""
    customer_for: Callable[[Scenario, int], Customer] | None = None
    """A customer per scenario and seed instead of the scripted or simulated one."""
    expected_states: dict[str, JsonValue] = field(default_factory=dict)
    """Reference end states by scenario id, computed once for all of a scenario's trials."""


def trial_seed(seed: int, scenario_id: str, trial: int) -> int:
    """The seed of one trial: the same for the same run seed, scenario and trial number, so two
    versions compared on the same seed meet the same customers."""
    return (seed * 1_000_003 + zlib.crc32(scenario_id.encode()) * 101 + trial) % (2**31)


class SandboxBuiltins:
    """Built-ins of a sandbox conversation: knowledge lookups on the run's retriever (read
    only), facts remembered in memory of this trial only."""

    def __init__(self, retriever: Retriever) -> None:
        self._retriever = retriever
        self.memory: list[str] = []

    async def lookup_knowledge(
        self, ctx: CallContext, query: str, k: int
    ) -> list[KnowledgePassage]:
        passages = await self._retriever.search(query, k)
        return [
            KnowledgePassage(
                text=p.text,
                source=str(p.citation.get("document_id") or "knowledge"),
                title=p.citation.get("title"),
                location=p.citation.get("location"),
                score=p.citation.get("score"),
            )
            for p in passages
        ]

    async def remember_fact(self, ctx: CallContext, about: MemoryScope, fact: str) -> None:
        self.memory.append(fact)


def _json(value: Any) -> JsonValue:
    text = json.dumps(value, default=str)
    if len(text) > MAX_OUTPUT_CHARS:
        return text[:MAX_OUTPUT_CHARS] + "…"
    loaded: JsonValue = json.loads(text)
    return loaded


def _usage(calls: int, usage: Usage, model: Model | None, price: Price | None) -> UsageTotals:
    cost = price(model.name, usage) if price is not None and model is not None and calls else None
    return UsageTotals(
        calls=calls,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
    )


class _Conversation:
    """The transcript of a trial as the customer, the evaluation and a reviewer see it."""

    def __init__(self) -> None:
        self.lines: list[TranscriptMessage] = []
        self.calls: list[ToolCallRecord] = []
        self.guardrails: list[tuple[GuardrailStage, str]] = []

    def spoken(self) -> list[TranscriptMessage]:
        return [line for line in self.lines if line.role in ("customer", "agent")]

    def add_turn(self, turn: int, entries: list[RecordedEntry]) -> None:
        for entry in entries:
            if entry.kind == "agent_message":
                self.lines.append(TranscriptMessage(role="agent", turn=turn, text=entry.text))
            elif entry.kind == "tool_call":
                data = entry.data
                ok = data.get("status") == "succeeded"
                arguments = _json(data.get("arguments") or {})
                record = ToolCallRecord(
                    tool=str(data.get("tool")),
                    arguments=arguments if isinstance(arguments, dict) else {},
                    ok=ok,
                    code=str(data.get("code") or ("ok" if ok else data.get("status"))),
                    output=_json(data.get("output")),
                    turn=turn,
                )
                self.calls.append(record)
                self.lines.append(
                    TranscriptMessage(
                        role="tool",
                        turn=turn,
                        text=str(data.get("message") or ""),
                        tool=record.tool,
                        arguments=record.arguments,
                        ok=ok,
                        data={"code": record.code},
                    )
                )
            elif entry.kind == "guardrail":
                stage, action = entry.data.get("stage"), entry.data.get("action")
                if stage in ("input", "output", "tool") and isinstance(action, str):
                    self.guardrails.append((stage, action))
                    if action != "allow":
                        self.lines.append(
                            TranscriptMessage(
                                role="event",
                                turn=turn,
                                text=f"guardrail {stage}: {action}",
                                data={"stage": stage, "action": action},
                            )
                        )
            elif entry.kind == "handoff":
                reason = str(entry.data.get("reason") or "")
                self.lines.append(
                    TranscriptMessage(
                        role="event",
                        turn=turn,
                        text=f"handed off to a human: {reason}",
                        data={"trigger": _json(entry.data.get("trigger"))},
                    )
                )


@dataclass
class _Played:
    talk: _Conversation
    state: AgentState
    last: TurnResult | None = None
    termination: Termination = "max_turns"
    turn_seconds: list[float] = field(default_factory=list)
    customer_usage: Usage = field(default_factory=Usage)
    customer_calls: int = 0


_STOPS: dict[CustomerStop, Termination] = {
    "stop": "customer_stop",
    "transfer": "transfer",
    "out_of_scope": "out_of_scope",
}


async def _play(
    setup: TrialSetup,
    scenario: Scenario,
    customer: Customer,
    world: ToolWorld,
    conversation_id: str,
) -> _Played:
    """Customer and agent take turns until one of them ends it or `max_turns` is reached."""
    ledger = InMemoryCallLedger()
    builtins = SandboxBuiltins(setup.retriever or NoKnowledge())
    executor = ToolExecutor(setup.spec, world.clients(setup.spec), ledger, builtins)
    runtime = AgentRuntime(
        setup.spec,
        model=setup.agent,
        tools=executor,
        retriever=setup.retriever,
        guard_model=setup.guard,
    )
    ref = ConversationRef(
        workspace_id=SANDBOX_WORKSPACE,
        agent_id=setup.agent_id,
        conversation_id=conversation_id,
        channel="sandbox",
    )
    journal = MemoryJournal()
    played = _Played(_Conversation(), AgentState())
    talk = played.talk
    if runtime.greeting:
        talk.lines.append(TranscriptMessage(role="agent", turn=0, text=runtime.greeting))
    try:
        for turn in range(1, scenario.max_turns + 1):
            said = await customer.next(talk.spoken())
            played.customer_usage = played.customer_usage + said.usage
            played.customer_calls += said.calls
            if said.text:
                talk.lines.append(TranscriptMessage(role="customer", turn=turn, text=said.text))
            if said.stop is not None:
                played.termination = _STOPS[said.stop]
                break
            journal.start_turn(f"turn_{turn}")
            history = tuple(journal.entries)
            inbound = await journal.append(Entry("customer_message", INBOUND_KEY, text=said.text))
            started = time.monotonic()
            last = await runtime.run_turn(
                TurnInput(
                    conversation=ref,
                    spec=setup.spec,
                    state=played.state,
                    inbound=inbound,
                    turn_id=journal.turn_id,
                    history=history,
                    memory=tuple(builtins.memory),
                ),
                journal,
            )
            played.turn_seconds.append(time.monotonic() - started)
            played.state, played.last = last.state, last
            talk.add_turn(turn, journal.turn_entries())
            if last.handoff is not None or last.transfer is not None:
                played.termination = "transfer"
                break
            if last.end is not None:
                played.termination = "agent_ended"
                break
    finally:
        await executor.aclose()
    return played


async def _judge(
    setup: TrialSetup, scenario: Scenario, transcript: list[TranscriptMessage]
) -> Judgement:
    assertions = judge_assertions(scenario)
    if not assertions:
        return Judgement(checks=())
    if setup.judge is None:
        return Judgement(
            checks=tuple(
                CheckResult(kind=kind, passed=False, detail=f"{text} (no judge model configured)")
                for kind, text in assertions
            )
        )
    return await ModelJudge(setup.judge).judge(assertions, transcript)


async def _end_state(
    setup: TrialSetup, scenario: Scenario, world: ToolWorld
) -> tuple[bool | None, str]:
    """Whether the world ended where the scenario's reference actions lead a fresh copy (None:
    not compared). The reference state is computed once per scenario."""
    assertions = scenario.assertions
    if not assertions.reference_actions and "DB" not in assertions.reward_basis:
        return None, ""
    actual = await world.state()
    if scenario.id not in setup.expected_states:
        setup.expected_states[scenario.id] = await expected_state(
            setup.world, assertions.reference_actions
        )
    expected = setup.expected_states[scenario.id]
    if actual is None or expected is None:
        return None, "the tool world's state cannot be observed"
    return states_match(actual, expected)


async def run_trial(setup: TrialSetup, scenario: Scenario, trial: int, seed: int) -> TrialResult:
    """Run and evaluate one trial. A failure to run is a result too (termination `error`)."""
    started = time.monotonic()
    world: ToolWorld | None = None
    try:
        customer = (
            setup.customer_for(scenario, seed)
            if setup.customer_for is not None
            else customer_for(scenario, setup.customer, seed=seed)
        )
        world = await setup.world.open()
        conversation_id = f"sbx_{scenario.id}_{trial}"
        agent = TalliedModel(setup.agent_for(scenario) if setup.agent_for else setup.agent)
        played = await _play(
            replace(setup, agent=agent), scenario, customer, world, conversation_id
        )
        talk, state, last = played.talk, played.state, played.last
        escalated = last is not None and last.handoff is not None
        declared = last.end.outcome if last is not None and last.end is not None else None
        outcome, _evidence = conversation_outcome(
            setup.spec, state, escalated=escalated, declared=declared
        )
        db_match, db_detail = await _end_state(setup, scenario, world)
        judged = await _judge(setup, scenario, talk.lines)
        evidence = TrialEvidence(
            transcript=tuple(talk.lines),
            tool_calls=tuple(talk.calls),
            outcome=outcome,
            procedures=tuple(done.procedure_id for done in state.completed),
            guardrail_actions=tuple(talk.guardrails),
            db_match=db_match,
            db_detail=db_detail,
            judged=judged.checks,
        )
        verdict = evaluate(scenario, evidence)
        return TrialResult(
            scenario_id=scenario.id,
            trial=trial,
            seed=seed,
            reward=verdict.reward,
            passed=verdict.passed,
            components=verdict.components,
            checks=verdict.checks,
            outcome=outcome,
            procedures=evidence.procedures,
            termination=played.termination,
            turns=len(played.turn_seconds),
            transcript=evidence.transcript,
            tool_calls=evidence.tool_calls,
            agent_usage=_usage(agent.tally.calls, agent.tally.usage, setup.agent, setup.price),
            customer_usage=_usage(
                played.customer_calls, played.customer_usage, setup.customer, setup.price
            ),
            judge_usage=_usage(judged.calls, judged.usage, setup.judge, setup.price),
            seconds=time.monotonic() - started,
            turn_seconds=tuple(played.turn_seconds),
        )
    except Exception as error:  # a trial that cannot run is reported, never silently dropped
        return TrialResult(
            scenario_id=scenario.id,
            trial=trial,
            seed=seed,
            reward=0.0,
            passed=False,
            termination="error",
            seconds=time.monotonic() - started,
            error=f"{type(error).__name__}: {error}"[:2000],
        )
    finally:
        if world is not None:
            await world.aclose()
