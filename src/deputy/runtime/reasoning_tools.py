"""The tools a reasoning turn offers the model: the spec's tools (run by the executor) and the
runtime tools that never reach the executor: hand the conversation to a human, record that a
procedure reached one of its exits, and (when the spec has routes) pass the conversation to
another agent. Their names avoid the spec's tool names."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deputy.domain.spec import AgentSpec, BuiltinBinding
from deputy.llm.types import ToolDefinition
from deputy.runtime.context import TurnContext
from deputy.runtime.draft import Draft, HandoffRequest, TransferRequest
from deputy.runtime.journal import Entry, RecordedEntry
from deputy.runtime.prompt_history import estimate_tokens
from deputy.runtime.prompt_system import ToolNames
from deputy.runtime.state import ProcedureExit
from deputy.tools.checks import Refusal

log = logging.getLogger("deputy.runtime")

HANDOFF_TOOL = "handoff_to_human"
COMPLETE_TOOL = "complete_procedure"
TRANSFER_TOOL = "transfer_to_agent"


def free_name(base: str, taken: Collection[str]) -> str:
    """`base`, or the first of `deputy_<base>`, `<base>_2`, `<base>_3`… no spec tool uses."""
    if base not in taken:
        return base
    candidate = f"deputy_{base}"
    number = 2
    while candidate in taken:
        candidate = f"{base}_{number}"
        number += 1
    return candidate


def builtin_handoff_tool(spec: AgentSpec) -> str | None:
    """The name of the spec's own `handoff` built-in tool, if it has one."""
    return next(
        (
            t.name
            for t in spec.tools
            if isinstance(t.binding, BuiltinBinding) and t.binding.builtin == "handoff"
        ),
        None,
    )


def handoff_schema(spec: AgentSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
    }
    if spec.escalation.rules:
        properties["rule_id"] = {
            "type": "string",
            "enum": [rule.id for rule in spec.escalation.rules],
            "description": "The escalation rule that applies, if one does.",
        }
    return {
        "type": "object",
        "properties": properties,
        "required": ["reason"],
        "additionalProperties": False,
    }


def complete_schema(spec: AgentSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "procedure_id": {"type": "string", "enum": [p.id for p in spec.procedures]},
            "exit_id": {"type": "string", "description": "One of the procedure's exits."},
        },
        "required": ["procedure_id", "exit_id"],
        "additionalProperties": False,
    }


def transfer_schema(spec: AgentSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "route_id": {"type": "string", "enum": [route.id for route in spec.routes]},
            "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
        },
        "required": ["route_id", "reason"],
        "additionalProperties": False,
    }


def transfer_description(spec: AgentSpec) -> str:
    routes = "\n".join(f"- {route.id}: {route.when.strip()}" for route in spec.routes)
    return (
        "Pass the conversation to another agent that handles it (it answers the customer's "
        f"latest message itself). Routes:\n{routes}"
    )


@dataclass(frozen=True)
class Toolbox:
    """What one turn offers: the definitions, and which names are the runtime's own."""

    definitions: tuple[ToolDefinition, ...]
    names: ToolNames
    runtime_handoff: bool
    """True when `names.handoff` is the runtime's tool (the spec has no `handoff` built-in)."""
    transfer: str | None = None
    """The name of the transfer tool (offered when the spec has routes)."""

    @property
    def tokens(self) -> int:
        """The estimated context the definitions take."""
        return sum(
            estimate_tokens(f"{d.name} {d.description} {json.dumps(d.parameters, default=str)}")
            for d in self.definitions
        )


async def build_toolbox(ctx: TurnContext) -> Toolbox:
    """Every spec tool whose schema is available, plus the runtime tools."""
    spec = ctx.spec
    definitions: list[ToolDefinition] = []
    for tool in spec.tools:
        try:
            schema = await ctx.tools.tool_schema(tool.name)
        except (KeyError, Refusal) as exc:  # its source is not configured: do not offer it
            log.warning("tool not offered", extra={"tool": tool.name, "reason": str(exc)})
            continue
        definitions.append(ToolDefinition(tool.name, tool.description, schema))
    taken = {tool.name for tool in spec.tools}
    own_handoff = builtin_handoff_tool(spec)
    handoff = own_handoff or free_name(HANDOFF_TOOL, taken)
    if own_handoff is None:
        definitions.append(
            ToolDefinition(
                handoff,
                "Hand the conversation to a human colleague (give the escalation rule id when "
                "one applies).",
                handoff_schema(spec),
            )
        )
    complete: str | None = None
    if spec.procedures:
        complete = free_name(COMPLETE_TOOL, taken | {handoff})
        definitions.append(
            ToolDefinition(
                complete,
                "Record that a procedure reached one of its exits.",
                complete_schema(spec),
            )
        )
    transfer: str | None = None
    if spec.routes:
        transfer = free_name(TRANSFER_TOOL, taken | {handoff} | ({complete} if complete else set()))
        definitions.append(
            ToolDefinition(transfer, transfer_description(spec), transfer_schema(spec))
        )
    return Toolbox(tuple(definitions), ToolNames(handoff, complete), own_handoff is None, transfer)


@dataclass(frozen=True)
class RuntimeAnswer:
    """A runtime tool's result: the text the model reads, and a draft when the turn ends."""

    text: str
    draft: Draft | None = None
    ok: bool = True


def _runtime_result(tool: str, status: str, text: str) -> str:
    return f'<tool_result tool="{tool}" status="{status}" trust="runtime">\n{text}\n</tool_result>'


def request_handoff(spec: AgentSpec, tool: str, arguments: Mapping[str, Any]) -> RuntimeAnswer:
    """The runtime handoff tool: a draft that hands the conversation over (to the rule's queue
    when a rule is named), or an error the model can correct."""
    reason = arguments.get("reason")
    rule_id = arguments.get("rule_id")
    rule = next((r for r in spec.escalation.rules if r.id == rule_id), None)
    if not isinstance(reason, str) or not reason.strip():
        return RuntimeAnswer(_runtime_result(tool, "failed", "`reason` is required."), ok=False)
    if rule_id is not None and rule is None:
        known = ", ".join(r.id for r in spec.escalation.rules) or "none"
        text = f"There is no escalation rule {rule_id!r} (rules: {known})."
        return RuntimeAnswer(_runtime_result(tool, "failed", text), ok=False)
    handoff = HandoffRequest(
        trigger="rule" if rule is not None else "agent",
        reason=reason.strip()[:1000],
        queue=(rule.queue if rule is not None and rule.queue else spec.escalation.default_queue),
        rule_id=rule.id if rule is not None else None,
    )
    draft = Draft(spec.escalation.message, handoff=handoff, details={"mode": "reasoning"})
    return RuntimeAnswer(_runtime_result(tool, "succeeded", "Handing off."), draft)


def transfer_reply(spec: AgentSpec, route_id: str) -> str:
    """What the customer reads when a route is taken."""
    route = spec.route(route_id)
    target = (route.description.strip() if route else "") or route_id
    return f"I'm passing you to {target}."


def request_transfer(spec: AgentSpec, tool: str, arguments: Mapping[str, Any]) -> RuntimeAnswer:
    """The runtime transfer tool: a draft that passes the conversation along one of the spec's
    routes, or an error the model can correct."""
    route_id, reason = arguments.get("route_id"), arguments.get("reason")
    route = spec.route(route_id) if isinstance(route_id, str) else None
    if route is None:
        known = ", ".join(r.id for r in spec.routes)
        text = f"There is no route {route_id!r} (routes: {known})."
        return RuntimeAnswer(_runtime_result(tool, "failed", text), ok=False)
    if not isinstance(reason, str) or not reason.strip():
        return RuntimeAnswer(_runtime_result(tool, "failed", "`reason` is required."), ok=False)
    transfer = TransferRequest(route.id, route.agent, reason.strip()[:1000])
    draft = Draft(
        transfer_reply(spec, route.id),
        transfer=transfer,
        details={"mode": "reasoning", "route": route.id},
    )
    return RuntimeAnswer(_runtime_result(tool, "succeeded", "Transferring."), draft)


async def complete_procedure(
    ctx: TurnContext,
    key: str,
    tool: str,
    arguments: Mapping[str, Any],
    call_ids: Sequence[str],
) -> RuntimeAnswer:
    """The runtime completion tool: append the exit to `ctx.state.completed` with the calls
    made since the previous completion, and record a `procedure` entry under `key`."""
    procedure_id, exit_id = arguments.get("procedure_id"), arguments.get("exit_id")
    procedure = ctx.spec.procedure(str(procedure_id)) if isinstance(procedure_id, str) else None
    if procedure is None:
        text = f"There is no procedure {procedure_id!r}."
        return RuntimeAnswer(_runtime_result(tool, "failed", text), ok=False)
    reached = next((e for e in procedure.exits if e.id == exit_id), None)
    if reached is None:
        exits = ", ".join(e.id for e in procedure.exits) or "none"
        text = f"Procedure {procedure.id!r} has no exit {exit_id!r} (exits: {exits})."
        return RuntimeAnswer(_runtime_result(tool, "failed", text), ok=False)
    ctx.state.completed.append(
        ProcedureExit(
            procedure_id=procedure.id,
            exit_id=reached.id,
            outcome=reached.outcome,
            turn=ctx.state.turn,
            tool_call_ids=list(call_ids),
        )
    )
    data = {
        "event": "exited",
        "procedure": procedure.id,
        "exit": reached.id,
        "outcome": reached.outcome,
        "tool_call_ids": list(call_ids),
    }
    await ctx.record(Entry("procedure", key, data=data))
    text = (
        f"Recorded: procedure {procedure.id} finished with exit {reached.id} ({reached.outcome})."
    )
    return RuntimeAnswer(_runtime_result(tool, "succeeded", text))


def calls_since_completion(spec: AgentSpec, entries: Sequence[RecordedEntry]) -> list[str]:
    """The ledger ids of the successful non-read tool calls in `entries` after the last
    procedure exit."""
    ids: list[str] = []
    for entry in sorted(entries, key=lambda e: e.seq):
        if entry.kind == "procedure" and entry.data.get("event") == "exited":
            ids = []
        elif entry.kind == "tool_call":
            call_id = entry.data.get("call_id")
            if entry.data.get("status") == "succeeded" and isinstance(call_id, str):
                tool = spec.tool(str(entry.data.get("tool")))
                if tool is not None and tool.effect != "read":
                    ids.append(call_id)
    return ids
