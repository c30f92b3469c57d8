"""An agent's SLIs from the database: good and total events per trailing window, counted by
grouped SQL (one query for the turns, one for the probe runs, each grouping the events by the
narrowest window that holds them), for the SLO evaluator (every minute, every deployed agent)
and the SLO and status endpoints. `benchmarks/slo.py` measures them on 200,000 turns.

Only production counts: the agent's conversations that a deployment served
(`Conversation.deployment_id` set), probe conversations included (they are production traffic
marked with `metadata.probe_id`), and the agent's probe runs. The objectives are the `slos` of
the version live on `all` channels (else of the agent's most recently changed deployment).

- **availability** (objective `slos.availability`): a turn that ran and finished is good when
  the agent answered: it `completed` and neither its reply records a model error nor it was
  handed to a human because the model was out; it is bad when it `failed`, or its model failed
  (the runtime then completes the turn with an apology, or hands it over on a model outage).
  A probe run is good when the agent answered (`passed` or `failed`), bad on `error`. Turns
  that did not run (a human had the conversation) do not count. Time: when the turn finished,
  when the run started.
- **latency** (objective 0.95, because a p95 target means 95 % of answers come within it): an
  answered turn is good when the time from its creation (the customer's message acknowledged)
  to its finish is at most `slos.latency_p95_ms`.
- **accuracy** (objective `slos.accuracy`: evaluated resolution quality): a probe run is good
  when it `passed`, bad when it `failed` (`error` counts against availability instead); a
  conversation the improvement loop evaluated (the evaluations in its succeeded runs' reports,
  by the model judge or, without one, by the signals) is good when it was resolved and did not
  fail, bad when it failed (an evaluation that is neither, e.g. of a conversation still open,
  does not count). Time: the conversation's start; a conversation evaluated by several runs
  counts once, with the latest run's verdict."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause

from deputy.domain import lifecycle as lc
from deputy.domain.alerts import SliName
from deputy.domain.improvement import ConversationEvaluation, ImprovementReport
from deputy.domain.spec.operations import SLOs
from deputy.observability.slo import LATENCY_OBJECTIVE, Counts, Window
from deputy.services.conversation_store import agent_spec
from deputy.store import tables as t

SLO_WINDOW = "slo"
"""The name of the SLO's own window (`window_days`) among the counted windows."""
FINISHED_TURNS = ("completed", "failed")
CACHED_RUNS = 512
ID_CHUNK = 500

SLI_DESCRIPTIONS: dict[SliName, str] = {
    "availability": "Good: a turn the agent answered, a probe run the agent answered. Bad: a "
    "turn that failed or whose model failed (an error reply, a handoff on a model outage), a "
    "probe run with status error.",
    "latency": "Good: an answered turn whose reply was finished within latency_p95_ms of the "
    "customer's message; objective 0.95, as a p95 target means.",
    "accuracy": "Good: a passed probe run, a conversation the improvement loop evaluated as "
    "resolved. Bad: a failed probe run, a conversation it evaluated as failed.",
}


@dataclass(frozen=True)
class Objectives:
    """What an agent's SLOs ask of it: the live version's `slos`."""

    workspace_id: str
    agent_id: str
    live_version: int
    slos: SLOs

    def objective(self, sli: SliName) -> float:
        if sli == "latency":
            return LATENCY_OBJECTIVE
        return self.slos.availability if sli == "availability" else self.slos.accuracy


def objectives(session: Session, workspace_id: str, agent_id: str) -> Objectives | None:
    """The agent's SLOs from its live version; None when it is not deployed."""
    rows = session.execute(
        select(t.Deployment.channel, t.Deployment.live_version, t.Deployment.updated_at).where(
            t.Deployment.workspace_id == workspace_id, t.Deployment.agent_id == agent_id
        )
    ).all()
    if not rows:
        return None
    everywhere = [version for channel, version, _ in rows if channel == lc.ALL_CHANNELS]
    version = everywhere[0] if everywhere else max(rows, key=lambda row: row[2])[1]
    return Objectives(workspace_id, agent_id, version, agent_spec(session, agent_id, version).slos)


def cutoffs(now: datetime, windows: Sequence[Window], slo_days: int | None) -> dict[str, datetime]:
    """Each window's start (and the SLO window's, named `SLO_WINDOW`, when `slo_days`)."""
    starts = {window.name: now - timedelta(seconds=window.seconds) for window in windows}
    if slo_days is not None:
        starts[SLO_WINDOW] = now - timedelta(days=slo_days)
    return starts


# The counting queries name the tables' Core columns: the tenant session adds its
# `workspace_id = ?` criteria to ORM entities only, and SQLite (without statistics) would
# drive these queries by those workspace indexes (every turn of the workspace, every entry
# for each turn) instead of the agent's conversations and each turn's own entries. Each query
# filters on the workspace itself.
TURNS = t.Turn.__table__.c
CONVERSATIONS = t.Conversation.__table__.c
ENTRIES = t.ConversationEntry.__table__.c
RUNS = t.ProbeRun.__table__.c
PROBES = t.Probe.__table__.c


def _window_sums(
    session: Session,
    source: FromClause,
    when: Any,
    flags: Sequence[ColumnElement[bool]],
    where: Iterable[ColumnElement[bool]],
    starts: dict[str, datetime],
) -> dict[str, tuple[int, ...]]:
    """Per window: how many events have each flag, then how many events there are; one
    grouped query. The windows all end now, so they nest: each event is counted in the
    narrowest window that holds it (its flags evaluated once), and a window's counts are those
    of the narrower ones plus its own."""
    ordered = sorted(starts.items(), key=lambda item: item[1], reverse=True)
    narrowest = case(*((when >= start, n) for n, (_, start) in enumerate(ordered)))
    events = (
        select(
            narrowest.label("window"),
            *(case((flag, 1), else_=0).label(f"flag{i}") for i, flag in enumerate(flags)),
        )
        .select_from(source)
        .where(when >= ordered[-1][1], *where)
        .subquery()
    )
    sums = [func.sum(events.c[f"flag{i}"]) for i in range(len(flags))]
    rows = session.execute(
        select(events.c.window, *sums, func.count()).group_by(events.c.window)
    ).all()
    width = len(flags) + 1
    per_window = {int(row[0]): [int(value) for value in row[1:]] for row in rows}
    counts: dict[str, tuple[int, ...]] = {}
    running = [0] * width
    for n, (name, _) in enumerate(ordered):
        own = per_window.get(n, [0] * width)
        running = [total + more for total, more in zip(running, own, strict=True)]
        counts[name] = tuple(running)
    return counts


def _merge(*parts: dict[str, Counts]) -> dict[str, Counts]:
    merged: dict[str, Counts] = {}
    for part in parts:
        for name, counts in part.items():
            merged[name] = merged.get(name, Counts()) + counts
    return merged


def _model_failed() -> ColumnElement[bool]:
    """The turn's reply records a model error, or the turn was handed over on a model outage."""
    return exists().where(
        ENTRIES.turn_id == TURNS.id,
        or_(
            and_(ENTRIES.kind == "agent_message", ENTRIES.data["error"].as_string().is_not(None)),
            and_(ENTRIES.kind == "handoff", ENTRIES.data["trigger"].as_string() == "model_outage"),
        ),
    )


def _elapsed_ms(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86_400_000.0
    return func.extract("epoch", end - start) * 1000.0


def turn_counts(
    session: Session, scope: Objectives, starts: dict[str, datetime]
) -> tuple[dict[str, Counts], dict[str, Counts]]:
    """Availability and latency over the production turns that ran and finished (a turn has
    `finished_at` once `completed` or `failed`)."""
    source = t.Turn.__table__.join(
        t.Conversation.__table__, CONVERSATIONS.id == TURNS.conversation_id
    )
    answered = and_(TURNS.status == "completed", ~_model_failed())
    elapsed = _elapsed_ms(session, TURNS.created_at, TURNS.finished_at)
    fast = and_(answered, elapsed <= float(scope.slos.latency_p95_ms))
    where = [
        CONVERSATIONS.workspace_id == scope.workspace_id,
        CONVERSATIONS.agent_id == scope.agent_id,
        CONVERSATIONS.deployment_id.is_not(None),
        TURNS.started_at.is_not(None),
    ]
    sums = _window_sums(session, source, TURNS.finished_at, [answered, fast], where, starts)
    availability = {name: Counts(ok, total) for name, (ok, _, total) in sums.items()}
    latency = {name: Counts(quick, ok) for name, (ok, quick, _) in sums.items()}
    return availability, latency


def probe_counts(
    session: Session, scope: Objectives, starts: dict[str, datetime]
) -> tuple[dict[str, Counts], dict[str, Counts]]:
    """Availability (answered: `passed` or `failed`, of all) and accuracy (`passed`, of the
    answered) over the agent's probe runs."""
    source = t.ProbeRun.__table__.join(t.Probe.__table__, PROBES.id == RUNS.probe_id)
    where = [
        PROBES.workspace_id == scope.workspace_id,
        PROBES.agent_id == scope.agent_id,
        RUNS.status.in_(("passed", "failed", "error")),
    ]
    flags = [RUNS.status != "error", RUNS.status == "passed"]
    sums = _window_sums(session, source, RUNS.started_at, flags, where, starts)
    availability = {name: Counts(ok, total) for name, (ok, _, total) in sums.items()}
    accuracy = {name: Counts(passed, ok) for name, (ok, passed, _) in sums.items()}
    return availability, accuracy


def evaluation_counts(
    session: Session, scope: Objectives, starts: dict[str, datetime]
) -> dict[str, Counts]:
    """Accuracy over the improvement loop's evaluations."""
    counts = {name: Counts() for name in starts}
    for at, good in evaluation_events(session, scope, min(starts.values())):
        for name, start in starts.items():
            if at >= start:
                counts[name] = counts[name] + Counts(int(good), 1)
    return counts


def sli_counts(
    session: Session, scope: Objectives, starts: dict[str, datetime]
) -> dict[SliName, dict[str, Counts]]:
    """Good and total events of each SLI per window (`starts`: each window's start)."""
    turn_availability, latency = turn_counts(session, scope, starts)
    probe_availability, probe_accuracy = probe_counts(session, scope, starts)
    return {
        "availability": _merge(turn_availability, probe_availability),
        "latency": latency,
        "accuracy": _merge(probe_accuracy, evaluation_counts(session, scope, starts)),
    }


# ---- the improvement loop's evaluations ---------------------------------------------------

Verdict = tuple[str, datetime, bool]
"""(conversation id, when it started, good)."""
_VERDICTS: dict[str, tuple[Verdict, ...]] = {}


def verdict(evaluation: ConversationEvaluation) -> bool | None:
    """Good (resolved, did not fail), bad (failed), or None (neither: not counted)."""
    if evaluation.failed:
        return False
    return True if evaluation.resolved else None


def _run_verdicts(session: Session, run_id: str) -> tuple[Verdict, ...]:
    """A succeeded run's verdicts (its report never changes: kept, a bounded cache)."""
    cached = _VERDICTS.get(run_id)
    if cached is not None:
        return cached
    report = session.scalar(select(t.ImprovementRun.report).where(t.ImprovementRun.id == run_id))
    evaluations = ImprovementReport.model_validate(report).evaluations if report else ()
    judged = {e.conversation_id: v for e in evaluations if (v := verdict(e)) is not None}
    ids = list(judged)
    started: dict[str, datetime] = {}
    for i in range(0, len(ids), ID_CHUNK):
        rows = session.execute(
            select(t.Conversation.id, t.Conversation.created_at).where(
                t.Conversation.id.in_(ids[i : i + ID_CHUNK]),
                t.Conversation.deployment_id.is_not(None),
            )
        )
        started.update({conversation_id: at for conversation_id, at in rows})
    found = tuple((cid, started[cid], good) for cid, good in judged.items() if cid in started)
    if len(_VERDICTS) >= CACHED_RUNS:
        del _VERDICTS[next(iter(_VERDICTS))]
    _VERDICTS[run_id] = found
    return found


def evaluation_events(
    session: Session, scope: Objectives, since: datetime
) -> list[tuple[datetime, bool]]:
    """(when the conversation started, good) for each production conversation started since
    `since` that the agent's succeeded improvement runs evaluated, the latest verdict each."""
    runs = session.scalars(
        select(t.ImprovementRun.id)
        .where(
            t.ImprovementRun.workspace_id == scope.workspace_id,
            t.ImprovementRun.agent_id == scope.agent_id,
            t.ImprovementRun.status == "succeeded",
            t.ImprovementRun.window_end >= since,
        )
        .order_by(t.ImprovementRun.window_end, t.ImprovementRun.id)
    ).all()
    latest: dict[str, tuple[datetime, bool]] = {}
    for run_id in runs:
        for conversation_id, at, good in _run_verdicts(session, run_id):
            latest[conversation_id] = (at, good)
    return [(at, good) for at, good in latest.values() if at >= since]
