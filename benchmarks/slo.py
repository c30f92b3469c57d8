"""The SLO evaluator at volume: what one evaluation of a busy agent costs (the burn windows, as
the evaluator runs every minute for every deployed agent) and what the SLO endpoint costs (the
burn windows and the whole 28-day SLO window).

One deployed agent gets `--turns` turns spread over 28 days (one conversation per 4 turns; 2 %
failed, 1 % answered with a model error, the rest completed, a few slow), one probe run every
5 minutes, written in bulk. Then, through the service functions: `evaluate_agent` (the
evaluator's work for one agent) and `agent_slos` (the API's), each run `--repeat` times; the
median and the worst are reported, with the evaluations per minute one process could afford.

Results go to benchmarks/results/slo.json.

    PYTHONPATH=src python benchmarks/slo.py [--turns 200000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from deputy.config import load_settings
from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.services import agents, deployments
from deputy.services.agent_status import agent_slos
from deputy.services.keys import authenticate
from deputy.services.slo_evaluator import evaluate_agent
from deputy.services.startup import prepare
from deputy.store import tables as t
from deputy.store.tables import utcnow

RESULTS = Path(__file__).parent / "results" / "slo.json"
DAYS = 28
TURNS_PER_CONVERSATION = 4
BULK = 5000
SPEC = {"name": "Bench", "goal": "Answer questions.", "guardrails": {"preset": "minimal"}}


def _turn_rows(
    workspace: str, conversation: str, number: int, at: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    status = "failed" if number % 50 == 0 else "completed"
    slow = number % 97 == 0
    finished = at + timedelta(seconds=9 if slow else 1)
    turn_id = f"turn_bench{number:020d}"
    turn = {
        "id": turn_id,
        "workspace_id": workspace,
        "conversation_id": conversation,
        "number": number % TURNS_PER_CONVERSATION + 1,
        "status": status,
        "attempts": 1,
        "created_at": at,
        "started_at": at,
        "finished_at": finished,
    }
    entries = []
    if status == "completed":
        data: dict[str, Any] = {"language": "en"}
        if number % 100 == 1:
            data["error"] = "model_error"
        entries.append(
            {
                "id": f"ent_bench{number:021d}",
                "workspace_id": workspace,
                "conversation_id": conversation,
                "seq": number % TURNS_PER_CONVERSATION + 1,
                "turn_id": turn_id,
                "kind": "agent_message",
                "key": "reply",
                "text": "answer",
                "data": data,
                "created_at": finished,
            }
        )
    return turn, entries


def fill(workspace: str, agent: str, deployment: str, turns: int, platform: Any) -> float:
    started = time.perf_counter()
    now = utcnow()
    spacing = timedelta(days=DAYS) / max(turns, 1)
    conversations: list[dict[str, Any]] = []
    turn_rows: list[dict[str, Any]] = []
    entry_rows: list[dict[str, Any]] = []

    def flush() -> None:
        with platform.db.tenant_session(workspace) as session:
            for table, rows in (
                (t.Conversation, conversations),
                (t.Turn, turn_rows),
                (t.ConversationEntry, entry_rows),
            ):
                if rows:
                    session.execute(insert(table), rows)
        for rows in (conversations, turn_rows, entry_rows):
            rows.clear()

    for number in range(turns):
        at = now - timedelta(days=DAYS) + spacing * number
        conversation = f"cnv_bench{number // TURNS_PER_CONVERSATION:021d}"
        if number % TURNS_PER_CONVERSATION == 0:
            conversations.append(
                {
                    "id": conversation,
                    "workspace_id": workspace,
                    "agent_id": agent,
                    "agent_version": 1,
                    "current_agent_id": agent,
                    "current_agent_version": 1,
                    "channel": "api",
                    "status": "active",
                    "outcome_evidence": {},
                    "state": {},
                    "meta": {},
                    "last_seq": TURNS_PER_CONVERSATION,
                    "deployment_id": deployment,
                    "deployment_arm": "live",
                    "created_at": at,
                    "updated_at": at,
                }
            )
        turn, entries = _turn_rows(workspace, conversation, number, at)
        turn_rows.append(turn)
        entry_rows.extend(entries)
        if len(turn_rows) >= BULK:
            flush()
    flush()
    probe = "prb_bench00000000000000000000"
    with platform.db.tenant_session(workspace) as session:
        session.add(
            t.Probe(
                id=probe,
                workspace_id=workspace,
                agent_id=agent,
                name="bench",
                channel="api",
                scenario={},
                interval_seconds=300,
            )
        )
    runs = [
        {
            "id": f"prr_bench{n:020d}",
            "workspace_id": workspace,
            "probe_id": probe,
            "agent_id": agent,
            "status": "passed" if n % 20 else "failed",
            "details": {},
            "started_at": now - timedelta(minutes=5 * n),
        }
        for n in range(DAYS * 24 * 12)
    ]
    with platform.db.tenant_session(workspace) as session:
        session.execute(insert(t.ProbeRun), runs)
    return time.perf_counter() - started


def timings(work: Callable[[], Any], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 turns")
    args = parser.parse_args()
    turns = 20_000 if args.quick else args.turns
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), environment="test")
        platform, boot = prepare(settings)
        assert boot.created is not None
        owner = authenticate(platform, boot.created.owner_key.secret)
        agent = agents.create_agent(platform, owner, r.AgentCreate(name="bench")).id
        agents.create_version(platform, owner, agent, r.VersionCreate(spec=SPEC))
        deployment = deployments.deploy(platform, owner, agent, lc.DeploymentCreate(version=1))
        fill_seconds = fill(owner.workspace_id, agent, deployment.id, turns, platform)
        evaluator = timings(
            lambda: evaluate_agent(platform, owner.workspace_id, agent), args.repeat
        )
        endpoint = timings(lambda: agent_slos(platform, owner, agent), args.repeat)
        slos = agent_slos(platform, owner, agent)
        platform.close()
    result = {
        "machine": {
            "arch": host.machine(),
            "cpus": os.cpu_count(),
            "python": host.python_version(),
        },
        "database": "sqlite",
        "turns": turns,
        "probe_runs": DAYS * 24 * 12,
        "days": DAYS,
        "fill_seconds": round(fill_seconds, 1),
        "evaluate_agent": evaluator,
        "agent_slos": endpoint,
        "agents_per_minute_at_median": round(60_000 / evaluator["median_ms"]),
        "availability_28d": {"good": slos.slis[0].good, "total": slos.slis[0].total},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
