"""What the turn runner (`deputy.services.conversation_turns`) tells observability: the
`invoke_agent` span of each agent's run, the entries a turn records as they are recorded (tool
calls, guardrail stops), and the turn's end (status, latency from the customer's message, the
handoff or close it led to).

A turn `failed` for the availability SLI when it failed outright, or when the agent's model
failed so that it could only apologise (the reply carries the model's error code) or hand the
customer over (a `model_outage` handoff). A reply a guardrail blocked is the system working:
the turn is `completed`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span

from deputy.observability.context import working_for
from deputy.observability.genai import end_invoke_agent_span, invoke_agent_span
from deputy.observability.tracing import TURN_TRACES
from deputy.runtime.journal import RecordedEntry
from deputy.runtime.turn import TurnResult
from deputy.services.conversation_turn_records import Ended, PreparedTurn
from deputy.services.platform import Platform
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.conversations")


def model_failure(result: TurnResult) -> str | None:
    """The error code of the agent's model when it kept the agent from answering, else None."""
    error = result.reply.data.get("error")
    if error is not None:
        return str(error)
    if result.handoff is not None and result.handoff.trigger == "model_outage":
        return "model_unavailable"
    return None


@contextmanager
def agent_run_span(platform: Platform, running: PreparedTurn) -> Iterator[Span]:
    """The `invoke_agent` span of `running`'s agent answering the turn; log lines written inside
    carry its trace and the workspace, and the turn's reply is sent in its trace."""
    ref = running.ref
    with (
        working_for(ref.workspace_id),
        invoke_agent_span(
            workspace_id=ref.workspace_id,
            agent_id=ref.agent_id,
            agent_name=running.spec.name,
            agent_version=running.agent_version,
            conversation_id=ref.conversation_id,
            channel=ref.channel,
            model=running.agent_model or platform.settings.default_model,
            customer_text=running.inbound.text,
        ) as span,
    ):
        TURN_TRACES.remember(running.turn_id)
        yield span


def end_agent_run_span(span: Span, running: PreparedTurn, result: TurnResult) -> None:
    failure = model_failure(result)
    end_invoke_agent_span(
        span,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        reply=result.reply.text,
        failure=failure,
    )
    log.info(
        "agent answered",
        extra={
            "agent_id": running.ref.agent_id,
            "conversation_id": running.ref.conversation_id,
            "turn_id": running.turn_id,
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
            "model_failure": failure,
        },
    )


def entry_recorded(platform: Platform, prepared: PreparedTurn, entry: RecordedEntry) -> None:
    """An entry the turn just recorded (once: entries a re-run finds on record are not)."""
    ref = prepared.ref
    platform.metrics.entry_recorded(
        ref.workspace_id, entry.agent_id or ref.agent_id, ref.channel, entry.kind, entry.data
    )


def turn_ended(
    platform: Platform,
    prepared: PreparedTurn,
    result: TurnResult | None,
    ended: Ended | None,
) -> None:
    """The turn's end (`result` None: it failed), counted for the conversation's agent when the
    turn started, with its latency from the customer's message."""
    ref, metrics = prepared.ref, platform.metrics
    seconds = (utcnow() - prepared.inbound.created_at).total_seconds()
    failed = result is None or model_failure(result) is not None
    where = (ref.workspace_id, ref.agent_id, ref.channel)
    metrics.turn_ended(*where, "failed" if failed else "completed", seconds)
    if ended is None or not ended.status_changed:
        return
    conversation = ended.conversation
    if conversation.status == "queued" and result is not None and result.handoff is not None:
        metrics.escalated(*where, result.handoff.trigger)
    elif conversation.status == "closed" and conversation.outcome is not None:
        metrics.closed(*where, conversation.outcome)
