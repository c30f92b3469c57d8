"""The improvement loop, for `DeputyClient` (`client.improvement`) and `AsyncDeputyClient` (the
same, awaited).

run = client.improvement.start(agent.id, trials=2)
run = client.improvement.wait(run.id, on_progress=lambda r: print(r.progress))
for candidate in run.report.candidates if run.report else ():
    print(candidate.status, candidate.reason, candidate.proposal_id)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict

from typing_extensions import Unpack

from deputy.domain import resources as r
from deputy.domain.improvement import ImprovementRun
from deputy.domain.sandbox import FINISHED
from deputy.sdk import _improvement_calls as calls
from deputy.sdk._calls import Call
from deputy.sdk._http import AsyncHTTP, SyncHTTP
from deputy.sdk._sandbox_calls import World
from deputy.sdk.errors import DeputyTimeoutError

POLL_SECONDS = 1.0
OnProgress = Callable[[ImprovementRun], None]


class StartOptions(TypedDict, total=False):
    """What a run may be given besides the agent (see `ImprovementRunCreate`)."""

    since: datetime
    until: datetime
    max_conversations: int
    max_candidates: int
    model: str
    trials: int
    suite_scenarios: int
    world: World
    idempotency_key: str


def _create(agent_id: str, options: StartOptions) -> Call[ImprovementRun]:
    return calls.create_run(
        agent_id,
        since=options.get("since"),
        until=options.get("until"),
        max_conversations=options.get("max_conversations"),
        max_candidates=options.get("max_candidates"),
        model=options.get("model"),
        trials=options.get("trials"),
        suite_scenarios=options.get("suite_scenarios"),
        world=options.get("world"),
        idempotency_key=options.get("idempotency_key"),
    )


def _moved(before: ImprovementRun | None, now: ImprovementRun) -> bool:
    return before is None or (before.status, before.progress) != (now.status, now.progress)


def _timed_out(run_id: str, timeout: float) -> DeputyTimeoutError:
    return DeputyTimeoutError(
        f"improvement run {run_id} did not finish within {timeout:g} s; it goes on: wait again"
    )


class ImprovementAPI:
    """Improve an agent from its production conversations: evaluations, failure clusters,
    regressions, and candidate changes proven in the sandbox and filed as proposals."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def start(self, agent_id: str, **options: Unpack[StartOptions]) -> ImprovementRun:
        """Start a run (it goes on in the background: `wait` for it)."""
        return self._http.run(_create(agent_id, options))

    def get(self, run_id: str) -> ImprovementRun:
        """The run, with its whole report once it has succeeded."""
        return self._http.run(calls.get_run(run_id))

    def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[ImprovementRun]:
        """The workspace's runs (of one agent), newest first."""
        return self._http.run(calls.list_runs(agent_id, limit, cursor))

    def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> ImprovementRun:
        """Poll the run until it has succeeded, failed or been cancelled (returned either way),
        calling `on_progress` whenever its status or progress moved. `DeputyTimeoutError`
        after `timeout` seconds (None: no limit); the run goes on."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: ImprovementRun | None = None
        while True:
            run = self.get(run_id)
            if on_progress is not None and _moved(seen, run):
                on_progress(run)
            seen = run
            if run.status in FINISHED:
                return run
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(run_id, timeout)
            time.sleep(poll if left is None else min(poll, left))

    def cancel(self, run_id: str, *, idempotency_key: str | None = None) -> ImprovementRun:
        """Stop a queued or running run."""
        return self._http.run(calls.cancel_run(run_id, idempotency_key))


class AsyncImprovementAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def start(self, agent_id: str, **options: Unpack[StartOptions]) -> ImprovementRun:
        return await self._http.run(_create(agent_id, options))

    async def get(self, run_id: str) -> ImprovementRun:
        return await self._http.run(calls.get_run(run_id))

    async def list(
        self, *, agent_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[ImprovementRun]:
        return await self._http.run(calls.list_runs(agent_id, limit, cursor))

    async def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_progress: OnProgress | None = None,
    ) -> ImprovementRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: ImprovementRun | None = None
        while True:
            run = await self.get(run_id)
            if on_progress is not None and _moved(seen, run):
                on_progress(run)
            seen = run
            if run.status in FINISHED:
                return run
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                assert timeout is not None
                raise _timed_out(run_id, timeout)
            await asyncio.sleep(poll if left is None else min(poll, left))

    async def cancel(self, run_id: str, *, idempotency_key: str | None = None) -> ImprovementRun:
        return await self._http.run(calls.cancel_run(run_id, idempotency_key))
