"""What the tool worlds of `deputy.sandbox.worlds` share: the timeout of a direct call, the
answer to an operation no world offers, and how a world says which operations it serves (so a
composite world can route a direct call)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from deputy.tools.base import InvocationResult

DIRECT_CALL_TIMEOUT_SECONDS = 30.0
"""The timeout of `ToolWorld.call` (replaying a reference action is not an agent's tool call,
so no spec tool gives it one)."""


@runtime_checkable
class ListsOperations(Protocol):
    """A world that can say which operations `call` reaches."""

    async def operations(self) -> frozenset[str]: ...


def unknown_operation(operation: str, where: str) -> InvocationResult:
    """A direct call to an operation the world does not have: a tool-level failure (as tau2's
    environment answers a call to a tool it lacks), never a request to anywhere."""
    return InvocationResult(
        ok=False, output={"error": f"{where} has no operation {operation!r}"}, status=None
    )
