"""`deputy bench tau2`: tau2-bench tasks through Deputy's runtime and tool layer, in this
process (no server): the oracle check (`--oracle`) or an agent spec with a model against
simulated customers. Results per task as JSON (`--output`), a summary on stdout, a progress bar
on stderr."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from deputy.cli.output import EXIT_USAGE, err, out
from deputy.cli.progress import TrialBar
from deputy.config import Settings
from deputy.domain.errors import DeputyError
from deputy.domain.spec import load_spec
from deputy.llm.local import LocalModels
from deputy.llm.registry import ModelRegistry
from deputy.llm.types import Usage
from deputy.sandbox.bench import BenchReport, select_tasks, tau2_agent, tau2_oracle
from deputy.sandbox.models import ModelLimits
from deputy.sandbox.ports import WorldFactory
from deputy.sandbox.runner import RunModels, RunProgress
from deputy.sandbox.tau2 import tau2_suite
from deputy.sandbox.worlds import load_backend
from deputy.services.model_hub import provider_settings

bench_app = typer.Typer(help="Benchmarks run through Deputy's runtime.", no_args_is_help=True)

KNOWN_BACKENDS = {"retail": "examples.retail.sandbox:world_factory"}
"""Simulation backends for tau2 domains that ship with Deputy's examples (run from the
repository root, or with it on PYTHONPATH)."""


class _Bar(TrialBar):
    async def __call__(self, update: RunProgress) -> None:
        self.update(update.done, update.total, update.passed, update.errors)


def _backend(domain_dir: Path, backend: str | None) -> WorldFactory:
    ref = backend or KNOWN_BACKENDS.get(domain_dir.name)
    if ref is None:
        raise typer.BadParameter(
            f"no simulation backend is known for the domain {domain_dir.name!r}: "
            "give one with --backend module:factory",
            param_hint="--backend",
        )
    if os.getcwd() not in sys.path:  # like `python -m`: the backend may live in the project
        sys.path.insert(0, os.getcwd())
    db = domain_dir / "db.json"
    return load_backend(ref, str(db) if db.exists() else None)


def _registry(settings: Settings) -> ModelRegistry:
    local = LocalModels(
        settings.model_cache_dir,
        model_path=settings.local_model_path,
        threads=settings.local_threads,
    )
    return ModelRegistry(provider_settings(settings), local=local)


def _summary(report: BenchReport) -> None:
    console = out()
    card = report.scorecard
    perfect = sum(1 for t in report.tasks if t.reward == 1.0)
    console.print(
        f"tau2 {report.domain} ({report.mode}): {len(report.tasks)} tasks, "
        f"{perfect} with reward 1.0, mean reward {report.mean_reward:.3f}",
        markup=False,
    )
    for k, estimate in sorted(card.pass_hat.items()):
        console.print(
            f"  pass^{k} {estimate.value:.3f}  [{estimate.low:.3f}, {estimate.high:.3f}]",
            markup=False,
        )
    failed = [t for t in report.tasks if t.reward < 1.0]
    for task in failed[:20]:
        reason = "; ".join(task.failures)[:160]
        console.print(f"  task {task.id}: reward {task.reward:.2f}  {reason}", markup=False)
    if len(failed) > 20:
        console.print(f"  … and {len(failed) - 20} more below 1.0", markup=False)


@bench_app.command("tau2")
def tau2(
    domain_dir: Annotated[
        Path,
        typer.Option(
            "--domain-dir",
            exists=True,
            file_okay=False,
            help="A tau2 domain directory.",
        ),
    ],
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Perform each task's reference actions (DB only).")
    ] = False,
    skip_write: Annotated[
        bool,
        typer.Option("--oracle-skip-write", help="Oracle that skips each task's last write."),
    ] = False,
    agent: Annotated[
        Path | None, typer.Option("--agent", exists=True, dir_okay=False, help="Agent spec file.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="The agent's model.")] = None,
    customer_model: Annotated[
        str | None, typer.Option("--customer-model", help="Plays the customer (default: --model).")
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="Judges NL assertions (default: the customer's)."),
    ] = None,
    trials: Annotated[int, typer.Option("--trials", min=1, max=10)] = 1,
    split: Annotated[
        str | None, typer.Option("--split", help="A split of split_tasks.json.")
    ] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these task ids.")] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="module:factory of the domain's simulation.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=32)] = 4,
    output: Annotated[
        Path | None, typer.Option("--output", dir_okay=False, help="Write the JSON report here.")
    ] = None,
) -> None:
    """Run a tau2 domain's tasks through Deputy and score them with tau2's reward semantics."""
    bar = _Bar()
    try:
        world = _backend(domain_dir, backend)
        if oracle:
            with bar.progress:
                report = asyncio.run(
                    tau2_oracle(
                        domain_dir,
                        world,
                        split=split,
                        task_ids=task or (),
                        skip_write=skip_write,
                        concurrency=concurrency,
                        progress=bar,
                    )
                )
        else:
            report = _run_agent(
                domain_dir,
                world,
                agent,
                model,
                customer_model,
                judge_model,
                trials=trials,
                split=split,
                task_ids=task or (),
                seed=seed,
                concurrency=concurrency,
                bar=bar,
            )
    except (ValueError, DeputyError) as error:
        err().print(f"error: {error}", markup=False, style="red")
        raise typer.Exit(EXIT_USAGE) from None
    if output is not None:
        output.write_text(report.model_dump_json(indent=1) + "\n")
    _summary(report)


def _run_agent(
    domain_dir: Path,
    world: WorldFactory,
    agent: Path | None,
    model: str | None,
    customer_model: str | None,
    judge_model: str | None,
    *,
    trials: int,
    split: str | None,
    task_ids: Sequence[str],
    seed: int,
    concurrency: int,
    bar: _Bar,
) -> BenchReport:
    if agent is None or model is None:
        raise typer.BadParameter("give --agent and --model, or --oracle")
    spec = load_spec(agent.read_text())
    settings = Settings()
    registry = _registry(settings)
    customer_name = customer_model or model
    judge_name = judge_model or customer_name
    models = RunModels(
        agent=registry.get(model),
        customer=registry.get(customer_name),
        judge=registry.get(judge_name),
    )
    prices = registry.settings.prices

    def price(name: str, usage: Usage) -> float | None:
        provider = name.split(":", 1)[0]
        cost: Decimal | None = prices.cost(name, provider, usage)
        return float(cost) if cost is not None else None

    async def run() -> BenchReport:
        try:
            return await tau2_agent(
                domain_dir,
                world,
                spec,
                models,
                split=split,
                task_ids=task_ids,
                trials=trials,
                seed=seed,
                concurrency=concurrency,
                limits=ModelLimits(default=4, per_model={"local": 1}),
                price=price,
                progress=bar,
            )
        finally:
            await registry.aclose()

    with bar.progress:
        return asyncio.run(run())


@bench_app.command("tau2-suite")
def tau2_suite_file(
    domain_dir: Annotated[
        Path,
        typer.Option("--domain-dir", exists=True, file_okay=False, help="A tau2 domain directory."),
    ],
    output: Annotated[Path, typer.Option("--output", dir_okay=False, help="The suite (JSON).")],
    split: Annotated[str | None, typer.Option("--split", help="A split_tasks.json split.")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these task ids.")] = None,
) -> None:
    """Write a tau2 domain's tasks as a scenario suite, for `deputy sandbox run --suite`."""
    try:
        tasks = select_tasks(domain_dir, split, task or ())
        suite = tau2_suite(tasks, name=f"tau2 {domain_dir.name}")
    except ValueError as error:
        err().print(f"error: {error}", markup=False, style="red")
        raise typer.Exit(EXIT_USAGE) from None
    output.write_text(suite.model_dump_json(indent=1, exclude_defaults=True) + "\n")
    out().print(f"{len(suite.scenarios)} scenarios written to {output}", markup=False)
