"""The sandbox's baseline on the embedded local model, run the way a user runs it: a real
`deputy serve` process, the retail agent filed through the API, tau2 retail train tasks as the
suite (`deputy bench tau2-suite`), and `deputy sandbox run` (the CLI, with its progress bar)
running every scenario k times against the retail simulation; the scorecard is printed by the
CLI, returned as JSON (`--json`) and read back from the API.

Also, in this process: the oracle over the same tasks (scripted reference actions through the
runtime and tool layer; every DB reward must be 1.0), timed against the bare replay of the same
reference actions on the backend (the baseline), so the harness's overhead is a ratio.

    PYTHONPATH=src:. python benchmarks/sandbox.py [--tasks 20] [--trials 2] [--quick]
        [--model local:qwen2.5-coder-0.5b] [--customer-model local:qwen2.5-coder-1.5b]

Results: benchmarks/results/sandbox.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchmarks.served import deputy_serve
from examples.retail.sandbox import world_factory

from deputy.sandbox.bench import select_tasks, tau2_oracle
from deputy.sandbox.replay import expected_state
from deputy.sandbox.tau2 import tau2_suite

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEPUTY_SHARED_DIR", REPO.parent / "shared")) / "data"
RETAIL = SHARED / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
SPEC = REPO / "examples" / "specs" / "retail_support.yaml"
RESULTS = Path(__file__).parent / "results" / "sandbox.json"


def _cli(env: dict[str, str], *args: str, capture: bool = True) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "deputy.cli.main", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=None if not capture else subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deputy {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def local_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The suite on the local model through a real server, the CLI and the API."""
    with deputy_serve(work) as served:
        env, url, key = served.env, served.url, served.key
        agent = json.loads(_cli(env, "agents", "create", "retail-support", "--json"))
        _cli(env, "agents", "versions", "create", agent["id"], str(SPEC))
        suite_file = work / "suite.json"
        task_args = [a for t in args.task_ids for a in ("--task", t)]
        _cli(
            env,
            "bench",
            "tau2-suite",
            "--domain-dir",
            str(RETAIL),
            "--output",
            str(suite_file),
            *task_args,
        )
        started = time.monotonic()
        printed = _cli(
            env,
            "sandbox",
            "run",
            "--agent",
            "retail-support",
            "--suite",
            str(suite_file),
            "--trials",
            str(args.trials),
            "--world",
            "retail=simulation:retail",
            "--model",
            args.model,
            "--customer-model",
            args.customer_model,
            "--judge-model",
            args.judge_model,
            "--concurrency",
            "2",
            "--json",
            capture=False,  # the progress bar goes to this terminal
        )
        seconds = time.monotonic() - started
        run = json.loads(printed)
        headers = {"Authorization": f"Bearer {key}"}
        from_api = httpx.get(
            f"{url}/v1/sandbox/runs/{run['id']}/scorecard", headers=headers, timeout=30
        ).json()
        text = _cli(env, "sandbox", "show", run["id"])
        return {
            "run_id": run["id"],
            "status": run["status"],
            "seconds": round(seconds, 1),
            "models": run["models"],
            "scorecard": run["scorecard"],
            "scorecard_from_api_matches_cli_json": from_api == run["scorecard"],
            "cli_report": text,
        }


async def oracle_run(args: argparse.Namespace) -> dict[str, Any]:
    """Harness overhead: the oracle through the runtime vs. the bare replay (baseline)."""
    world = world_factory(str(RETAIL / "db.json"))
    tasks = select_tasks(RETAIL, None, args.task_ids)
    suite = tau2_suite(tasks, name="retail")
    started = time.monotonic()
    for scenario in suite.scenarios:
        await expected_state(world, scenario.assertions.reference_actions)
    replay_seconds = time.monotonic() - started
    report = await tau2_oracle(RETAIL, world, task_ids=args.task_ids, concurrency=1)
    return {
        "tasks": len(report.tasks),
        "mean_db_reward": report.mean_reward,
        "tasks_below_1": [t.id for t in report.tasks if t.reward < 1.0],
        "replay_seconds": round(replay_seconds, 2),
        "oracle_seconds": round(report.seconds, 2),
        "overhead_ratio": round(report.seconds / replay_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--model", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--customer-model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--judge-model", default=None)
    parser.add_argument("--quick", action="store_true", help="2 tasks, 1 trial")
    parser.add_argument("--skip-local", action="store_true", help="only the oracle part")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.trials = 2, 1
    args.judge_model = args.judge_model or args.customer_model
    all_ids = [t.id for t in select_tasks(RETAIL, None, ())]
    args.task_ids = all_ids[: args.tasks]
    results: dict[str, Any] = {
        "benchmark": "sandbox",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "oracle": asyncio.run(oracle_run(args)),
    }
    print(json.dumps(results["oracle"], indent=1), file=sys.stderr)
    if not args.skip_local:
        with tempfile.TemporaryDirectory() as work:
            results["local"] = {
                "suite": f"tau2 retail train, first {args.tasks} tasks",
                "task_ids": args.task_ids,
                "trials": args.trials,
                **local_run(args, Path(work)),
            }
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
