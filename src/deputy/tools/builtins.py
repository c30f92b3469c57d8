"""Built-in tools: hand off to a human, look up knowledge, remember a fact, end the conversation.

Their argument schemas are fixed here (a spec cannot loosen them). Handoff and end-conversation do
nothing themselves: they return a `signal` on the result, which the runtime acts on. Knowledge
lookup and memory go through the `BuiltinHandlers` the runtime provides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from deputy.domain.spec import AgentSpec, BuiltinTool, OutcomeKind

if TYPE_CHECKING:
    from deputy.tools.results import CallContext

MemoryScope = Literal["conversation", "customer"]
MAX_PASSAGES = 20

_OUTCOMES: list[str] = ["resolved", "escalated", "abandoned"]


def builtin_schema(builtin: BuiltinTool, spec: AgentSpec) -> dict[str, Any]:
    """The JSON Schema of a built-in's arguments. Handoff queues are the spec's own."""
    if builtin == "handoff":
        queues = sorted(
            {spec.escalation.default_queue}
            | {rule.queue for rule in spec.escalation.rules if rule.queue}
        )
        return {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
                "queue": {"type": "string", "enum": queues},
                "summary": {"type": "string", "maxLength": 4000},
            },
            "required": ["reason"],
            "additionalProperties": False,
        }
    if builtin == "lookup_knowledge":
        return {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                "k": {"type": "integer", "minimum": 1, "maximum": MAX_PASSAGES},
            },
            "required": ["query"],
            "additionalProperties": False,
        }
    if builtin == "remember_fact":
        return {
            "type": "object",
            "properties": {
                "fact": {"type": "string", "minLength": 1, "maxLength": 1000},
                "about": {"type": "string", "enum": ["conversation", "customer"]},
            },
            "required": ["fact"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "outcome": {"type": "string", "enum": _OUTCOMES},
            "summary": {"type": "string", "maxLength": 4000},
        },
        "required": ["outcome"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class KnowledgePassage:
    """A retrieved passage and where it comes from, so a reply can cite it."""

    text: str
    source: str
    """The knowledge source id (or material id) it was retrieved from."""
    title: str | None = None
    location: str | None = None
    """Human-readable place in the source: 'section 2', 'page 3'."""
    score: float | None = None

    def as_output(self) -> dict[str, Any]:
        citation: dict[str, Any] = {"source": self.source}
        if self.title:
            citation["title"] = self.title
        if self.location:
            citation["location"] = self.location
        return {"text": self.text, "citation": citation}


class BuiltinHandlers(Protocol):
    """What the runtime provides for the built-ins that do work."""

    async def lookup_knowledge(
        self, ctx: CallContext, query: str, k: int
    ) -> list[KnowledgePassage]: ...

    async def remember_fact(self, ctx: CallContext, about: MemoryScope, fact: str) -> None: ...


@dataclass(frozen=True)
class HandoffSignal:
    reason: str
    queue: str
    summary: str | None = None
    kind: Literal["handoff"] = "handoff"


@dataclass(frozen=True)
class EndConversationSignal:
    outcome: OutcomeKind
    summary: str | None = None
    kind: Literal["end_conversation"] = "end_conversation"


Signal = HandoffSignal | EndConversationSignal


class BuiltinUnavailable(Exception):
    """The runtime gave no handler for a built-in that needs one."""


@dataclass(frozen=True)
class BuiltinOutcome:
    output: Any
    signal: Signal | None = None


def _optional_text(arguments: Mapping[str, Any], name: str) -> str | None:
    value = arguments.get(name)
    return str(value) if value else None


def builtin_signal(
    builtin: BuiltinTool, arguments: Mapping[str, Any], spec: AgentSpec
) -> Signal | None:
    """The runtime signal a handoff or end-conversation call carries (None for the others)."""
    if builtin == "handoff":
        return HandoffSignal(
            reason=str(arguments["reason"]),
            queue=str(arguments.get("queue") or spec.escalation.default_queue),
            summary=_optional_text(arguments, "summary"),
        )
    if builtin == "end_conversation":
        outcome: OutcomeKind = arguments["outcome"]
        return EndConversationSignal(outcome=outcome, summary=_optional_text(arguments, "summary"))
    return None


async def run_builtin(
    builtin: BuiltinTool,
    arguments: Mapping[str, Any],
    ctx: CallContext,
    spec: AgentSpec,
    handlers: BuiltinHandlers | None,
) -> BuiltinOutcome:
    """Perform a built-in whose arguments already validated against `builtin_schema`."""
    signal = builtin_signal(builtin, arguments, spec)
    if isinstance(signal, HandoffSignal):
        return BuiltinOutcome({"handoff": "requested", "queue": signal.queue}, signal)
    if isinstance(signal, EndConversationSignal):
        return BuiltinOutcome({"end_conversation": "requested", "outcome": signal.outcome}, signal)
    if handlers is None:
        raise BuiltinUnavailable(f"the built-in {builtin!r} has no handler in this runtime")
    if builtin == "lookup_knowledge":
        k = int(arguments.get("k") or spec.knowledge.top_k)
        k = max(1, min(k, MAX_PASSAGES))
        passages = await handlers.lookup_knowledge(ctx, str(arguments["query"]), k)
        return BuiltinOutcome({"passages": [p.as_output() for p in passages[:k]]})
    about: MemoryScope = "customer" if arguments.get("about") == "customer" else "conversation"
    await handlers.remember_fact(ctx, about, str(arguments["fact"]))
    return BuiltinOutcome({"remembered": True, "about": about})
