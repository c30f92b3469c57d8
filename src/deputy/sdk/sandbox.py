"""Sandbox runs, for `DeputyClient` (`client.sandbox`) and `AsyncDeputyClient` (the same,
awaited).

run = client.sandbox.run(agent.id, suite=suite, trials=2,
                         world={"retail": {"target": "simulation", "backend": "retail"}},
                         on_progress=lambda r: print(r.progress))
print(run.scorecard.pass_hat[1].value if run.scorecard else run.error)
print(client.sandbox.compare(baseline.id, run.id).verdict)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypedDict

from typing_extensions import Unpack

from deputy.domain import resources as r
from deputy.domain import sandbox as s
from deputy.domain.sandbox_results import Comparison, Scorecard
from deputy.domain.scenarios import ScenarioSuite
from deputy.sdk import _sandbox_calls as calls
from deputy.sdk._calls import Call
from deputy.sdk._http import AsyncHTTP, SyncHTTP
from deputy.sdk.errors import DeputyTimeoutError

POLL_SECONDS = 1.0
OnProgress = Callable[[s.SandboxRun], None]


class RunOptions(TypedDict, total=False):
    """What a run may be given besides the agent (see `SandboxRunCreate`): exactly one of
    `suite` and `build_id`."""

    suite: ScenarioSuite | Mapping[str, Any]
    build_id: str
    version: int
    scenario_ids: Sequence[str]
    trials: int
    seed: int
    model: str
    customer_model: str
    judge_model: str
    concurrency: int
    world: calls.World
    idempotency_key: str


def _create(agent_id: str, options: RunOptions) -> Call[s.SandboxRun]:
    return calls.create_run(
        agent_id,
        suite=options.get("suite"),
        build_id=options.get("build_id"),
        version=options.get("version"),
        scenario_ids=options.get("scenario_ids", ()),
        trials=options.get("trials", 1),
        seed=options.get("seed", 0),
        model=options.get("model"),
        customer_model=options.get("customer_model"),
        judge_model=options.get("judge_model"),
        concurrency=options.get("concurrency", 4),
        world=options.get("world"),
        idempotency_key=options.get("idempotency_key"),
    )


def _moved(before: s.SandboxRun | None, now: s.SandboxRun) -> bool:
    return before is None or (before.status, before.progress) != (now.status, now.progress)


def _timed_out(run_id: str, timeout: float) -> DeputyTimeoutError:
    return DeputyTimeoutError(
        f"sandbox run {run_id} did not finish within {timeout:g} s; it goes on: wait again"
    )


class SandboxAPI:
    """Prove an agent version against a scenario suite with simulated customers, k trials per
    scenario, in a tool world of sandbox targets; scorecards with pass^k; A/B comparisons."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(self, agent_id: str, **options: Unpack[RunOptions]) -> s.SandboxRun:
        """Start a run (it goes on in the background: `wait` for it)."""
        return self._http.run(_create(agent_id, options))

    def run(
        self,
        agent_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
        **options: Unpack[RunOptions],
    ) -> s.SandboxRun:
        """Start a run and wait until it has finished (succeeded: with its scorecard)."""
        started = self.create(agent_id, **options)
        return self.wait(started.id, timeout=timeout, poll=poll, on_progress=on_progress)

    def get(self, run_id: str) -> s.SandboxRun:
        return self._http.run(calls.get_run(run_id))

    def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[s.SandboxRun]:
        """The workspace's runs (of one agent), newest first."""
        return self._http.run(calls.list_runs(agent_id, limit, cursor))

    def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> s.SandboxRun:
        """Poll the run until it has succeeded, failed or been cancelled (returned either way),
        calling `on_progress` whenever its status or progress moved. `DeputyTimeoutError`
        after `timeout` seconds (None: no limit); the run goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: s.SandboxRun | None = None
        while True:
            run = self.get(run_id)
            if on_progress is not None and _moved(seen, run):
                on_progress(run)
            seen = run
            if run.status in s.FINISHED:
                return run
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(run_id, timeout)
            time.sleep(poll if left is None else min(poll, left))

    def trials(
        self,
        run_id: str,
        *,
        scenario_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[s.SandboxTrial]:
        """Finished trials in suite order, then trial number (also while the run goes on)."""
        return self._http.run(calls.list_trials(run_id, scenario_id, limit, cursor))

    def iter_trials(
        self, run_id: str, *, scenario_id: str | None = None, page_size: int | None = None
    ) -> Iterator[s.SandboxTrial]:
        cursor: str | None = None
        while True:
            page = self.trials(run_id, scenario_id=scenario_id, limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def scorecard(self, run_id: str) -> Scorecard:
        """The scorecard of a succeeded run (`ConflictError` before)."""
        return self._http.run(calls.scorecard(run_id))

    def compare(self, baseline: str, candidate: str) -> Comparison:
        """Candidate against baseline, two succeeded runs of the same suite."""
        return self._http.run(calls.compare(baseline, candidate))

    def cancel(self, run_id: str, *, idempotency_key: str | None = None) -> s.SandboxRun:
        """Stop a queued or running run; its finished trials are kept."""
        return self._http.run(calls.cancel_run(run_id, idempotency_key))


class AsyncSandboxAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(self, agent_id: str, **options: Unpack[RunOptions]) -> s.SandboxRun:
        return await self._http.run(_create(agent_id, options))

    async def run(
        self,
        agent_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
        **options: Unpack[RunOptions],
    ) -> s.SandboxRun:
        started = await self.create(agent_id, **options)
        return await self.wait(started.id, timeout=timeout, poll=poll, on_progress=on_progress)

    async def get(self, run_id: str) -> s.SandboxRun:
        return await self._http.run(calls.get_run(run_id))

    async def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[s.SandboxRun]:
        return await self._http.run(calls.list_runs(agent_id, limit, cursor))

    async def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> s.SandboxRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: s.SandboxRun | None = None
        while True:
            run = await self.get(run_id)
            if on_progress is not None and _moved(seen, run):
                on_progress(run)
            seen = run
            if run.status in s.FINISHED:
                return run
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(run_id, timeout)
            await asyncio.sleep(poll if left is None else min(poll, left))

    async def trials(
        self,
        run_id: str,
        *,
        scenario_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[s.SandboxTrial]:
        return await self._http.run(calls.list_trials(run_id, scenario_id, limit, cursor))

    async def iter_trials(
        self, run_id: str, *, scenario_id: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[s.SandboxTrial]:
        cursor: str | None = None
        while True:
            page = await self.trials(
                run_id, scenario_id=scenario_id, limit=page_size, cursor=cursor
            )
            for trial in page.data:
                yield trial
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def scorecard(self, run_id: str) -> Scorecard:
        return await self._http.run(calls.scorecard(run_id))

    async def compare(self, baseline: str, candidate: str) -> Comparison:
        return await self._http.run(calls.compare(baseline, candidate))

    async def cancel(self, run_id: str, *, idempotency_key: str | None = None) -> s.SandboxRun:
        return await self._http.run(calls.cancel_run(run_id, idempotency_key))
