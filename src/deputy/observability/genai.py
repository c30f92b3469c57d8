"""Spans of an agent's work, after the OpenTelemetry GenAI semantic conventions: `invoke_agent
<agent name>` for one agent answering one turn, `execute_tool <tool>` for each tool call (the
model calls are `chat <model>` spans of `deputy.llm.usage`), and `send <channel kind>` for a
reply leaving on a channel. All are INTERNAL spans of the current trace; each carries the
workspace (`deputy.workspace.id`). Content attributes (`gen_ai.input.messages`,
`gen_ai.output.messages`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result`) are set only
when `content_traced()`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from deputy.observability.tracing import content_traced, record_failure, tracer


def _text_messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


@contextmanager
def _span(name: str, attributes: dict[str, Any], context: Context | None = None) -> Iterator[Span]:
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            record_failure(span, error)
            raise


@contextmanager
def invoke_agent_span(
    *,
    workspace_id: str,
    agent_id: str,
    agent_name: str,
    agent_version: int,
    conversation_id: str,
    channel: str,
    model: str | None,
    customer_text: str,
) -> Iterator[Span]:
    """One agent's run of one turn; the model and tool spans of the turn are its children."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": agent_id,
        "gen_ai.agent.name": agent_name,
        "gen_ai.agent.version": str(agent_version),
        "gen_ai.conversation.id": conversation_id,
        "deputy.workspace.id": workspace_id,
        "deputy.channel": channel,
    }
    if model:
        attributes["gen_ai.request.model"] = model
        attributes["gen_ai.provider.name"] = model.partition(":")[0]
    if content_traced():
        attributes["gen_ai.input.messages"] = _text_messages("user", customer_text)
    with _span(f"invoke_agent {agent_name}", attributes) as span:
        yield span


def end_invoke_agent_span(
    span: Span,
    *,
    input_tokens: int,
    output_tokens: int,
    reply: str,
    failure: str | None,
) -> None:
    """What the agent's run came to; `failure` names why it could not answer (an error code)."""
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if failure is not None:
        span.set_attribute("error.type", failure)
        span.set_status(Status(StatusCode.ERROR))
    if content_traced():
        span.set_attribute("gen_ai.output.messages", _text_messages("assistant", reply))


@contextmanager
def execute_tool_span(
    *,
    workspace_id: str,
    agent_id: str,
    conversation_id: str,
    tool: str,
    arguments: Mapping[str, Any],
) -> Iterator[Span]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.type": "function",
        "gen_ai.agent.id": agent_id,
        "gen_ai.conversation.id": conversation_id,
        "deputy.workspace.id": workspace_id,
    }
    if content_traced():
        attributes["gen_ai.tool.call.arguments"] = json.dumps(arguments, default=str)
    with _span(f"execute_tool {tool}", attributes) as span:
        yield span


def end_execute_tool_span(
    span: Span, *, status: str, code: str | None, call_id: str | None, output: Any
) -> None:
    """The call's result: its ledger id as `gen_ai.tool.call.id`, its status and code."""
    if call_id:
        span.set_attribute("gen_ai.tool.call.id", call_id)
    span.set_attribute("deputy.tool.status", status)
    if status != "succeeded":
        span.set_attribute("error.type", code or status)
        span.set_status(Status(StatusCode.ERROR))
    if content_traced():
        span.set_attribute("gen_ai.tool.call.result", json.dumps(output, default=str))


@contextmanager
def send_span(
    *, workspace_id: str, channel: str, conversation_id: str, parent: Context | None
) -> Iterator[Span]:
    """A reply sent on a channel: a child of the `invoke_agent` span of the turn that said it
    when `parent` carries that span's context, else the root of a trace of its own."""
    attributes: dict[str, Any] = {
        "gen_ai.conversation.id": conversation_id,
        "deputy.workspace.id": workspace_id,
        "deputy.channel": channel,
    }
    context = parent if parent is not None else trace.set_span_in_context(trace.INVALID_SPAN)
    with _span(f"send {channel}", attributes, context) as span:
        yield span
