"""The checks a tool call passes before anything leaves, in order: the tool exists in the spec
(the caller checks that) → no applicable policy forbids it → the arguments validate against its
JSON Schema → its limits (tool, step, policies) hold → it is under its per-conversation call limit
→ an irreversible call was confirmed by the customer → its source is configured. Any failure is a
`Refusal` with a stable code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deputy.domain.spec import (
    AgentSpec,
    BuiltinBinding,
    HTTPBinding,
    MCPBinding,
    OpenAPIBinding,
    Tool,
)
from deputy.tools.base import ToolDefinition, ToolSourceClient, ToolTransportError
from deputy.tools.builtins import BuiltinHandlers, builtin_schema
from deputy.tools.confirmation import arguments_sha256, confirmation_summary, find_confirmation
from deputy.tools.ledger import CallLedger, CallRecord, ResultCode
from deputy.tools.limits import check_limits, forbidding_policies, limits_for
from deputy.tools.results import CallContext
from deputy.tools.schemas import ArgumentValidator, InvalidSchema


class Refusal(Exception):
    """A call refused before anything left."""

    def __init__(
        self, code: ResultCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


def source_key(tool: Tool) -> str | None:
    """Which entry of `sources` serves a tool: its source's name (OpenAPI, MCP), `http:<tool>`
    for a plain webhook binding (one client per webhook), None for a built-in."""
    binding = tool.binding
    if isinstance(binding, OpenAPIBinding | MCPBinding):
        return binding.source
    if isinstance(binding, HTTPBinding):
        return f"http:{tool.name}"
    return None


def operation_name(tool: Tool) -> str:
    """The operation the source knows: the operationId, the MCP tool, the built-in; a webhook's
    single operation is the tool's own name."""
    binding = tool.binding
    if isinstance(binding, OpenAPIBinding):
        return binding.operation
    if isinstance(binding, MCPBinding):
        return binding.tool
    if isinstance(binding, BuiltinBinding):
        return binding.builtin
    return tool.name


class CallGate:
    """The pre-send checks of one executor, with the compiled argument schemas cached."""

    def __init__(
        self,
        spec: AgentSpec,
        sources: Mapping[str, ToolSourceClient],
        ledger: CallLedger,
        builtins: BuiltinHandlers | None,
    ) -> None:
        self._spec = spec
        self._sources = sources
        self._ledger = ledger
        self._builtins = builtins
        self._definitions: dict[str, dict[str, ToolDefinition]] = {}
        self._validators: dict[str, ArgumentValidator] = {}

    async def check(
        self, ctx: CallContext, bound: Tool, args: dict[str, Any], key: str | None
    ) -> CallRecord | None:
        """Every check before anything leaves; returns the earlier call at this step, if any."""
        forbidding = forbidding_policies(self._spec, ctx.procedure_id, bound.name)
        if forbidding:
            policy = forbidding[0]
            raise Refusal(
                "forbidden_by_policy",
                f"policy {policy.id!r} forbids {bound.name!r}: {policy.text}",
                {"policies": [p.id for p in forbidding]},
            )
        validator = await self.validator(bound)
        errors = validator.errors(args)
        if errors:
            listed = "; ".join(f"{e.as_dict()['path']}: {e.message}" for e in errors)
            raise Refusal(
                "invalid_arguments",
                f"the arguments of {bound.name!r} do not match its schema: {listed}",
                {"errors": [e.as_dict() for e in errors]},
            )
        violations = check_limits(
            args, limits_for(self._spec, bound.name, ctx.procedure_id, ctx.step_limits)
        )
        if violations:
            raise Refusal(
                "limit_exceeded",
                "; ".join(v.message for v in violations),
                {"violations": [v.as_dict() for v in violations]},
            )
        existing = await self._ledger.find(ctx.workspace_id, key) if key is not None else None
        if bound.max_calls_per_conversation is not None:
            made = await self._ledger.count(ctx.workspace_id, ctx.conversation_id, bound.name)
            if existing is not None:
                made -= 1  # the earlier attempt at this very step is not another call
            if made >= bound.max_calls_per_conversation:
                raise Refusal(
                    "call_limit_reached",
                    f"{bound.name!r} may be called at most {bound.max_calls_per_conversation} "
                    "time(s) per conversation",
                    {"max_calls_per_conversation": bound.max_calls_per_conversation},
                )
        if bound.effect == "irreversible" and not find_confirmation(
            ctx.confirmations, bound.name, args
        ):
            summary = confirmation_summary(bound.name, bound.description, args)
            raise Refusal(
                "confirmation_required",
                f"{bound.name!r} cannot be undone: ask the customer to confirm exactly this "
                f"before calling it: {summary}",
                {
                    "tool": bound.name,
                    "arguments": args,
                    "arguments_sha256": arguments_sha256(args),
                    "summary": summary,
                },
            )
        self.client_for(bound)  # refuses when the source is not configured
        return existing

    def client_for(self, bound: Tool) -> ToolSourceClient | None:
        if isinstance(bound.binding, BuiltinBinding):
            needs_handler = bound.binding.builtin in ("lookup_knowledge", "remember_fact")
            if needs_handler and self._builtins is None:
                raise Refusal(
                    "unavailable", f"the built-in {bound.binding.builtin!r} is not available here"
                )
            return None
        skey = source_key(bound)
        client = self._sources.get(skey or "")
        if client is None:
            raise Refusal(
                "unavailable",
                f"the tool source of {bound.name!r} ({skey}) is not configured",
                {"source": skey},
            )
        return client

    async def validator(self, bound: Tool) -> ArgumentValidator:
        cached = self._validators.get(bound.name)
        if cached is not None:
            return cached
        try:
            validator = ArgumentValidator(await self.schema(bound))
        except InvalidSchema as exc:
            raise Refusal(
                "unavailable", f"the argument schema of {bound.name!r} is not valid: {exc}"
            ) from exc
        self._validators[bound.name] = validator
        return validator

    async def schema(self, bound: Tool) -> dict[str, Any]:
        if isinstance(bound.binding, BuiltinBinding):
            return builtin_schema(bound.binding.builtin, self._spec)
        if bound.parameters is not None:
            return dict(bound.parameters)
        client = self.client_for(bound)
        assert client is not None
        skey = source_key(bound) or ""
        if skey not in self._definitions:
            try:
                listed = await client.list_tools()
            except ToolTransportError as exc:
                raise Refusal(
                    "unavailable", f"the tool source {skey!r} cannot list its tools: {exc}"
                ) from exc
            self._definitions[skey] = {d.operation: d for d in listed}
        definition = self._definitions[skey].get(operation_name(bound))
        if definition is None:
            raise Refusal(
                "unavailable",
                f"the tool source {skey!r} has no operation {operation_name(bound)!r}",
            )
        return definition.input_schema
