"""The improvement loop on the embedded local model against the retail sample, end to end, the
way a user runs it: a real `deputy serve` process, the retail example's REST backend as the
production tool source, the agent deployed through the API, production conversations through
the conversation API, and an improvement run (evaluate → cluster → propose → sandbox A/B →
proposal) through the API; the result is reported whatever it is.

The deployed version (v1) is `examples/specs/retail_support.yaml` **without its exchange
procedure** (the issue's example of a recurring failure: "the agent never offers exchanges");
production customers are simulated by the local model from tau2 retail train tasks, most of
which ask for exchanges. Nothing in the loop knows what was removed.

    PYTHONPATH=src:. python benchmarks/improve.py [--conversations 6] [--quick]
        [--agent-model local:qwen2.5-coder-0.5b] [--model local:qwen2.5-coder-1.5b]

Results: benchmarks/results/improve.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from benchmarks.served import deputy_serve
from examples.retail.auth import AuthConfig
from examples.retail.rest import create_app as create_retail_app
from examples.retail.server import serve_app
from examples.retail.store import RetailStore

from deputy.config import load_settings
from deputy.domain.sandbox_results import TranscriptMessage
from deputy.llm.local import LocalModels
from deputy.llm.registry import ModelRegistry
from deputy.sandbox.bench import select_tasks
from deputy.sandbox.customers import SimulatedCustomer
from deputy.sandbox.tau2 import tau2_suite
from deputy.sdk import DeputyClient
from deputy.services.model_hub import provider_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
RETAIL = SHARED / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
SPEC = REPO / "examples" / "specs" / "retail_support.yaml"
RESULTS = Path(__file__).parent / "results" / "improve.json"
REMOVED = "exchange_order_items"
EXCHANGE_TASKS = ("0", "1", "6", "7", "8", "23", "29", "52")
OTHER_TASKS = ("2", "3", "4", "5")
IMPROVE_TIMEOUT = 4 * 3600.0


def v1_spec() -> dict[str, Any]:
    """The retail spec without its exchange procedure (and the policy scope naming it)."""
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    spec["procedures"] = [p for p in spec["procedures"] if p["id"] != REMOVED]
    for policy in spec.get("policies", []):
        if REMOVED in policy.get("applies_to", []):
            policy["applies_to"] = [p for p in policy["applies_to"] if p != REMOVED]
            if not policy["applies_to"]:
                del policy["applies_to"]
    return spec


async def _converse(
    client: DeputyClient, agent_id: str, customer: SimulatedCustomer, max_turns: int
) -> dict[str, Any]:
    """One production conversation: the simulated customer against the deployed agent."""
    conversation = client.conversations.create(agent_id, channel="chat")
    transcript: list[TranscriptMessage] = []
    for entry in client.conversations.iter_transcript(conversation.id):
        if entry.kind == "agent_message":
            transcript.append(TranscriptMessage(role="agent", turn=0, text=entry.text))
    stop = None
    for turn in range(1, max_turns + 1):
        said = await customer.next(transcript)
        if said.stop is not None:
            stop = said.stop
            break
        transcript.append(TranscriptMessage(role="customer", turn=turn, text=said.text))
        result = client.conversations.post_message(conversation.id, said.text)
        reply = result.reply.text if result.reply is not None else ""
        transcript.append(TranscriptMessage(role="agent", turn=turn, text=reply))
        if result.conversation.status != "active":
            break
    closed = client.conversations.get(conversation.id)
    if closed.status == "active":
        closed = client.conversations.close(conversation.id)
    return {
        "id": conversation.id,
        "turns": sum(1 for m in transcript if m.role == "customer"),
        "customer_stop": stop,
        "outcome": closed.outcome,
        "version": closed.agent_version,
    }


async def production(
    client: DeputyClient, agent_id: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    settings = load_settings()
    local = LocalModels(
        settings.model_cache_dir,
        model_path=settings.local_model_path,
        threads=settings.local_threads,
    )
    model = ModelRegistry(provider_settings(settings), local=local).resolve(args.model)
    ids = (*EXCHANGE_TASKS, *OTHER_TASKS)[: args.conversations]
    suite = tau2_suite(select_tasks(RETAIL, None, ids), name="production")
    results = []
    for index, scenario in enumerate(suite.scenarios):
        customer = SimulatedCustomer(model, scenario.customer, seed=index)
        started = time.monotonic()
        done = await _converse(client, agent_id, customer, args.max_turns)
        done.update(task=scenario.id, seconds=round(time.monotonic() - started, 1))
        print(f"production conversation {index + 1}/{len(suite.scenarios)}: {done}", flush=True)
        results.append(done)
    return results


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    settings = {
        "DEPUTY_IMPROVEMENT_INTERVAL_HOURS": "0",
        "DEPUTY_DEFAULT_MODEL": args.agent_model,
    }
    timings: dict[str, float] = {}
    retail_app = create_retail_app(RetailStore(), AuthConfig(mode="none"))
    with (
        deputy_serve(work, settings) as served,
        serve_app(retail_app) as retail_url,
        DeputyClient(served.url, served.key) as client,
    ):
        client.tool_sources.create(
            "retail", "openapi", document=retail_app.openapi(), base_url=retail_url
        )
        agent = client.agents.create("retail-support")
        version = client.agents.versions.create(agent.id, v1_spec(), note="v1 (no exchanges)")
        client.deployments.deploy(agent.id, version.number)
        started = time.monotonic()
        conversations = asyncio.run(production(client, agent.id, args))
        timings["production_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        improvement = client.improvement.start(
            agent.id,
            model=args.model,
            trials=1,
            suite_scenarios=args.suite_scenarios,
            world={"retail": {"target": "simulation", "backend": "retail"}},
        )
        finished = client.improvement.wait(
            improvement.id,
            timeout=IMPROVE_TIMEOUT,
            on_progress=lambda r: print(f"improvement: {r.progress}", flush=True),
        )
        timings["improvement_seconds"] = round(time.monotonic() - started, 1)
        proposals = [client.proposals.get(p).model_dump(mode="json") for p in finished.proposal_ids]
        return {
            "conversations": conversations,
            "improvement_run": finished.model_dump(mode="json"),
            "proposals": proposals,
            "timings": timings,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--suite-scenarios", type=int, default=3)
    parser.add_argument("--agent-model", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--quick", action="store_true", help="2 conversations, 1 scenario")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.suite_scenarios = 2, 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deputy-improve-") as tmp:
        result = run(args, Path(tmp))
    result.update(
        benchmark="improve",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "platform": host.platform()},
        settings=vars(args),
        seconds=round(time.monotonic() - started, 1),
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
