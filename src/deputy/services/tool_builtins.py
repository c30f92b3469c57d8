"""The platform's handlers for the built-in tools that need one.

`lookup_knowledge` searches the agent's own knowledge index (never another agent's: the workspace
and agent come from the call context the runtime built, not from the model's arguments), with the
retrieval mode the spec chooses, and returns passages with their citations. `remember_fact`
stores the fact for this conversation or for the identified customer of this agent
(`deputy.services.memory`), once per call site, so a resumed turn does not store it twice."""

from __future__ import annotations

from deputy.domain.spec import AgentSpec
from deputy.knowledge import KnowledgeBase, RetrievedChunk
from deputy.services.memory import SqlMemory
from deputy.store.db import Database
from deputy.tools.builtins import BuiltinUnavailable, KnowledgePassage, MemoryScope
from deputy.tools.results import CallContext


def passage(hit: RetrievedChunk) -> KnowledgePassage:
    citation = hit.citation
    where = [" > ".join(citation.heading_path)] if citation.heading_path else []
    where.append(citation.locator.label)
    return KnowledgePassage(
        text=hit.text,
        source=citation.document_id,
        title=citation.title,
        location=", ".join(where),
        score=round(hit.score, 6),
    )


class PlatformBuiltins:
    def __init__(self, knowledge: KnowledgeBase, db: Database, spec: AgentSpec) -> None:
        self._knowledge = knowledge
        self._db = db
        self._mode = spec.knowledge.retrieval

    async def lookup_knowledge(
        self, ctx: CallContext, query: str, k: int
    ) -> list[KnowledgePassage]:
        hits = await self._knowledge.search(
            ctx.workspace_id, ctx.agent_id, query, k=k, mode=self._mode
        )
        return [passage(hit) for hit in hits]

    async def remember_fact(self, ctx: CallContext, about: MemoryScope, fact: str) -> None:
        if about == "customer" and not ctx.customer_id:
            raise BuiltinUnavailable("this conversation has no identified customer to remember")
        memory = SqlMemory(self._db, ctx.workspace_id)
        await self._db.run(
            lambda: memory.remember(
                agent_id=ctx.agent_id,
                conversation_id=ctx.conversation_id,
                step_key=ctx.step_key,
                scope=about,
                customer_id=ctx.customer_id,
                fact=fact,
            )
        )
