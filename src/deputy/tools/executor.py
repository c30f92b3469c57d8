"""The tool executor: every tool call an agent makes goes through `ToolExecutor.call`.

Checks, in order, all before anything leaves: the tool exists in the spec → no applicable policy
forbids it → the arguments validate against its JSON Schema → its limits (tool, step, policies)
hold → it is under its per-conversation call limit → an irreversible call was confirmed by the
customer → idempotency (a write or irreversible call made before at the same step is replayed,
resumed or reported, never blindly repeated). Then the call is recorded as `pending` (committed),
sent, and its outcome recorded. Reads alone are retried; writes never are.

Nothing a tool returns is interpreted here: its output is untrusted data for the model
(`ToolCallResult.for_model`), and the executor's permissions come from the spec and the runtime's
`CallContext` only."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from deputy.domain.spec import AgentSpec, BuiltinBinding, Tool
from deputy.tools.base import Invocation, InvocationResult, ToolSourceClient, ToolTransportError
from deputy.tools.builtins import BuiltinHandlers, Signal, builtin_signal, run_builtin
from deputy.tools.checks import CallGate, Refusal, operation_name, source_key
from deputy.tools.confirmation import arguments_sha256, canonical_json, idempotency_key
from deputy.tools.ledger import (
    CallFinish,
    CallLedger,
    CallRecord,
    CallStart,
    FinalStatus,
    ResultCode,
)
from deputy.tools.redaction import NO_REDACTION, Redactor
from deputy.tools.results import CallContext, ToolCallResult
from deputy.tools.sending import TIMEOUT_GRACE_SECONDS, Backoff, send

log = logging.getLogger("deputy.tools")


def utcnow() -> datetime:
    return datetime.now(UTC)


class ToolExecutor:
    def __init__(
        self,
        spec: AgentSpec,
        sources: Mapping[str, ToolSourceClient],
        ledger: CallLedger,
        builtins: BuiltinHandlers | None = None,
        *,
        agent_version: int | None = None,
        secrets: Mapping[str, Sequence[str]] | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout_grace_seconds: float = TIMEOUT_GRACE_SECONDS,
    ) -> None:
        """`sources` maps a source key (see `source_key`) to its client; `secrets` maps the same
        keys to the credential values that must never appear in what is recorded or returned."""
        self.spec = spec
        self._sources = dict(sources)
        self._ledger = ledger
        self._builtins = builtins
        self._agent_version = agent_version
        self._redactors = {
            key: Redactor.of(values) for key, values in (secrets or {}).items() if values
        }
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._grace = timeout_grace_seconds
        self._gate = CallGate(spec, self._sources, ledger, builtins)

    async def tool_schema(self, tool: str) -> dict[str, Any]:
        """The JSON Schema a tool's arguments must satisfy (to offer the tool to a model).
        Raises KeyError for a tool the spec does not have."""
        bound = self.spec.tool(tool)
        if bound is None:
            raise KeyError(tool)
        return await self._gate.schema(bound)

    async def aclose(self) -> None:
        for client in self._sources.values():
            await client.aclose()

    # ---- the call -------------------------------------------------------------------------

    async def call(
        self, ctx: CallContext, tool: str, arguments: Mapping[str, Any]
    ) -> ToolCallResult:
        started = self._clock()
        t0 = time.monotonic()
        bound = self.spec.tool(tool)
        try:  # a plain JSON copy: what is checked is exactly what is sent and recorded
            args: dict[str, Any] = json.loads(canonical_json(arguments))
            digest = arguments_sha256(args)
        except (TypeError, ValueError):
            args, digest = {}, ""
        key = (
            idempotency_key(ctx.workspace_id, ctx.conversation_id, ctx.step_key, tool)
            if bound is not None and bound.effect != "read"
            else None
        )
        start = CallStart(
            workspace_id=ctx.workspace_id,
            agent_id=ctx.agent_id,
            agent_version=self._agent_version,
            conversation_id=ctx.conversation_id,
            step_key=ctx.step_key,
            tool=tool,
            effect=bound.effect if bound is not None else None,
            idempotency_key=key,
            arguments=args if isinstance(args, dict) else {},
            arguments_sha256=digest,
            started_at=started,
        )
        try:
            if bound is None:
                known = sorted(t.name for t in self.spec.tools)
                raise Refusal("unknown_tool", f"there is no tool {tool!r}", {"known_tools": known})
            if not isinstance(arguments, Mapping) or not isinstance(args, dict) or not digest:
                raise Refusal("invalid_arguments", "the arguments must be a JSON object")
            existing = await self._gate.check(ctx, bound, args, key)
            if existing is None:
                # Persist before acting: the pending row is committed before the request leaves.
                record, created = await self._ledger.start(start)
                if created:
                    return await self._perform(record, bound, args, ctx, t0)
                existing = record  # a concurrent attempt at the same step got there first
            return await self._resume(existing, bound, args, ctx, digest, t0)
        except Refusal as refusal:
            # Refused calls keep no idempotency key: the same step may be tried again (after
            # the customer confirms, say) and must not be answered with this refusal.
            record = await self._ledger.refuse(
                replace(start, idempotency_key=None), refusal.code, refusal.message, refusal.details
            )
            log.info("tool call refused", extra={"tool": tool, "code": refusal.code})
            return ToolCallResult(
                tool=tool,
                status="refused",
                code=refusal.code,
                message=refusal.message,
                details=refusal.details,
                call_id=record.id,
            )

    # ---- after the checks -----------------------------------------------------------------

    async def _resume(
        self,
        record: CallRecord,
        bound: Tool,
        args: dict[str, Any],
        ctx: CallContext,
        digest: str,
        t0: float,
    ) -> ToolCallResult:
        """An earlier call at this step exists: replay it, resume it or report it."""
        if record.arguments_sha256 != digest:
            raise Refusal(
                "idempotency_conflict",
                f"{bound.name!r} was already called at this step with other arguments; "
                "it will not be called again with these",
                {"idempotency_key": record.idempotency_key, "earlier_call_id": record.id},
            )
        if record.status in ("succeeded", "failed"):
            result = ToolCallResult.from_record(record, replayed=True)
            if isinstance(bound.binding, BuiltinBinding) and record.status == "succeeded":
                result = _with_signal(
                    result, builtin_signal(bound.binding.builtin, args, self.spec)
                )
            return result
        client = self._gate.client_for(bound)
        if client is not None and not client.honours_idempotency_keys:
            if record.status == "pending":
                record = await self._ledger.finish(
                    record.id,
                    CallFinish(
                        status="outcome_unknown",
                        code="outcome_unknown",
                        error=_unknown_message(bound, record),
                        attempts=record.attempts,
                        finished_at=self._clock(),
                        duration_ms=record.duration_ms,
                    ),
                )
            return ToolCallResult.from_record(record, replayed=True)
        record = await self._ledger.begin_attempt(record.id)
        return await self._perform(record, bound, args, ctx, t0)

    async def _perform(
        self,
        record: CallRecord,
        bound: Tool,
        args: dict[str, Any],
        ctx: CallContext,
        t0: float,
    ) -> ToolCallResult:
        binding = bound.binding
        if isinstance(binding, BuiltinBinding):
            try:
                outcome = await run_builtin(binding.builtin, args, ctx, self.spec, self._builtins)
            except Exception as exc:  # the runtime's handler failed; record it, do not hang
                log.exception("built-in failed", extra={"tool": bound.name})
                finished = await self._finish(
                    record,
                    t0,
                    "failed",
                    code="tool_error",
                    error=f"{bound.name!r} failed: {type(exc).__name__}",
                )
                return ToolCallResult.from_record(finished, replayed=False)
            finished = await self._finish(record, t0, "succeeded", output=outcome.output)
            return _with_signal(
                ToolCallResult.from_record(finished, replayed=False), outcome.signal
            )
        client = self._gate.client_for(bound)
        assert client is not None
        invocation = Invocation(
            operation=operation_name(bound),
            arguments=args,
            timeout_seconds=bound.timeout_seconds,
            idempotency_key=record.idempotency_key,
        )
        retries = bound.retries if bound.effect == "read" else 0
        attempts = record.attempts
        while True:
            try:
                answer = await send(client, invocation, self._grace)
            except ToolTransportError as exc:
                if bound.effect == "read" and exc.retryable and retries > 0:
                    retries -= 1
                    attempts += 1
                    await self._sleep(self._backoff.delay(attempts - record.attempts, self._rng))
                    continue
                return await self._transport_failure(
                    record, bound, client, invocation, t0, exc, attempts
                )
            return await self._answered(record, bound, t0, answer, attempts)

    async def _answered(
        self,
        record: CallRecord,
        bound: Tool,
        t0: float,
        answer: InvocationResult,
        attempts: int,
    ) -> ToolCallResult:
        redactor = self._redactor(bound)
        finished = await self._finish(
            record,
            t0,
            "succeeded" if answer.ok else "failed",
            code=None if answer.ok else "tool_error",
            error=None if answer.ok else _tool_error(bound, answer),
            request=redactor.json(answer.request),
            response=redactor.json(answer.response),
            output=redactor.values(answer.output),
            attempts=attempts,
        )
        return ToolCallResult.from_record(finished, replayed=False)

    async def _transport_failure(
        self,
        record: CallRecord,
        bound: Tool,
        client: ToolSourceClient,
        invocation: Invocation,
        t0: float,
        exc: ToolTransportError,
        attempts: int,
    ) -> ToolCallResult:
        redactor = self._redactor(bound)
        reason = redactor.text(str(exc))
        # No answer, so no record from the client: keep what was being sent, for the audit.
        sent = redactor.json(
            {
                "operation": invocation.operation,
                "arguments": dict(invocation.arguments),
                "idempotency_key": invocation.idempotency_key,
                "maybe_delivered": exc.maybe_delivered,
            }
        )
        if bound.effect != "read" and exc.maybe_delivered:
            then = (
                "calling it again at this same step re-sends it under the same idempotency key, "
                "which its source deduplicates"
                if client.honours_idempotency_keys
                else "do not call it again: a human must check"
            )
            finished = await self._finish(
                record,
                t0,
                "outcome_unknown",
                code="outcome_unknown",
                error=f"{bound.name!r} may or may not have been carried out ({reason}); {then}",
                request=sent,
                attempts=attempts,
            )
        else:
            finished = await self._finish(
                record,
                t0,
                "failed",
                code="transport_error",
                error=f"{bound.name!r} could not be reached: {reason}",
                request=sent,
                attempts=attempts,
            )
        return ToolCallResult.from_record(finished, replayed=False)

    def _redactor(self, bound: Tool) -> Redactor:
        return self._redactors.get(source_key(bound) or "", NO_REDACTION)

    async def _finish(
        self,
        record: CallRecord,
        t0: float,
        status: FinalStatus,
        *,
        code: ResultCode | None = None,
        error: str | None = None,
        request: Any = None,
        response: Any = None,
        output: Any = None,
        attempts: int | None = None,
    ) -> CallRecord:
        finished = await self._ledger.finish(
            record.id,
            CallFinish(
                status=status,
                code=code,
                request=request if isinstance(request, dict) else {},
                response=response if isinstance(response, dict) else {},
                output=output,
                error=error,
                attempts=record.attempts if attempts is None else attempts,
                finished_at=self._clock(),
                duration_ms=int((time.monotonic() - t0) * 1000),
            ),
        )
        log.info(
            "tool call finished",
            extra={"tool": record.tool, "status": finished.status, "call_id": record.id},
        )
        return finished


def _with_signal(result: ToolCallResult, signal: Signal | None) -> ToolCallResult:
    return result if signal is None else replace(result, signal=signal)


def _tool_error(bound: Tool, answer: InvocationResult) -> str:
    status = f" (status {answer.status})" if answer.status is not None else ""
    return f"{bound.name!r} answered with a failure{status}"


def _unknown_message(bound: Tool, record: CallRecord) -> str:
    return (
        f"an earlier attempt at {bound.name!r} in this step was sent but never acknowledged "
        f"(call {record.id}); its source does not deduplicate repeated requests, so it was not "
        "sent again. Whether it took effect is unknown: hand the conversation to a human to check."
    )
