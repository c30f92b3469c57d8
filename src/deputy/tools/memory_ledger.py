"""A `CallLedger` in memory, with the SQL ledger's semantics (unique idempotency key per
workspace): the sandbox's per-trial ledger (a simulated conversation never writes the workspace's
real ledger), and the fake of unit tests."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from typing import Any

from deputy.tools.ledger import CallFinish, CallRecord, CallStart, ResultCode


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
