"""`TurnContext`: what a mode engine (reasoning or guided) works through during one turn.

Every piece of work that is not deterministic goes through it and is recorded under a key unique
within the turn: model answers (`ask`), tool calls (`call_tool`), retrievals (`retrieve`). A turn
run again after a crash gets the recorded result back instead of doing the work again; a tool
call that was in flight when the process died is resolved by the tool ledger (same step key, same
idempotency key), never blindly repeated."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from deputy.domain.spec import AgentSpec, ArgumentLimit
from deputy.guardrails import Evidence, GuardrailReport, InputGuard, ToolEvidence, tool_decision
from deputy.llm.actions import with_tools
from deputy.llm.structured import StructuredModel
from deputy.llm.types import Model, ModelRequest, ModelResponse, ToolCall, Usage
from deputy.observability.genai import end_execute_tool_span, execute_tool_span
from deputy.runtime.journal import Entry, RecordedEntry, TurnJournal
from deputy.runtime.ports import EventSink, Passage, Retriever, ToolRunner
from deputy.runtime.state import AgentState
from deputy.tools.builtins import EndConversationSignal, HandoffSignal, Signal
from deputy.tools.results import CallContext, ToolCallResult


@dataclass(frozen=True)
class ConversationRef:
    workspace_id: str
    agent_id: str
    conversation_id: str
    channel: str = "api"
    customer_id: str | None = None
    agent_version: int | None = None


@dataclass(frozen=True)
class TurnInput:
    """Everything a turn starts from. `inbound` is the customer's message, persisted before the
    turn runs; `history` holds the conversation's earlier entries (oldest first)."""

    conversation: ConversationRef
    spec: AgentSpec
    state: AgentState
    inbound: RecordedEntry
    turn_id: str
    history: tuple[RecordedEntry, ...] = ()
    memory: tuple[str, ...] = ()
    """Facts recalled for this customer and conversation."""


def response_json(response: ModelResponse) -> dict[str, Any]:
    return {
        "model": response.model,
        "text": response.text,
        "tool_calls": [
            {"id": call.id, "name": call.name, "arguments": dict(call.arguments)}
            for call in response.tool_calls
        ],
        "parsed": response.parsed,
        "usage": {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cached_tokens": response.usage.cached_tokens,
        },
        "finish_reason": response.finish_reason,
        "latency_seconds": response.latency_seconds,
    }


def response_from_json(value: dict[str, Any]) -> ModelResponse:
    usage = value.get("usage") or {}
    return ModelResponse(
        model=str(value.get("model", "")),
        text=str(value.get("text", "")),
        tool_calls=tuple(
            ToolCall(str(c["id"]), str(c["name"]), dict(c.get("arguments") or {}))
            for c in value.get("tool_calls") or ()
        ),
        parsed=value.get("parsed"),
        usage=Usage(
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            int(usage.get("cached_tokens", 0)),
        ),
        finish_reason=value.get("finish_reason", "stop"),
        latency_seconds=float(value.get("latency_seconds", 0.0)),
    )


def signal_json(signal: Signal | None) -> dict[str, Any] | None:
    if signal is None:
        return None
    if isinstance(signal, HandoffSignal):
        return {
            "kind": "handoff",
            "reason": signal.reason,
            "queue": signal.queue,
            "summary": signal.summary,
        }
    return {"kind": "end_conversation", "outcome": signal.outcome, "summary": signal.summary}


def signal_from_json(value: dict[str, Any] | None) -> Signal | None:
    if not value:
        return None
    if value.get("kind") == "handoff":
        return HandoffSignal(str(value["reason"]), str(value["queue"]), value.get("summary"))
    return EndConversationSignal(value["outcome"], value.get("summary"))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def result_json(result: ToolCallResult, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool": result.tool,
        "arguments": _jsonable(arguments),
        "status": result.status,
        "code": result.code,
        "message": result.message,
        "output": _jsonable(result.output),
        "details": _jsonable(result.details),
        "call_id": result.call_id,
        "idempotency_key": result.idempotency_key,
        "replayed": result.replayed,
        "attempts": result.attempts,
        "signal": signal_json(result.signal),
    }


def result_from_json(value: dict[str, Any]) -> ToolCallResult:
    return ToolCallResult(
        tool=str(value["tool"]),
        status=value["status"],
        code=value.get("code"),
        message=str(value.get("message", "")),
        output=value.get("output"),
        details=dict(value.get("details") or {}),
        call_id=value.get("call_id"),
        idempotency_key=value.get("idempotency_key"),
        replayed=bool(value.get("replayed", False)),
        attempts=int(value.get("attempts", 0)),
        signal=signal_from_json(value.get("signal")),
    )


@dataclass
class TurnEvidence:
    """What this turn learned, for the output guard and the outcome's evidence."""

    passages: list[Passage] = field(default_factory=list)
    tool_results: list[ToolCallResult] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    """Spec-authored reply texts used this turn (guided mode); they count as grounded."""

    def for_guard(self, customer_messages: Sequence[str]) -> Evidence:
        return Evidence(
            passages=tuple(p.text for p in self.passages) + tuple(self.templates),
            tool_results=tuple(ToolEvidence(r.tool, r.status, r.output) for r in self.tool_results),
            customer_messages=tuple(customer_messages),
        )


class TurnContext:
    """One turn's access to the model, the tools, knowledge and the journal. `state` is this
    turn's working copy of the conversation state; the runtime stores it when the turn ends."""

    def __init__(
        self,
        turn: TurnInput,
        *,
        model: Model,
        tools: ToolRunner,
        retriever: Retriever,
        journal: TurnJournal,
        input_guard: InputGuard,
        sink: EventSink,
    ) -> None:
        self.turn = turn
        self.spec = turn.spec
        self.conversation = turn.conversation
        self.state: AgentState = turn.state.model_copy(deep=True)
        self.model = model
        self._with_tools = with_tools(model)
        self._structured = model if isinstance(model, StructuredModel) else StructuredModel(model)
        self.tools = tools
        self.retriever = retriever
        self.journal = journal
        self.input_guard = input_guard
        self.sink = sink
        self.evidence = TurnEvidence()
        self.usage = Usage()

    # ---- identity -----------------------------------------------------------------------------

    @property
    def customer_text(self) -> str:
        """The customer's message as sent. (The transcript may keep a masked form; a turn
        resumed by another process after a crash only has that form.)"""
        return self.turn.inbound.text

    @property
    def inbound_message_id(self) -> str:
        return self.turn.inbound.id

    def step_key(self, key: str) -> str:
        """The conversation-wide call site of `key` in this turn (the tool ledger's step key)."""
        return f"turn-{self.state.turn}/{key}"

    # ---- recording ----------------------------------------------------------------------------

    async def record(self, entry: Entry) -> RecordedEntry:
        """Persist an entry (once per key) and pass it to the live stream."""
        earlier = self.journal.recorded(entry.key)
        if earlier is not None:
            return earlier
        recorded = await self.journal.append(entry)
        await self.sink.entry(recorded)
        return recorded

    async def record_guardrail(self, key: str, report: GuardrailReport) -> None:
        """Record a stage's decisions; of the text it checked only the stored form is kept
        (PII masked when the spec says so)."""
        if not report.decisions:
            return
        data = {**report.model_dump(mode="json"), "text": report.stored_text}
        await self.record(Entry("guardrail", key, data=data))

    # ---- the model ----------------------------------------------------------------------------

    async def ask(self, key: str, purpose: str, request: ModelRequest) -> ModelResponse:
        """The model's answer to `request`, recorded as a `model_step` (reused on a re-run).
        `purpose` says what the step was for (`reasoning`, `route`, `extract`, `check`…).
        Requests with tools go through the action adapter when the model has no native tool
        calls; requests with a response schema are validated (with bounded repair retries).
        Raises `deputy.llm.errors.ModelError` / `ModelUnavailable` when the model fails."""
        earlier = self.journal.recorded(key)
        if earlier is not None:
            return response_from_json(earlier.data["response"])
        metadata = {
            "workspace_id": self.conversation.workspace_id,
            "agent_id": self.conversation.agent_id,
            "conversation_id": self.conversation.conversation_id,
            **dict(request.metadata),
        }
        answering = self._structured if request.response_schema and not request.tools else None
        model = answering or self._with_tools
        response = await model.request(replace(request, metadata=metadata))
        self.usage = self.usage + response.usage
        await self.record(
            Entry(
                "model_step",
                key,
                data={"purpose": purpose, "response": response_json(response)},
            )
        )
        return response

    # ---- tools --------------------------------------------------------------------------------

    async def call_tool(
        self,
        key: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        procedure_id: str | None = None,
        step_limits: tuple[ArgumentLimit, ...] = (),
    ) -> ToolCallResult:
        """Call a tool through the executor (every check, the ledger, idempotency), record the
        call, and check its output for injected instructions: a blocked output is withheld."""
        earlier = self.journal.recorded(key)
        if earlier is not None:
            result = result_from_json(earlier.data)
            self.evidence.tool_results.append(result)
            return result
        ctx = CallContext(
            workspace_id=self.conversation.workspace_id,
            agent_id=self.conversation.agent_id,
            conversation_id=self.conversation.conversation_id,
            step_key=self.step_key(key),
            procedure_id=procedure_id,
            step_limits=step_limits,
            confirmations=self.state.confirmation_list(),
            customer_id=self.conversation.customer_id,
        )
        with execute_tool_span(
            workspace_id=ctx.workspace_id,
            agent_id=ctx.agent_id,
            conversation_id=ctx.conversation_id,
            tool=tool,
            arguments=arguments,
        ) as span:
            started = time.perf_counter()
            result = await self.tools.call(ctx, tool, arguments)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            end_execute_tool_span(
                span,
                status=result.status,
                code=result.code,
                call_id=result.call_id,
                output=result.output,
            )
        report: GuardrailReport | None = None
        decision = tool_decision(
            tool=tool, status=result.status, code=result.code, message=result.message
        )
        if decision is not None:
            report = GuardrailReport.of("tool", [decision], text="")
        elif result.ok and result.output is not None:
            report = await self.input_guard.check_tool_output(tool, result.output)
            if not report.proceeds:
                result = replace(
                    result,
                    output=None,
                    message="the tool's output was withheld: " + "; ".join(report.reasons())[:500],
                )
        data = {**result_json(result, arguments), "duration_ms": duration_ms}
        await self.record(Entry("tool_call", key, data=data))
        if report is not None:
            await self.record_guardrail(f"{key}/guard", report)
        self.evidence.tool_results.append(result)
        return result

    # ---- knowledge ----------------------------------------------------------------------------

    async def retrieve(self, key: str, query: str, k: int | None = None) -> list[Passage]:
        """Passages from this agent's knowledge, recorded with their citations."""
        earlier = self.journal.recorded(key)
        if earlier is not None:
            passages = [Passage.from_json(p) for p in earlier.data.get("passages", [])]
        else:
            passages = await self.retriever.search(query, k or self.spec.knowledge.top_k)
            await self.record(
                Entry(
                    "retrieval",
                    key,
                    data={"query": query, "passages": [p.as_json() for p in passages]},
                )
            )
        self.evidence.passages.extend(passages)
        return passages
