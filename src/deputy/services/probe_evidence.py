"""What a probe's production conversation shows, in the sandbox's evidence format, and the verdict
on it: the same checks as a sandbox trial (`deputy.sandbox.evaluate`), read from production.

- the transcript: the conversation's entries as sandbox lines
  (`deputy.improve.conversations.transcript_from_entries`);
- the tool calls: the production tool-call ledger (`tool_calls`) of the conversation, each with
  the turn of its step key (`turn-<n>/...`), `ok` when it succeeded;
- guardrail decisions: the conversation's `guardrail` entries (stage, action);
- procedures: those the conversation's state records as finished;
- the outcome: the one the conversation was closed with.

A run whose slowest reply exceeds the probe's `max_turn_latency_ms` gets a failed `latency`
check besides the scenario's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import JsonValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import probes as p
from deputy.domain.sandbox_results import CheckResult, ToolCallRecord
from deputy.domain.scenarios import GuardrailStage, Scenario
from deputy.improve.conversations import transcript_from_entries
from deputy.runtime.state import AgentState
from deputy.sandbox.evaluate import COMPONENT_KINDS, evaluate
from deputy.sandbox.ports import TrialEvidence
from deputy.store import tables as t

_STEP_TURN = re.compile(r"^turn-(\d+)/")
_STAGES: frozenset[str] = frozenset({"input", "output", "tool"})


@dataclass(frozen=True)
class Observed:
    """A closed probe conversation: its evidence (not yet judged) and which version answered."""

    evidence: TrialEvidence
    agent_version: int
    deployment_arm: str | None
    outcome: str | None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[p.ProbeCheck, ...]
    reason: str
    """The failed checks that count, for a reader ('' when it passed)."""


def step_turn(step_key: str) -> int:
    """The turn of a ledger step key (`turn-3/tool/...`: 3; 0 when it names none)."""
    match = _STEP_TURN.match(step_key)
    return int(match.group(1)) if match else 0


def _json_dict(value: object) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        return {}
    return {str(key): item for key, item in value.items()}


def ledger_calls(rows: Iterable[t.ToolCallRow]) -> tuple[ToolCallRecord, ...]:
    """The ledger's calls as the sandbox's records (refused ones included, as in a trial)."""
    records = []
    for row in rows:
        ok = row.status == "succeeded"
        records.append(
            ToolCallRecord(
                tool=row.tool,
                arguments=_json_dict(row.arguments),
                ok=ok,
                code=row.code or ("ok" if ok else row.status),
                output=row.output,
                turn=step_turn(row.step_key),
            )
        )
    return tuple(records)


def guardrail_actions(
    entries: Iterable[t.ConversationEntry],
) -> tuple[tuple[GuardrailStage, str], ...]:
    found: list[tuple[GuardrailStage, str]] = []
    for entry in entries:
        stage, action = entry.data.get("stage"), entry.data.get("action")
        if entry.kind == "guardrail" and stage in _STAGES and isinstance(action, str):
            found.append((stage, action))
    return tuple(found)


def observe(session: Session, conversation_id: str) -> Observed:
    conversation = session.get_one(t.Conversation, conversation_id, populate_existing=True)
    entries = session.scalars(
        select(t.ConversationEntry)
        .where(t.ConversationEntry.conversation_id == conversation_id)
        .order_by(t.ConversationEntry.seq)
    ).all()
    calls = session.scalars(
        select(t.ToolCallRow)
        .where(t.ToolCallRow.conversation_id == conversation_id)
        .order_by(t.ToolCallRow.started_at, t.ToolCallRow.id)
    ).all()
    state = AgentState.model_validate(conversation.state)
    evidence = TrialEvidence(
        transcript=transcript_from_entries(entries),
        tool_calls=ledger_calls(calls),
        outcome=conversation.outcome,
        procedures=tuple(done.procedure_id for done in state.completed),
        guardrail_actions=guardrail_actions(entries),
    )
    return Observed(
        evidence=evidence,
        agent_version=conversation.agent_version,
        deployment_arm=conversation.deployment_arm,
        outcome=conversation.outcome,
    )


def latency_check(max_turn_latency_ms: int, turns: Sequence[p.ProbeTurn]) -> p.ProbeCheck:
    timed = [turn for turn in turns if turn.latency_ms is not None]
    slowest = max(timed, key=lambda turn: turn.latency_ms or 0, default=None)
    if slowest is None or slowest.latency_ms is None:
        return p.ProbeCheck(kind="latency", passed=False, detail="no reply was timed")
    within = slowest.latency_ms <= max_turn_latency_ms
    return p.ProbeCheck(
        kind="latency",
        passed=within,
        detail=f"slowest reply {slowest.latency_ms} ms (turn {slowest.number}), "
        f"limit {max_turn_latency_ms} ms",
    )


def _check(result: CheckResult) -> p.ProbeCheck:
    return p.ProbeCheck(
        kind=result.kind, passed=result.passed, detail=result.detail, reasoning=result.reasoning
    )


def verdict(
    scenario: Scenario,
    evidence: TrialEvidence,
    turns: Sequence[p.ProbeTurn],
    max_turn_latency_ms: int | None,
) -> Verdict:
    """The sandbox's verdict on the production evidence (judged checks included), plus the
    latency limit. Checks outside the scenario's reward basis are reported but do not count."""
    scored = evaluate(scenario, evidence)
    counted = {kind for component in scored.components for kind in COMPONENT_KINDS[component]}
    checks = [_check(result) for result in scored.checks]
    failing = [check.detail for check in checks if not check.passed and check.kind in counted]
    if max_turn_latency_ms is not None:
        latency = latency_check(max_turn_latency_ms, turns)
        checks.append(latency)
        if not latency.passed:
            failing.append(latency.detail)
    return Verdict(passed=not failing, checks=tuple(checks), reason="; ".join(failing))
