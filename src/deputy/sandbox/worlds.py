"""Tool worlds: where a sandbox trial's tool calls go, never the client's production systems.

- `AsgiWorldFactory` (`worlds_asgi`): a stateful simulation of the backend, in process, a
  fresh copy of its seed state per trial (e.g. the retail sample backend,
  `examples.retail.sandbox`);
- `RecordedWorldFactory` (`worlds_recorded`): responses recorded from production traces,
  replayed; anything not recorded fails without going anywhere;
- `StagingWorldFactory`: the client's own sandbox or staging system, through clients the caller
  builds from another registered tool source;
- `CompositeWorldFactory`: a world per source key, the others to a fallback;
- `load_backend`: a factory named `module:attribute` (what the operator registered)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, cast

from pydantic import JsonValue

from deputy.domain.spec import AgentSpec
from deputy.sandbox.ports import ToolWorld, WorldFactory
from deputy.sandbox.worlds_asgi import AsgiWorld, AsgiWorldFactory
from deputy.sandbox.worlds_base import (
    DIRECT_CALL_TIMEOUT_SECONDS,
    ListsOperations,
    unknown_operation,
)
from deputy.sandbox.worlds_recorded import (
    RecordedWorld,
    RecordedWorldFactory,
    Recording,
    recordings_from_calls,
)
from deputy.tools.base import Invocation, InvocationResult, ToolSourceClient

__all__ = [
    "FALLBACK_STATE_KEY",
    "AsgiWorld",
    "AsgiWorldFactory",
    "CompositeWorld",
    "CompositeWorldFactory",
    "RecordedWorld",
    "RecordedWorldFactory",
    "Recording",
    "StagingWorld",
    "StagingWorldFactory",
    "load_backend",
    "recordings_from_calls",
]

FALLBACK_STATE_KEY = "*"
"""The key of the fallback world's state in a composite state (no source key can be `*`)."""


class StagingWorld:
    """The client's staging system (implements `ToolWorld`). Its state cannot be observed and
    it is not reset between trials: it suits checks that do not compare end states."""

    def __init__(
        self, description: str, make_clients: Callable[[AgentSpec], Mapping[str, ToolSourceClient]]
    ) -> None:
        self.description = description
        self._make_clients = make_clients
        self._made: list[ToolSourceClient] = []

    def clients(self, spec: AgentSpec) -> dict[str, ToolSourceClient]:
        made = dict(self._make_clients(spec))
        for client in made.values():
            if not any(client is earlier for earlier in self._made):
                self._made.append(client)
        return made

    async def operations(self) -> frozenset[str]:
        """What the clients made so far (by `clients`) list."""
        listed: set[str] = set()
        for client in self._made:
            listed.update(d.operation for d in await client.list_tools())
        return frozenset(listed)

    async def call(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        """Through the first client made so far (by `clients`) that lists `operation`."""
        for client in self._made:
            if any(d.operation == operation for d in await client.list_tools()):
                return await client.invoke(
                    Invocation(operation, dict(arguments), DIRECT_CALL_TIMEOUT_SECONDS)
                )
        return unknown_operation(operation, self.description)

    async def state(self) -> JsonValue | None:
        return None

    async def aclose(self) -> None:
        """Close every client this world made (closing one twice is harmless)."""
        made, self._made = self._made, []
        await _close_all(made)


class StagingWorldFactory:
    """Worlds over the caller's clients to a staging system (implements `WorldFactory`):
    `make_clients(spec)` gives a client per source key it serves."""

    def __init__(
        self,
        make_clients: Callable[[AgentSpec], Mapping[str, ToolSourceClient]],
        *,
        description: str,
    ) -> None:
        self.description = description
        self._make_clients = make_clients

    async def open(self) -> StagingWorld:
        return StagingWorld(self.description, self._make_clients)


class CompositeWorld:
    """Each part's world serves its source key; the fallback serves the rest (implements
    `ToolWorld`)."""

    def __init__(
        self,
        description: str,
        parts: Mapping[str, ToolWorld],
        fallback: ToolWorld,
        worlds: list[ToolWorld],
    ) -> None:
        self.description = description
        self._parts = dict(parts)
        self._fallback = fallback
        self._worlds = worlds

    def clients(self, spec: AgentSpec) -> dict[str, ToolSourceClient]:
        served = {
            key: client
            for key, client in self._fallback.clients(spec).items()
            if key not in self._parts
        }
        for key, world in self._parts.items():
            client = world.clients(spec).get(key)
            if client is not None:
                served[key] = client
        return served

    async def call(self, operation: str, arguments: Mapping[str, Any]) -> InvocationResult:
        """To the first part that lists `operation` among its operations, else the fallback."""
        for world in self._parts.values():
            if isinstance(world, ListsOperations) and operation in await world.operations():
                return await world.call(operation, arguments)
        return await self._fallback.call(operation, arguments)

    async def state(self) -> JsonValue | None:
        """`{source_key: state}` of the parts that have one, the fallback's under
        `FALLBACK_STATE_KEY`; None when no world has a state."""
        states: dict[str, JsonValue] = {}
        for key, world in [*self._parts.items(), (FALLBACK_STATE_KEY, self._fallback)]:
            state = await world.state()
            if state is not None:
                states[key] = state
        return states or None

    async def aclose(self) -> None:
        await _close_all(self._worlds)


class CompositeWorldFactory:
    """`parts` maps a source key to the factory of the world that serves it; every other source
    goes to `fallback`. A factory named for several keys opens one world for all of them."""

    def __init__(self, parts: Mapping[str, WorldFactory], *, fallback: WorldFactory) -> None:
        self._parts = dict(parts)
        self._fallback = fallback
        shown = [f"{key}: {factory.description}" for key, factory in self._parts.items()]
        self.description = "; ".join([*shown, f"other sources: {fallback.description}"])

    async def open(self) -> CompositeWorld:
        opened: dict[int, ToolWorld] = {}
        try:
            for factory in [*self._parts.values(), self._fallback]:
                if id(factory) not in opened:
                    opened[id(factory)] = await factory.open()
        except BaseException:
            await _close_all(list(opened.values()))
            raise
        return CompositeWorld(
            self.description,
            {key: opened[id(factory)] for key, factory in self._parts.items()},
            opened[id(self._fallback)],
            list(opened.values()),
        )


async def _close_all(closables: list[Any]) -> None:
    """`aclose()` each of them; the first error is raised once all were tried."""
    first: BaseException | None = None
    for item in closables:
        try:
            await item.aclose()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def load_backend(ref: str, seed: str | None) -> WorldFactory:
    """The world factory `attribute(seed)` of module `module`, for `ref` = `module:attribute`
    (e.g. `examples.retail.sandbox:world_factory`). Raises ValueError naming what is wrong: a
    malformed reference, a module that cannot be imported, a missing or uncallable attribute,
    or a result that is not a world factory."""
    module_name, colon, attribute = ref.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise ValueError(f"backend reference {ref!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import the backend module {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"the backend module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"backend {ref!r} is not callable (it should build a world factory)")
    factory = target(seed)
    opener = getattr(factory, "open", None)
    if not isinstance(getattr(factory, "description", None), str) or not (
        opener is not None and inspect.iscoroutinefunction(opener)
    ):
        raise ValueError(
            f"backend {ref!r} returned {type(factory).__name__}, not a world factory "
            "(it needs a `description` string and an async `open()`)"
        )
    return cast(WorldFactory, factory)
