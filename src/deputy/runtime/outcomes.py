"""How a conversation ended, with the evidence: which exit of which procedure, which tool calls.
Billing counts resolutions from it and evaluation checks it, so the rule is explicit:

- handed to a human at any point → `escalated`;
- otherwise the outcome of the last procedure that reached an exit, ignoring prerequisite
  procedures (those that only establish context for others, like authenticating the customer):
  a conversation that authenticated and stopped there resolved nothing → `abandoned`;
- no procedure reached an exit → `abandoned`, unless the agent ended the conversation with an
  explicit outcome (the `end_conversation` built-in)."""

from __future__ import annotations

from typing import Any

from deputy.domain.spec import AgentSpec, OutcomeKind
from deputy.runtime.state import AgentState, ProcedureExit


def prerequisite_procedures(spec: AgentSpec) -> frozenset[str]:
    """Procedures that save a value other procedures read as a `context` slot."""
    context_slots = {
        slot.id for p in spec.procedures for slot in p.slots if slot.source == "context"
    }
    return frozenset(
        p.id
        for p in spec.procedures
        if any(step.save_as in context_slots for step in p.steps if step.save_as)
    )


def _exit_json(done: ProcedureExit) -> dict[str, Any]:
    return done.model_dump(mode="json")


def conversation_outcome(
    spec: AgentSpec,
    state: AgentState,
    *,
    escalated: bool,
    declared: OutcomeKind | None = None,
) -> tuple[OutcomeKind, dict[str, Any]]:
    """The outcome and its evidence (JSON). `declared`: what the agent's `end_conversation`
    call said, used when no procedure exit says otherwise."""
    completed = [_exit_json(done) for done in state.completed]
    if escalated:
        return "escalated", {"rule": "handed to a human", "procedures": completed}
    prerequisites = prerequisite_procedures(spec)
    decisive = [done for done in state.completed if done.procedure_id not in prerequisites]
    if decisive:
        last = decisive[-1]
        return last.outcome, {
            "rule": "the last procedure exit",
            "procedure_id": last.procedure_id,
            "exit_id": last.exit_id,
            "tool_call_ids": list(last.tool_call_ids),
            "procedures": completed,
        }
    if declared is not None:
        return declared, {"rule": "declared by the agent", "procedures": completed}
    reason = (
        "only prerequisite procedures finished" if completed else "no procedure reached an exit"
    )
    return "abandoned", {"rule": reason, "procedures": completed}
