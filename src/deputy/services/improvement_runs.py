"""Running improvement runs in the background, durably, and starting them on a schedule.

A run is acknowledged once its row is committed `queued` (`deputy.services.improvement`, or the
schedule); it then runs as a leased job of the server process, as builds and sandbox runs do
(`deputy.services.leased_jobs`): the claim sets it `running` and counts an attempt, the lease
is renewed while it runs, and the end is written only while the lease is still held:
`succeeded` with the report and the proposals filed, or `failed` with a stable code. A
cancelled run loses its lease, so its process stops it (and the sandbox runs it waits for).

**A resumed run starts over**: the loop keeps no intermediate state, and starting again is
simple and honest (the conversations of the window are read again and judged again). What an
earlier attempt left behind is reused, not duplicated: a candidate identical to a stored version
is that version, and an open proposal the loop filed for it is that proposal; sandbox runs of an
interrupted validation were cancelled or are left to finish unread. After `RUN_ATTEMPTS`
starts without an end, the run fails with `improvement_interrupted`. Progress (the loop's stage,
done of total) is written at most every `PROGRESS_INTERVAL` seconds, and at once on a new stage.

**The schedule** (`keep_scheduling_improvements`): every `SCHEDULE_SECONDS`, each agent with a
deployment whose newest run (any status) was created more than `improvement_interval_hours`
ago, or that has none, gets a run with trigger `schedule`, unless one is open for it; an
interval of 0 turns the schedule off. A run's window defaults to the agent's last succeeded
run's end (else 7 days back) up to now; its model to the one the agent's conversations use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from deputy.domain.errors import Conflict, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.improvement import (
    ImprovementProgress,
    ImprovementReport,
    ImprovementRunCreate,
    ImprovementTrigger,
)
from deputy.domain.lifecycle import SYSTEM_IMPROVEMENT
from deputy.domain.sandbox import OPEN
from deputy.improve.loop import LoopInput, improve
from deputy.services.improvement_ports import (
    RunInputs,
    change_tools,
    collect,
    live_agent,
    loop_model,
)
from deputy.services.improvement_sinks import ProposalFiler, SandboxValidator
from deputy.services.leased_jobs import (
    JobErrors,
    JobKind,
    JobLimits,
    JobNames,
    LeasedJobs,
    LeasedRows,
    run_db,
)
from deputy.services.platform import Platform
from deputy.services.sandbox_worlds import check_world
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.improvement")

RUN_ATTEMPTS = 3
"""Runs an improvement run may start; one more claim fails it with `improvement_interrupted`."""
PROGRESS_INTERVAL = 0.5
"""Seconds between two progress writes within one stage (a new stage is written at once)."""
MAX_PARALLEL_RUNS = 1
"""Improvement runs one process works on at once: each starts sandbox runs of its own."""
SCHEDULE_SECONDS = 300.0
"""How often the schedule looks for agents that are due."""
DEFAULT_WINDOW = timedelta(days=7)
"""How far back a run looks when the agent has no earlier succeeded run."""


class ImprovementRunError(BaseModel):
    """Why a run failed: a stable code and a message."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


@dataclass(frozen=True)
class Finished:
    report: ImprovementReport
    proposal_ids: tuple[str, ...]


def _claimed(row: t.ImprovementRun) -> RunInputs:
    return RunInputs(
        workspace_id=row.workspace_id,
        run_id=row.id,
        attempts=row.attempts,
        agent_id=row.agent_id,
        request=ImprovementRunCreate.model_validate(row.request),
        window_start=row.window_start,
        window_end=row.window_end,
        model=row.model,
    )


def _first_start(now: datetime) -> dict[str, object]:
    """A claim keeps when the run first started."""
    return {"started_at": func.coalesce(t.ImprovementRun.started_at, now)}


def _result_values(finished: Finished) -> dict[str, object]:
    return {
        "report": finished.report.model_dump(mode="json"),
        "proposal_ids": list(finished.proposal_ids),
    }


RUN_ROWS = LeasedRows(t.ImprovementRun, OPEN, _claimed, _result_values, _first_start)
"""Improvement runs as leased jobs: open while `queued` or `running`."""


def _new_stage(written: ImprovementProgress, latest: ImprovementProgress) -> bool:
    return written.stage != latest.stage


async def _execute(
    platform: Platform, inputs: RunInputs, report: Callable[[ImprovementProgress], None]
) -> Finished:
    """One pass of the loop over the run's window (see `deputy.improve.loop.improve`)."""
    report(ImprovementProgress(stage="collect"))
    collected = await collect(platform, inputs)
    report(ImprovementProgress(stage="collect", done=1, total=1))
    model = await loop_model(platform, inputs)
    live = collected.live
    sink = ProposalFiler(platform, inputs, live.version)

    async def progress(stage: str, done: int, total: int) -> None:
        report(ImprovementProgress(stage=stage, done=done, total=total))

    result = await improve(
        LoopInput(
            spec=live.spec,
            live_version=live.version,
            suite=collected.suite,
            conversations=collected.conversations,
            previous=collected.previous,
            window_start=inputs.window_start,
            window_end=inputs.window_end,
            max_candidates=inputs.request.max_candidates,
            suite_scenarios=inputs.request.suite_scenarios,
            tools=await change_tools(platform, inputs, collected),
        ),
        model=model,
        validator=SandboxValidator(platform, inputs, live.version),
        sink=sink,
        progress=progress,
    )
    filed = [c.proposal_id for c in result.candidates if c.proposal_id is not None]
    return Finished(result, tuple(dict.fromkeys([*sink.filed, *filed])))


IMPROVEMENT_RUNS = LeasedJobs(
    JobKind(
        JobNames(log, "improvement run", id_field="improvement_run_id", count_field="runs"),
        RUN_ROWS,
        _execute,
        JobErrors(ImprovementRunError, subject="run", interrupted_code="improvement_interrupted"),
        JobLimits(RUN_ATTEMPTS, MAX_PARALLEL_RUNS, PROGRESS_INTERVAL, _new_stage),
    )
)
"""The improvement runs this process works on."""
start_run = IMPROVEMENT_RUNS.start
stop_local = IMPROVEMENT_RUNS.stop
stop_improvement_runs = IMPROVEMENT_RUNS.stop_all
resume_improvement_runs = IMPROVEMENT_RUNS.resume
keep_resuming_improvement_runs = IMPROVEMENT_RUNS.keep_resuming


# ---- new runs -----------------------------------------------------------------------------


def agent_model(platform: Platform, session: Session, agent: t.Agent) -> str:
    """The model the agent's conversations run on: its own, else its workspace's, else the
    platform default."""
    workspace_default = session.scalar(
        select(t.Workspace.default_model).where(t.Workspace.id == agent.workspace_id)
    )
    return platform.models.chain(agent.model or workspace_default)[0]


def _aware(moment: datetime) -> datetime:
    """A time given without a zone is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _window(
    session: Session, agent_id: str, body: ImprovementRunCreate, now: datetime
) -> tuple[datetime, datetime]:
    """`since` (default: the last succeeded run's end, else `DEFAULT_WINDOW` back) to `until`
    (default: now); `ValidationFailed` when it is empty."""
    end = _aware(body.until) if body.until else now
    start = _aware(body.since) if body.since else None
    if start is None:
        start = session.scalar(
            select(func.max(t.ImprovementRun.window_end)).where(
                t.ImprovementRun.agent_id == agent_id, t.ImprovementRun.status == "succeeded"
            )
        ) or (end - DEFAULT_WINDOW)
    if start >= end:
        raise ValidationFailed(
            "the window is empty: `since` must be before `until`",
            details={"since": start.isoformat(), "until": end.isoformat()},
        )
    return start, end


def open_run(session: Session, agent_id: str) -> str | None:
    return session.scalar(
        select(t.ImprovementRun.id).where(
            t.ImprovementRun.agent_id == agent_id, t.ImprovementRun.status.in_(OPEN)
        )
    )


def insert_run(
    platform: Platform,
    session: Session,
    body: ImprovementRunCreate,
    *,
    trigger: ImprovementTrigger,
    key_id: str,
    model: str,
) -> t.ImprovementRun:
    """Check the run's inputs (the agent and a version of it, no other open run for it, the
    window, the sandbox world) and store it `queued`, in the caller's tenant session."""
    agent = session.scalar(select(t.Agent).where(t.Agent.id == body.agent_id))
    if agent is None:
        raise NotFound("agent", body.agent_id)
    if (running := open_run(session, agent.id)) is not None:
        raise Conflict(
            f"improvement run {running} is still open for agent {agent.id}: wait for it or "
            "cancel it",
            details={"run_id": running, "agent_id": agent.id},
        )
    live = live_agent(session, agent.id)
    check_world(session, platform.settings, live.spec, body.world)
    now = utcnow()
    start, end = _window(session, agent.id, body, now)
    row = t.ImprovementRun(
        id=new_id("imp"),
        workspace_id=agent.workspace_id,
        agent_id=agent.id,
        trigger=trigger,
        status="queued",
        request=body.model_dump(mode="json"),
        model=model,
        window_start=start,
        window_end=end,
        progress=ImprovementProgress().model_dump(mode="json"),
        report=None,
        proposal_ids=[],
        error=None,
        attempts=0,
        created_by_key_id=key_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


# ---- the schedule -------------------------------------------------------------------------


def _due(platform: Platform, now: datetime) -> list[tuple[str, str]]:
    """(workspace, agent) of every deployed agent whose newest run is older than the
    interval (or that has none) and that has no open run."""
    cutoff = now - timedelta(hours=platform.settings.improvement_interval_hours)
    newest = (
        select(t.ImprovementRun.agent_id, func.max(t.ImprovementRun.created_at).label("last"))
        .group_by(t.ImprovementRun.agent_id)
        .subquery()
    )
    query = (
        select(t.Deployment.workspace_id, t.Deployment.agent_id)
        .distinct()
        .outerjoin(newest, newest.c.agent_id == t.Deployment.agent_id)
        .where(or_(newest.c.last.is_(None), newest.c.last < cutoff))
        .order_by(t.Deployment.agent_id)
    )
    with platform.db.session() as session:
        return [(str(workspace), str(agent)) for workspace, agent in session.execute(query)]


def _schedule(platform: Platform, workspace_id: str, agent_id: str) -> str | None:
    """A scheduled run for the agent; None when one is open (or it has no version)."""
    with platform.db.tenant_session(workspace_id) as session:
        agent = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
        if agent is None or open_run(session, agent_id) is not None:
            return None
        body = ImprovementRunCreate(agent_id=agent_id)
        try:
            row = insert_run(
                platform,
                session,
                body,
                trigger="schedule",
                key_id=SYSTEM_IMPROVEMENT,
                model=agent_model(platform, session, agent),
            )
        except (Conflict, ValidationFailed):
            log.info("improvement run not scheduled", extra={"agent_id": agent_id}, exc_info=True)
            return None
        return row.id


async def schedule_due(platform: Platform, now: datetime | None = None) -> list[str]:
    """Create and start a run for every agent that is due (see the module); their ids."""
    if platform.settings.improvement_interval_hours <= 0:
        return []
    started: list[str] = []
    for workspace_id, agent_id in await run_db(platform.db, _due, platform, now or utcnow()):
        run_id = await run_db(platform.db, _schedule, platform, workspace_id, agent_id)
        if run_id is not None:
            start_run(platform, workspace_id, run_id)
            started.append(run_id)
    if started:
        log.info("scheduled improvement runs", extra={"runs": len(started)})
    return started


async def keep_scheduling_improvements(platform: Platform) -> None:
    """Start the runs that are due every `SCHEDULE_SECONDS`, for as long as the process runs
    (errors are logged; the next round tries again)."""
    while True:
        try:
            await schedule_due(platform)
        except Exception:
            log.exception("could not schedule improvement runs")
        await asyncio.sleep(SCHEDULE_SECONDS)
