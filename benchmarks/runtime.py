"""Platform overhead per conversation turn: the time a turn takes that is not spent in the model.

Each turn goes through the whole service path (`deputy.services.conversations.post_message`):
the customer message persisted before it is acknowledged, the per-conversation lease, the
runtime (input guardrails, context assembly, the reasoning loop, output guardrails), every entry
recorded, the state and the turn committed. The model answers instantly (a scripted reply, its
own time measured and subtracted), so what remains is Deputy's cost. Concurrency 1, 10 and 100
means that many customers posting their turns at the same time in one process, each in
conversations of 8 turns.

Results: p50/p95/p99 overhead per turn (ms) and turns per second, per database, written to
benchmarks/results/runtime.json. The goal is a p50 under 5 ms on SQLite on the reference machine.
As a baseline in the same run, the runtime alone (the same turn on an in-memory journal, no
database) is measured too, and each database's p50 is given as a ratio to it.

    PYTHONPATH=src python benchmarks/runtime.py [--quick]
    scripts/with-postgres.sh env PYTHONPATH=src python benchmarks/runtime.py   # adds PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.domain.spec import AgentSpec
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.runtime.context import ConversationRef, TurnInput
from deputy.runtime.journal import INBOUND_KEY, RecordedEntry
from deputy.runtime.state import AgentState
from deputy.runtime.turn import AgentRuntime
from deputy.services import agents
from deputy.services.conversations import create_conversation, post_message
from deputy.services.keys import authenticate
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.testing import FunctionModel, reply
from deputy.testing.runtime import InMemoryJournal
from deputy.testing.tools import InMemoryCallLedger
from deputy.tools import ToolExecutor

RESULTS = Path(__file__).parent / "results" / "runtime.json"
MODEL = "openai:instant-benchmark"
SPEC: dict[str, Any] = {
    "name": "Benchmark agent",
    "goal": "Answer questions about the shop's opening hours and returns.",
    "mode": "reasoning",
    "procedures": [
        {
            "id": "opening_hours",
            "title": "Opening hours",
            "when": "The customer asks when the shop is open.",
            "steps": [{"id": "answer", "kind": "end", "exit": "answered", "text": "9 to 5."}],
            "exits": [{"id": "answered", "outcome": "resolved"}],
        }
    ],
    "policies": [{"id": "polite", "text": "Be polite and brief."}],
}
TURNS_PER_CONVERSATION = 8
"""A support conversation of typical length; longer ones cost more (more history to load)."""
QUESTIONS = [
    "When are you open on Saturdays?",
    "Can I return shoes I bought last week?",
    "Do you ship to Canada?",
    "Thanks, that's all.",
]


class InstantModel:
    """Answers at once and adds up the time spent inside the model call."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.model = FunctionModel(self.answer, name=MODEL)

    def answer(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        self.calls += 1
        response = reply("We are open from 9am to 5pm, Monday to Saturday.")
        self.seconds += time.perf_counter() - started
        return response


@dataclass
class Bench:
    platform: Platform
    principal: Any
    agent_id: str
    model: InstantModel


def setup(database_url: str | None, data_dir: Path) -> Bench:
    settings = load_settings(data_dir=data_dir, environment="test", database_url=database_url)
    platform, boot = prepare(settings)
    assert boot.created is not None
    principal = authenticate(platform, boot.created.owner_key.secret)
    model = InstantModel()
    hub = platform.models
    hub.root = ModelRegistry(hub.base_settings, local=hub.local, served={MODEL: model.model})
    agent = agents.create_agent(platform, principal, r.AgentCreate(name="bench"))
    agents.update_agent(platform, principal, agent.id, r.AgentUpdate(model=MODEL))
    agents.create_version(platform, principal, agent.id, r.VersionCreate(spec=SPEC))
    return Bench(platform, principal, agent.id, model)


async def conversation(bench: Bench, turns: int, samples: list[float]) -> None:
    """`turns` customer messages, over consecutive conversations of `TURNS_PER_CONVERSATION`."""
    conversation_id = ""
    for turn in range(turns):
        if turn % TURNS_PER_CONVERSATION == 0:
            created = await asyncio.to_thread(
                create_conversation,
                bench.platform,
                bench.principal,
                r.ConversationCreate(agent_id=bench.agent_id),
            )
            conversation_id = created.id
        body = r.MessageCreate(text=QUESTIONS[turn % len(QUESTIONS)])
        model_before = bench.model.seconds
        started = time.perf_counter()
        await post_message(bench.platform, bench.principal, conversation_id, body)
        elapsed = time.perf_counter() - started
        # Under concurrency other turns' model time lands in between; the model is instant,
        # so the correction is negligible either way.
        samples.append(elapsed - (bench.model.seconds - model_before))


def runtime_alone(turns: int) -> dict[str, Any]:
    """The same turns through `AgentRuntime` on an in-memory journal: the harness without the
    platform's persistence, leases and API objects."""
    spec = AgentSpec.model_validate(SPEC)
    model = InstantModel()
    runtime = AgentRuntime(
        spec, model=model.model, tools=ToolExecutor(spec, {}, InMemoryCallLedger())
    )
    samples: list[float] = []
    for turn in range(turns):
        if turn % TURNS_PER_CONVERSATION == 0:
            journal, state = InMemoryJournal(), AgentState()
        journal.start_turn(f"turn_{turn}")
        inbound = RecordedEntry(
            id=f"ent_{turn}",
            seq=len(journal.entries) + 1,
            turn_id=journal.turn_id,
            kind="customer_message",
            key=INBOUND_KEY,
            text=QUESTIONS[turn % len(QUESTIONS)],
            data={},
            created_at=datetime.now(UTC),
        )
        started = time.perf_counter()
        result = asyncio.run(
            runtime.run_turn(
                TurnInput(
                    conversation=ConversationRef("ws_bench", "agt_bench", "cnv_bench"),
                    spec=spec,
                    state=state,
                    inbound=inbound,
                    turn_id=journal.turn_id,
                    history=tuple(journal.entries[-200:]),
                ),
                journal,
            )
        )
        samples.append(time.perf_counter() - started)
        state = result.state
    ordered = sorted(samples)
    return {
        "turns": turns,
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p95_ms": round(percentile(ordered, 95) * 1000, 3),
    }


def percentile(sorted_samples: list[float], p: float) -> float:
    index = min(len(sorted_samples) - 1, max(0, round(p / 100 * len(sorted_samples)) - 1))
    return sorted_samples[index]


async def level(bench: Bench, conversations: int, turns: int) -> dict[str, Any]:
    samples: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(conversation(bench, turns, samples) for _ in range(conversations)))
    wall = time.perf_counter() - started
    ordered = sorted(samples)
    return {
        "concurrent_conversations": conversations,
        "turns": len(samples),
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p95_ms": round(percentile(ordered, 95) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "turns_per_second": round(len(samples) / wall, 1),
    }


def run_database(name: str, database_url: str | None, plan: list[tuple[int, int]]) -> Any:
    with tempfile.TemporaryDirectory() as data_dir:
        bench = setup(database_url, Path(data_dir))
        try:
            asyncio.run(level(bench, 1, 5))  # warm-up: imports, caches, first connections
            levels = [asyncio.run(level(bench, n, turns)) for n, turns in plan]
        finally:
            bench.platform.close()
    print(f"{name}:")
    for result in levels:
        print(
            f"  {result['concurrent_conversations']:>3} conversations: "
            f"p50 {result['p50_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms, {result['turns_per_second']} turns/s"
        )
    return {"database": name, "model_calls": bench.model.calls, "levels": levels}


def postgres_database(admin_url: str) -> tuple[str, Any]:
    name = f"deputy_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns (under a minute)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DEPUTY_TEST_POSTGRES_URL"),
        help="an admin URL of a PostgreSQL server (a throwaway database is created on it)",
    )
    args = parser.parse_args()
    plan = [(1, 40), (10, 8), (100, 1)] if args.quick else [(1, 300), (10, 40), (100, 8)]
    alone = runtime_alone(40 if args.quick else 300)
    print(f"runtime alone: p50 {alone['p50_ms']:.2f} ms, p95 {alone['p95_ms']:.2f} ms")
    databases = [run_database("sqlite", None, plan)]
    if args.postgres_url:
        url, drop = postgres_database(args.postgres_url)
        try:
            databases.append(run_database("postgresql", url, plan))
        finally:
            drop()
    for database in databases:
        database["p50_ratio_to_runtime_alone"] = round(
            database["levels"][0]["p50_ms"] / alone["p50_ms"], 1
        )
    sqlite_p50 = databases[0]["levels"][0]["p50_ms"]
    report = {
        "benchmark": "runtime turn overhead (instant scripted model)",
        "quick": args.quick,
        "machine": {"cpu_count": os.cpu_count(), "python": host.python_version()},
        "goal": "p50 under 5 ms on SQLite at 1 conversation",
        "goal_met": sqlite_p50 < 5.0,
        "runtime_alone": alone,
        "databases": databases,
    }
    if not args.postgres_url:
        report["note"] = "PostgreSQL not measured: no --postgres-url / DEPUTY_TEST_POSTGRES_URL"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
