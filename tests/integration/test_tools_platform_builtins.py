"""The platform's built-ins through the executor `build_executor` wires: `lookup_knowledge`
searches the calling agent's own index with the real bundled embedder and cites what it returns
(another agent's documents never come back, whatever the model asks); `remember_fact` keeps facts
per conversation and per customer of one agent, once per call site."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import Principal
from deputy.services import agents, knowledge
from deputy.services.keys import authenticate
from deputy.services.memory import SqlMemory
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.services.tool_sources import build_executor
from deputy.tools.results import CallContext

pytestmark = pytest.mark.integration

RETURNS = """# Returns

## Gift cards

Refunds for items paid by gift card go back to that gift card within one day.

## Deadline

Delivered items can be returned within 30 days of delivery.
"""
SECRET = "# Internal\n\nThe warehouse door code is 4417 and opens the loading bay.\n"
SPEC = AgentSpec.model_validate(
    {
        "name": "support",
        "goal": "Answer questions about returns.",
        "tools": [
            {
                "name": "search_policy",
                "effect": "read",
                "binding": {"kind": "builtin", "builtin": "lookup_knowledge"},
            },
            {
                "name": "note",
                "effect": "write",
                "binding": {"kind": "builtin", "builtin": "remember_fact"},
            },
        ],
    }
)


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[tuple[Platform, Principal]]:
    platform, boot = prepare(load_settings(database_url=database_url, data_dir=tmp_path / "d"))
    assert boot.created is not None
    yield platform, authenticate(platform, boot.created.owner_key.secret)
    platform.close()


def test_lookup_knowledge_searches_only_the_calling_agents_index(
    platform: tuple[Platform, Principal],
) -> None:
    deputy, owner = platform
    support = agents.create_agent(deputy, owner, r.AgentCreate(name="support")).id
    other = agents.create_agent(deputy, owner, r.AgentCreate(name="internal")).id

    async def scenario() -> None:
        await knowledge.add_document(
            deputy, owner, support, r.KnowledgeFromText(text=RETURNS, title="Returns policy")
        )
        await knowledge.add_document(
            deputy, owner, other, r.KnowledgeFromText(text=SECRET, title="Door codes")
        )
        executor = build_executor(deputy, owner.workspace_id, support, SPEC)
        ctx = CallContext(owner.workspace_id, support, "conv-1", "turn-1/step-1")
        try:
            found = await executor.call(
                ctx, "search_policy", {"query": "my gift card refund, when?", "k": 2}
            )
            assert found.status == "succeeded", found
            passages = found.output["passages"]
            assert passages and "gift card within one day" in passages[0]["text"]
            citation = passages[0]["citation"]
            assert citation["title"] == "Returns policy"
            assert "Gift cards" in citation["location"] and "lines" in citation["location"]
            assert 'trust="untrusted"' in found.for_model()

            probe = await executor.call(
                CallContext(owner.workspace_id, support, "conv-1", "turn-2/step-1"),
                "search_policy",
                {"query": "warehouse door code", "k": 5},
            )
            assert all("4417" not in p["text"] for p in probe.output["passages"])

            refused = await executor.call(ctx, "search_policy", {"query": "x", "agent": other})
            assert (refused.status, refused.code) == ("refused", "invalid_arguments")

        finally:
            await executor.aclose()

    asyncio.run(scenario())


def test_remember_fact_keeps_facts_per_conversation_and_per_customer_of_one_agent(
    platform: tuple[Platform, Principal],
) -> None:
    deputy, owner = platform
    ws = owner.workspace_id
    support = agents.create_agent(deputy, owner, r.AgentCreate(name="support")).id
    other = agents.create_agent(deputy, owner, r.AgentCreate(name="other")).id
    memory = SqlMemory(deputy.db, ws)

    async def scenario() -> None:
        executor = build_executor(deputy, ws, support, SPEC)
        anonymous = CallContext(ws, support, "conv-1", "turn-1/step-1")
        known = CallContext(ws, support, "conv-2", "turn-1/step-1", customer_id="cus-ana")
        try:
            no_one = await executor.call(
                anonymous, "note", {"fact": "likes blue", "about": "customer"}
            )
            assert (no_one.status, no_one.code) == ("failed", "tool_error")
            second_step = CallContext(ws, support, "conv-1", "turn-1/step-2")
            stored = await executor.call(second_step, "note", {"fact": "order #W1 is a gift"})
            assert stored.ok, stored
            customer = await executor.call(
                known, "note", {"fact": "prefers email", "about": "customer"}
            )
            assert customer.ok, customer
        finally:
            await executor.aclose()

    asyncio.run(scenario())
    # The same call site again (a resumed turn) stores nothing more.
    assert not memory.remember(
        agent_id=support,
        conversation_id="conv-2",
        step_key="turn-1/step-1",
        scope="customer",
        customer_id="cus-ana",
        fact="prefers email",
    )
    later = memory.recall(agent_id=support, conversation_id="conv-9", customer_id="cus-ana")
    assert [(f.scope, f.fact) for f in later] == [("customer", "prefers email")]
    first = memory.recall(agent_id=support, conversation_id="conv-1", customer_id=None)
    assert [f.fact for f in first] == ["order #W1 is a gift"]
    assert memory.recall(agent_id=other, conversation_id="conv-9", customer_id="cus-ana") == []
    assert memory.recall(agent_id=support, conversation_id="conv-9", customer_id="cus-bo") == []
