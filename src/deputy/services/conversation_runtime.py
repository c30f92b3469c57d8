"""The runtime a conversation's turn runs on: its agent version's spec, the agent's model, the
tool executor over the workspace's sources and ledger, and retrieval over the agent's own
knowledge index."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from deputy.domain.spec import AgentSpec
from deputy.knowledge import KnowledgeBase, RetrievalMode
from deputy.runtime.ports import Passage
from deputy.runtime.turn import AgentRuntime
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.tool_builtins import PlatformBuiltins, passage
from deputy.services.tool_sources import build_executor


@dataclass(frozen=True)
class KnowledgeRetriever:
    """`Retriever` over one agent's knowledge index, with the spec's retrieval mode."""

    knowledge: KnowledgeBase
    workspace_id: str
    agent_id: str
    mode: RetrievalMode

    async def search(self, query: str, k: int) -> list[Passage]:
        hits = await self.knowledge.search(
            self.workspace_id, self.agent_id, query, k=k, mode=self.mode
        )
        passages: list[Passage] = []
        for hit in hits:
            found = passage(hit)
            citation = {
                "document_id": hit.citation.document_id,
                "title": hit.citation.title,
                "material_id": hit.citation.material_id,
                "location": found.location,
                "chunk_id": hit.chunk_id,
                "score": found.score,
            }
            passages.append(Passage(hit.text, citation))
        return passages


@contextlib.asynccontextmanager
async def conversation_runtime(
    platform: Platform,
    *,
    workspace_id: str,
    agent_id: str,
    agent_version: int,
    agent_model: str | None,
    spec: AgentSpec,
) -> AsyncIterator[AgentRuntime]:
    """An `AgentRuntime` for one turn; its tool clients are closed when the block ends.
    (Built in the worker pool, not on the database's thread: resolving a model or a tool source
    may do more than database reads.)"""
    model = await anyio.to_thread.run_sync(resolve_model, platform, workspace_id, agent_model)
    tools = await anyio.to_thread.run_sync(
        lambda: build_executor(
            platform,
            workspace_id,
            agent_id,
            spec,
            builtins=PlatformBuiltins(platform.knowledge, platform.db, spec),
            agent_version=agent_version,
        )
    )
    retriever = KnowledgeRetriever(
        platform.knowledge, workspace_id, agent_id, spec.knowledge.retrieval
    )
    try:
        yield AgentRuntime(spec, model=model, tools=tools, retriever=retriever)
    finally:
        with anyio.CancelScope(shield=True):
            await tools.aclose()
