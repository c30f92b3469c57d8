"""What the runtime needs from the platform, as protocols: a tool runner (the tool executor),
knowledge retrieval for this agent, and a sink for streamed events. The services layer provides
the real ones; `deputy.testing.runtime` has fakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from deputy.runtime.journal import RecordedEntry
from deputy.tools.results import CallContext, ToolCallResult


class ToolRunner(Protocol):
    """`deputy.tools.ToolExecutor` satisfies it."""

    async def call(
        self, ctx: CallContext, tool: str, arguments: Mapping[str, Any]
    ) -> ToolCallResult: ...

    async def tool_schema(self, tool: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Passage:
    """A retrieved knowledge passage and where it comes from (`citation`: document_id, title,
    location, material_id, chunk_id, score)."""

    text: str
    citation: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "citation": dict(self.citation)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Passage:
        return cls(str(value.get("text", "")), dict(value.get("citation") or {}))


class Retriever(Protocol):
    """Search this agent's own knowledge index."""

    async def search(self, query: str, k: int) -> list[Passage]: ...


class NoKnowledge:
    """A retriever for agents without knowledge sources."""

    async def search(self, query: str, k: int) -> list[Passage]:
        return []


class EventSink(Protocol):
    """Live events of a running turn (to stream to the customer): every recorded entry, and the
    approved reply in pieces."""

    async def entry(self, entry: RecordedEntry) -> None: ...

    async def reply_delta(self, text: str) -> None: ...


class NullSink:
    async def entry(self, entry: RecordedEntry) -> None:
        return None

    async def reply_delta(self, text: str) -> None:
        return None
