"""A tool world that replays recorded responses (from production traces) and never calls
anything.

A call is matched by its operation and canonical arguments (`arguments_sha256`: key order and
`25.0` vs `25` do not matter). When the same call was recorded several times, the answers are
given in recorded order, and the last one again once they run out (a status read before and
after a change gets both answers in turn). A call nobody recorded gets a tool-level failure the
agent can see; it never goes anywhere. The world is stateless: `state()` is None."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from deputy.domain.spec import AgentSpec, BuiltinBinding, Tool
from deputy.tools.base import Invocation, InvocationResult, ToolDefinition, ToolSourceClient
from deputy.tools.checks import operation_name, source_key
from deputy.tools.confirmation import arguments_sha256
from deputy.tools.ledger import CallRecord

NOT_RECORDED = "no recorded response for this call in the sandbox"

_Key = tuple[str, str]


@dataclass(frozen=True)
class Recording:
    """One recorded call: the operation the source knows, its arguments, and what came back."""

    operation: str
    arguments: dict[str, JsonValue]
    ok: bool
    output: JsonValue
    status: int | None = None


def recordings_from_calls(spec: AgentSpec, calls: Iterable[CallRecord]) -> list[Recording]:
    """Recordings from the call ledger's records of `spec`'s tools: the calls that reached
    their source and got an answer (succeeded or failed), in the given order. Refused, pending
    and unknown-outcome calls, built-ins and tools the spec does not have are left out."""
    recordings: list[Recording] = []
    for call in calls:
        tool = spec.tool(call.tool)
        if tool is None or isinstance(tool.binding, BuiltinBinding):
            continue
        if call.status not in ("succeeded", "failed"):
            continue
        status = call.response.get("status")
        recordings.append(
            Recording(
                operation=operation_name(tool),
                arguments=dict(call.arguments),
                ok=call.status == "succeeded",
                output=call.output,
                status=status if isinstance(status, int) else None,
            )
        )
    return recordings


def _key(operation: str, arguments: Mapping[str, Any]) -> _Key:
    return operation, arguments_sha256(arguments)


class RecordedWorld:
    """One replay (implements `deputy.sandbox.ports.ToolWorld`): its own position in each
    call's recorded answers."""

    def __init__(self, description: str, index: Mapping[_Key, Sequence[Recording]]) -> None:
        self.description = description
        self._index = index
        self._next: dict[_Key, int] = {}

    def clients(self, spec: AgentSpec) -> dict[str, ToolSourceClient]:
        """A replaying client for every source key of the spec's non-built-in tools."""
        tools: dict[str, list[Tool]] = {}
        for tool in spec.tools:
            key = source_key(tool)
            if key is not None:
                tools.setdefault(key, []).append(tool)
        return {key: RecordedClient(self, bound) for key, bound in tools.items()}

    async def operations(self) -> frozenset[str]:
        return frozenset(operation for operation, _ in self._index)

    async def call(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        return self.answer(operation, arguments)

    def answer(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        key = _key(operation, arguments)
        request = {"operation": operation, "arguments": copy.deepcopy(dict(arguments))}
        recorded = self._index.get(key)
        if not recorded:
            refusal = {"error": NOT_RECORDED}
            return InvocationResult(
                ok=False, output=refusal, request=request, response={"body": refusal}
            )
        position = self._next.get(key, 0)
        self._next[key] = position + 1
        recording = recorded[min(position, len(recorded) - 1)]
        output = copy.deepcopy(recording.output)
        return InvocationResult(
            ok=recording.ok,
            output=output,
            status=recording.status,
            request=request,
            response={"status": recording.status, "body": output, "replayed": True},
        )

    async def state(self) -> JsonValue | None:
        return None

    async def aclose(self) -> None:
        return None


class RecordedClient:
    """The tools of one source key, answered from the world's recordings. It lists each tool
    with the spec's own schema (or any object, when the spec gives none): recordings say
    nothing of schemas."""

    honours_idempotency_keys = False

    def __init__(self, world: RecordedWorld, tools: Sequence[Tool]) -> None:
        self._world = world
        self._definitions = [
            ToolDefinition(
                operation=operation_name(tool),
                description=tool.description,
                input_schema=dict(tool.parameters)
                if tool.parameters is not None
                else {"type": "object"},
                effect=tool.effect,
            )
            for tool in tools
        ]

    async def list_tools(self) -> list[ToolDefinition]:
        return list(self._definitions)

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        return self._world.answer(invocation.operation, invocation.arguments)

    async def aclose(self) -> None:
        return None


class RecordedWorldFactory:
    """Opens `RecordedWorld`s over `recordings` (implements `WorldFactory`)."""

    def __init__(self, recordings: Sequence[Recording], *, description: str) -> None:
        self.description = description
        index: dict[_Key, list[Recording]] = {}
        for recording in recordings:
            index.setdefault(_key(recording.operation, recording.arguments), []).append(recording)
        self._index = index

    async def open(self) -> RecordedWorld:
        return RecordedWorld(self.description, self._index)
