"""Public fakes for tool tests: an in-memory call ledger, a scriptable tool source and built-in
handlers. They implement the real protocols (`deputy.tools.ledger.CallLedger`,
`deputy.tools.base.ToolSourceClient`, `deputy.tools.builtins.BuiltinHandlers`) and record what
they were asked, so a test can assert what left and what was stored."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from deputy.tools.base import (
    Invocation,
    InvocationResult,
    ToolDefinition,
    ToolTransportError,
)
from deputy.tools.builtins import KnowledgePassage, MemoryScope
from deputy.tools.ledger import CallFinish, CallRecord, CallStart, ResultCode
from deputy.tools.results import CallContext


class InMemoryCallLedger:
    """`CallLedger` in a dict, with the SQL ledger's semantics (unique key per workspace)."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}
        self._ids = itertools.count(1)

    def _new_record(self, call: CallStart, status: Any, attempts: int) -> CallRecord:
        return CallRecord(
            id=f"tcall_{next(self._ids):06d}",
            workspace_id=call.workspace_id,
            agent_id=call.agent_id,
            agent_version=call.agent_version,
            conversation_id=call.conversation_id,
            step_key=call.step_key,
            tool=call.tool,
            effect=call.effect,
            idempotency_key=call.idempotency_key,
            arguments=copy.deepcopy(call.arguments),
            arguments_sha256=call.arguments_sha256,
            status=status,
            code=None,
            request={},
            response={},
            output=None,
            error=None,
            attempts=attempts,
            started_at=call.started_at,
            finished_at=None,
            duration_ms=None,
        )

    async def start(self, call: CallStart) -> tuple[CallRecord, bool]:
        if call.idempotency_key is not None:
            existing = await self.find(call.workspace_id, call.idempotency_key)
            if existing is not None:
                return existing, False
        record = self._new_record(call, "pending", attempts=1)
        self.records[record.id] = record
        return record, True

    async def find(self, workspace_id: str, idempotency_key: str) -> CallRecord | None:
        return next(
            (
                r
                for r in self.records.values()
                if r.workspace_id == workspace_id and r.idempotency_key == idempotency_key
            ),
            None,
        )

    async def begin_attempt(self, call_id: str) -> CallRecord:
        record = replace(self.records[call_id], attempts=self.records[call_id].attempts + 1)
        self.records[call_id] = record
        return record

    async def finish(self, call_id: str, finish: CallFinish) -> CallRecord:
        record = replace(
            self.records[call_id],
            status=finish.status,
            code=finish.code,
            request=copy.deepcopy(finish.request),
            response=copy.deepcopy(finish.response),
            output=copy.deepcopy(finish.output),
            error=finish.error,
            attempts=finish.attempts,
            finished_at=finish.finished_at,
            duration_ms=finish.duration_ms,
        )
        self.records[call_id] = record
        return record

    async def refuse(
        self, call: CallStart, code: ResultCode, error: str, details: dict[str, Any]
    ) -> CallRecord:
        record = replace(
            self._new_record(replace(call, idempotency_key=None), "refused", attempts=0),
            code=code,
            error=error,
            output=copy.deepcopy(details),
            finished_at=call.started_at,
            duration_ms=0,
        )
        self.records[record.id] = record
        return record

    async def count(self, workspace_id: str, conversation_id: str, tool: str) -> int:
        return sum(
            1
            for r in self.records.values()
            if r.workspace_id == workspace_id
            and r.conversation_id == conversation_id
            and r.tool == tool
            and r.status != "refused"
        )

    def with_status(self, status: str) -> list[CallRecord]:
        return [r for r in self.records.values() if r.status == status]


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
