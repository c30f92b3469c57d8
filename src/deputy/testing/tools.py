"""Public fakes for tool tests: an in-memory call ledger, a scriptable tool source and built-in
handlers. They implement the real protocols (`deputy.tools.ledger.CallLedger`,
`deputy.tools.base.ToolSourceClient`, `deputy.tools.builtins.BuiltinHandlers`) and record what
they were asked, so a test can assert what left and what was stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deputy.tools.base import (
    Invocation,
    InvocationResult,
    ToolDefinition,
    ToolTransportError,
)
from deputy.tools.builtins import KnowledgePassage, MemoryScope
from deputy.tools.memory_ledger import InMemoryCallLedger
from deputy.tools.results import CallContext

__all__ = ["FakeBuiltinHandlers", "FakeToolSource", "InMemoryCallLedger", "answer"]

Handler = Callable[[Invocation], InvocationResult | Awaitable[InvocationResult]]


def answer(output: Any, *, ok: bool = True, status: int | None = 200) -> InvocationResult:
    """What a source returns: `output` plus a plain request/response record."""
    return InvocationResult(
        ok=ok, output=output, status=status, response={"status": status, "body": output}
    )


@dataclass
class FakeToolSource:
    """A `ToolSourceClient` whose operations are Python callables. With
    `honours_idempotency_keys`, a repeated key is answered with the first answer without running
    the handler again (as a deduplicating backend would)."""

    definitions: list[ToolDefinition]
    handlers: dict[str, Handler] = field(default_factory=dict)
    honours_idempotency_keys: bool = False
    invocations: list[Invocation] = field(default_factory=list)
    executions: list[Invocation] = field(default_factory=list)
    """Invocations that reached a handler (deduplicated repeats do not)."""
    failures: list[ToolTransportError] = field(default_factory=list)
    """Raised, first to last, by the next invocations before any handler runs."""
    closed: bool = False
    _answers: dict[str, InvocationResult] = field(default_factory=dict)

    async def list_tools(self) -> list[ToolDefinition]:
        return list(self.definitions)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        self.invocations.append(invocation)
        if self.failures:
            raise self.failures.pop(0)
        key = invocation.idempotency_key
        if self.honours_idempotency_keys and key is not None and key in self._answers:
            return self._answers[key]
        handler = self.handlers.get(invocation.operation)
        if handler is None:
            return answer({"error": f"no operation {invocation.operation}"}, ok=False, status=404)
        self.executions.append(invocation)
        result = handler(invocation)
        if not isinstance(result, InvocationResult):
            result = await result
        if self.honours_idempotency_keys and key is not None:
            self._answers[key] = result
        return result

    async def aclose(self) -> None:
        self.closed = True

    def executed(self, operation: str) -> list[Mapping[str, Any]]:
        return [i.arguments for i in self.executions if i.operation == operation]


@dataclass
class FakeBuiltinHandlers:
    """Knowledge lookups answered from a fixed list of passages (by word overlap); remembered
    facts collected in `facts` as (about, fact, conversation id)."""

    passages: list[KnowledgePassage] = field(default_factory=list)
    facts: list[tuple[MemoryScope, str, str]] = field(default_factory=list)
    queries: list[tuple[str, int]] = field(default_factory=list)

    async def lookup_knowledge(
        self, ctx: CallContext, query: str, k: int
    ) -> list[KnowledgePassage]:
        self.queries.append((query, k))
        words = {w.lower() for w in query.split()}

        def overlap(passage: KnowledgePassage) -> int:
            return len(words & {w.lower().strip(".,") for w in passage.text.split()})

        ranked = sorted(self.passages, key=overlap, reverse=True)
        return [p for p in ranked if overlap(p) > 0][:k]

    async def remember_fact(self, ctx: CallContext, about: MemoryScope, fact: str) -> None:
        self.facts.append((about, fact, ctx.conversation_id))
