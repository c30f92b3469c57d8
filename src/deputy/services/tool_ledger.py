"""The SQL call ledger (`tool_calls`) and the audit listing of an agent's tool calls.

Every write is its own committed transaction: a `pending` row is on disk before the request it
stands for leaves, so a crash at any point leaves a row the next attempt finds. Two attempts that
race for the same idempotency key meet the unique constraint; the loser reads the winner's row.
Database work runs in a worker thread so the executor's event loop never blocks on it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from deputy.billing.meter import meter, tool_call_fact
from deputy.domain import resources as r
from deputy.domain.errors import NotFound
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.tools.ledger import CallFinish, CallRecord, CallStart, ResultCode

MAX_CONVERSATION_ID = 100
MAX_STEP_KEY = 200
MAX_TOOL_NAME = 200


def _json(value: Any) -> Any:
    """A plain JSON copy (whatever a client put in its records)."""
    return json.loads(json.dumps(value, default=str))


def call_record(row: t.ToolCallRow) -> CallRecord:
    return CallRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        agent_version=row.agent_version,
        conversation_id=row.conversation_id,
        step_key=row.step_key,
        tool=row.tool,
        effect=row.effect,  # type: ignore[arg-type]
        idempotency_key=row.idempotency_key,
        arguments=row.arguments,
        arguments_sha256=row.arguments_sha256,
        status=row.status,  # type: ignore[arg-type]
        code=row.code,  # type: ignore[arg-type]
        request=row.request,
        response=row.response,
        output=row.output,
        error=row.error,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
    )


class SqlCallLedger:
    """`CallLedger` on the platform database, for one workspace."""

    def __init__(self, db: Database, workspace_id: str) -> None:
        self._db = db
        self.workspace_id = workspace_id

    def _row(self, call: CallStart, status: str, attempts: int) -> t.ToolCallRow:
        if call.workspace_id != self.workspace_id:
            raise ValueError(f"a call of {call.workspace_id} given to {self.workspace_id}'s ledger")
        if len(call.conversation_id) > MAX_CONVERSATION_ID or len(call.step_key) > MAX_STEP_KEY:
            raise ValueError("conversation ids and step keys are limited to 100 / 200 characters")
        return t.ToolCallRow(
            id=new_id("tcall"),
            workspace_id=call.workspace_id,
            agent_id=call.agent_id,
            agent_version=call.agent_version,
            conversation_id=call.conversation_id,
            step_key=call.step_key,
            tool=call.tool[:MAX_TOOL_NAME],
            effect=call.effect,
            idempotency_key=call.idempotency_key,
            arguments=_json(call.arguments),
            arguments_sha256=call.arguments_sha256,
            status=status,
            request={},
            response={},
            output=None,
            attempts=attempts,
            started_at=call.started_at,
        )

    # -- the protocol (async) ----------------------------------------------------------------

    async def start(self, call: CallStart) -> tuple[CallRecord, bool]:
        return await self._db.run(self.start_sync, call)

    async def find(self, workspace_id: str, idempotency_key: str) -> CallRecord | None:
        return await self._db.run(self.find_sync, workspace_id, idempotency_key)

    async def begin_attempt(self, call_id: str) -> CallRecord:
        return await self._db.run(self._begin_attempt, call_id)

    async def finish(self, call_id: str, finish: CallFinish) -> CallRecord:
        return await self._db.run(self.finish_sync, call_id, finish)

    async def refuse(
        self, call: CallStart, code: ResultCode, error: str, details: dict[str, Any]
    ) -> CallRecord:
        return await self._db.run(self._refuse, call, code, error, details)

    async def count(self, workspace_id: str, conversation_id: str, tool: str) -> int:
        return await self._db.run(self._count, workspace_id, conversation_id, tool)

    # -- the work (sync) -------------------------------------------------------------------

    def start_sync(self, call: CallStart) -> tuple[CallRecord, bool]:
        row = self._row(call, "pending", attempts=1)
        try:
            with self._db.tenant_session(self.workspace_id) as session:
                session.add(row)
            return call_record(row), True
        except IntegrityError:
            if call.idempotency_key is None:
                raise
            existing = self.find_sync(call.workspace_id, call.idempotency_key)
            if existing is None:
                raise
            return existing, False

    def find_sync(self, workspace_id: str, idempotency_key: str) -> CallRecord | None:
        with self._db.tenant_session(workspace_id) as session:
            row = session.scalar(
                select(t.ToolCallRow).where(t.ToolCallRow.idempotency_key == idempotency_key)
            )
            return call_record(row) if row is not None else None

    def _begin_attempt(self, call_id: str) -> CallRecord:
        with self._db.tenant_session(self.workspace_id) as session:
            row = session.get(t.ToolCallRow, call_id, with_for_update=True)
            if row is None:
                raise KeyError(call_id)
            row.attempts += 1
            session.flush()
            return call_record(row)

    def finish_sync(self, call_id: str, finish: CallFinish) -> CallRecord:
        with self._db.tenant_session(self.workspace_id) as session:
            row = session.get(t.ToolCallRow, call_id, with_for_update=True)
            if row is None:
                raise KeyError(call_id)
            row.status = finish.status
            row.code = finish.code
            row.request = _json(finish.request)
            row.response = _json(finish.response)
            row.output = _json(finish.output)
            row.error = finish.error
            row.attempts = finish.attempts
            row.finished_at = finish.finished_at
            row.duration_ms = finish.duration_ms
            session.flush()
            meter(session, tool_call_fact(row))
            return call_record(row)

    def _refuse(
        self, call: CallStart, code: ResultCode, error: str, details: dict[str, Any]
    ) -> CallRecord:
        row = self._row(call, "refused", attempts=0)
        row.idempotency_key = None
        row.code = code
        row.error = error
        row.output = _json(details)
        row.finished_at = call.started_at
        row.duration_ms = 0
        with self._db.tenant_session(self.workspace_id) as session:
            session.add(row)
        return call_record(row)

    def _count(self, workspace_id: str, conversation_id: str, tool: str) -> int:
        with self._db.tenant_session(workspace_id) as session:
            total = session.scalar(
                select(func.count())
                .select_from(t.ToolCallRow)
                .where(
                    t.ToolCallRow.conversation_id == conversation_id,
                    t.ToolCallRow.tool == tool,
                    t.ToolCallRow.status != "refused",
                )
            )
            return int(total or 0)


# ---- the audit listing -----------------------------------------------------------------------


def _resource(row: t.ToolCallRow) -> r.ToolCallInfo:
    return r.ToolCallInfo.model_validate(call_record(row), from_attributes=True)


def list_tool_calls(
    platform: Platform,
    principal: Principal,
    agent_id: str,
    *,
    conversation_id: str | None,
    limit: int,
    cursor: str | None,
) -> r.Page[r.ToolCallInfo]:
    """An agent's recorded tool calls, newest first (request and response already redacted)."""
    with tenant(platform, principal, "agents:read") as session:
        if session.scalar(select(t.Agent.id).where(t.Agent.id == agent_id)) is None:
            raise NotFound("agent", agent_id)
        query = select(t.ToolCallRow).where(t.ToolCallRow.agent_id == agent_id)
        if conversation_id is not None:
            query = query.where(t.ToolCallRow.conversation_id == conversation_id)
        return paginate(
            session, query, t.ToolCallRow.id, limit=limit, cursor=cursor, to_resource=_resource
        )
