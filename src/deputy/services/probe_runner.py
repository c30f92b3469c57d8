"""Running one probe against production, as the platform itself (`system:probe`).

A run starts a real conversation through the service the API uses
(`services.conversations.create_conversation`) on the probe's channel, so deployment routing
picks the version that answers (the canary for its share), with `metadata.probe_id` set (probe
conversations are never billed: `deputy.billing.meter`) and the customer `probe:<probe id>`. It
posts each scripted message through `post_message` and waits for the reply, at most the probe's
`turn_timeout_seconds`; the script stops early when the agent ends the conversation or hands it
to a person. It then closes the conversation (its outcome computed from its evidence), judges
the natural-language assertions when there are any, and evaluates the rest
(`deputy.services.probe_evidence`).

Status: `error` when the agent did not answer (no deployment on the probe's channel, the
conversation could not start, a turn failed or timed out, the agent's model failed), else
`failed` when an assertion that counts failed, else `passed`. The run row and the probe's alert
(`deputy.services.probe_alerts`) are written in one transaction, which also releases the
probe's lease and sets its next run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import probes as p
from deputy.domain import resources as r
from deputy.domain.errors import DeputyError
from deputy.domain.ids import new_id
from deputy.domain.lifecycle import ALL_CHANNELS
from deputy.domain.probes import SYSTEM_PROBE
from deputy.domain.sandbox_results import CheckResult
from deputy.domain.tenancy import Scope
from deputy.llm.registry import RemoteModelsBlocked
from deputy.sandbox.evaluate import judge_assertions
from deputy.sandbox.judge import ModelJudge
from deputy.services import conversations
from deputy.services.access import system_principal
from deputy.services.leased_jobs import run_db
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.services.probe_alerts import update_alert
from deputy.services.probe_evidence import Observed, observe, verdict
from deputy.services.probe_store import (
    LEASE_SECONDS,
    ProbeJob,
    release,
    release_lease,
    renew_lease,
    run_resource,
)
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.probes")

PROBE_SCOPES: frozenset[Scope] = frozenset({"conversations:read", "conversations:write"})


@dataclass
class Talk:
    """How the scripted conversation went: `error` says why the agent did not answer."""

    conversation_id: str | None = None
    turns: list[p.ProbeTurn] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class RunResult:
    status: p.ProbeStatus
    reason: str
    talk: Talk
    observed: Observed | None = None
    checks: tuple[p.ProbeCheck, ...] = ()

    @property
    def latency_ms(self) -> int | None:
        timed = [turn.latency_ms for turn in self.talk.turns if turn.latency_ms is not None]
        return sum(timed) if timed else None


def deployment_problem(session: Session, agent_id: str, channel: str) -> str | None:
    """Why the agent has no deployment a probe on `channel` could test (None: it has one)."""
    deployed = set(
        session.scalars(select(t.Deployment.channel).where(t.Deployment.agent_id == agent_id))
    )
    if not deployed:
        return "the agent has no deployment: a probe tests a production deployment"
    if channel not in deployed and ALL_CHANNELS not in deployed:
        on = ", ".join(sorted(deployed))
        return f"the agent is not deployed on channel {channel!r} (deployed on: {on})"
    return None


def _deployment_problem(db: Database, job: ProbeJob) -> str | None:
    with db.tenant_session(job.workspace_id) as session:
        return deployment_problem(session, job.agent_id, job.channel)


def _model_failure(result: r.TurnResult) -> str | None:
    """Why the reply is not the agent's answer but the runtime's stand-in for a failed model."""
    for entry in result.entries:
        if entry.kind == "handoff" and entry.data.get("trigger") == "model_outage":
            return str(entry.data.get("reason") or "the model is unavailable")
    if result.reply is not None and result.reply.data.get("error"):
        return f"the agent's model failed ({result.reply.data['error']})"
    return None


def _unsent(number: int, message: str) -> p.ProbeTurn:
    return p.ProbeTurn(number=number, message=message, status="not_sent")


async def converse(platform: Platform, job: ProbeJob) -> Talk:
    """Start the probe's conversation and send its script, one reply at a time."""
    talk = Talk()
    principal = system_principal(job.workspace_id, SYSTEM_PROBE, PROBE_SCOPES)
    body = r.ConversationCreate(
        agent_id=job.agent_id,
        channel=job.channel,
        customer=r.CustomerRef(
            channel=job.channel, external_id=f"probe:{job.probe_id}", display_name=job.name
        ),
        metadata={p.PROBE_METADATA_KEY: job.probe_id, "probe_name": job.name},
    )
    try:
        started = await platform.db.run(
            conversations.create_conversation, platform, principal, body
        )
    except DeputyError as exc:
        talk.error = f"the conversation could not start: {exc.message}"
        return talk
    talk.conversation_id = started.id
    active = True
    timeout = job.options.turn_timeout_seconds
    for number, message in enumerate(job.scenario.script, start=1):
        if not active or talk.error is not None:
            talk.turns.append(_unsent(number, message))
            continue
        clock = time.monotonic()
        sent = conversations.post_message(
            platform, principal, started.id, r.MessageCreate(text=message)
        )
        try:
            result = await asyncio.wait_for(sent, timeout)
        except TimeoutError:
            talk.error = f"turn {number}: no reply within {timeout:g} s"
            talk.turns.append(
                p.ProbeTurn(number=number, message=message, status="timed_out", error=talk.error)
            )
            continue
        except DeputyError as exc:
            talk.error = f"turn {number} failed: {exc.message}"
            talk.turns.append(
                p.ProbeTurn(number=number, message=message, status="failed", error=exc.message)
            )
            continue
        latency_ms = round((time.monotonic() - clock) * 1000)
        reply = result.reply.text if result.reply is not None else None
        if (failure := _model_failure(result)) is not None:
            talk.error = f"turn {number}: {failure}"
        talk.turns.append(
            p.ProbeTurn(
                number=number,
                message=message,
                status="answered" if failure is None else "model_failed",
                latency_ms=latency_ms,
                reply=reply,
                error=failure,
            )
        )
        active = result.conversation.status == "active"
    return talk


def _close_and_observe(platform: Platform, workspace_id: str, conversation_id: str) -> Observed:
    """Close the conversation (unless the agent did) with the outcome its evidence shows, then
    read what it shows."""
    principal = system_principal(workspace_id, SYSTEM_PROBE, PROBE_SCOPES)
    with contextlib.suppress(DeputyError):  # closed meanwhile (by the agent's last turn)
        conversations.close_conversation(
            platform, principal, conversation_id, r.ConversationClose(reason="probe run ended")
        )
    with platform.db.tenant_session(workspace_id) as session:
        return observe(session, conversation_id)


def _judge_model_name(db: Database, job: ProbeJob) -> str | None:
    if job.options.judge_model:
        return job.options.judge_model
    with db.tenant_session(job.workspace_id) as session:
        return session.scalar(select(t.Agent.model).where(t.Agent.id == job.agent_id))


async def judge(
    platform: Platform, job: ProbeJob, observed: Observed, conversation_id: str
) -> tuple[CheckResult, ...]:
    """The judge's answers to the scenario's natural-language assertions; a judge that cannot
    run fails them (an unverified assertion is never a pass)."""
    assertions = judge_assertions(job.scenario)
    if not assertions:
        return ()
    try:
        name = await platform.db.run(_judge_model_name, platform.db, job)
        model = await anyio.to_thread.run_sync(resolve_model, platform, job.workspace_id, name)
    except (DeputyError, RemoteModelsBlocked) as exc:
        return tuple(
            CheckResult(kind=kind, passed=False, detail=f"the judge could not run: {exc}")
            for kind, _text in assertions
        )
    metadata = {
        "workspace_id": job.workspace_id,
        "agent_id": job.agent_id,
        "conversation_id": conversation_id,
        "probe_id": job.probe_id,
    }
    judgement = await ModelJudge(model, metadata=metadata).judge(
        assertions, observed.evidence.transcript
    )
    return judgement.checks


async def evaluate_probe(platform: Platform, job: ProbeJob) -> RunResult:
    """One run, without recording it."""
    problem = await platform.db.run(_deployment_problem, platform.db, job)
    if problem is not None:
        return RunResult(status="error", reason=problem, talk=Talk())
    talk = await converse(platform, job)
    if talk.conversation_id is None:
        return RunResult(status="error", reason=talk.error or "", talk=talk)
    observed = await platform.db.run(
        _close_and_observe, platform, job.workspace_id, talk.conversation_id
    )
    if talk.error is not None:
        return RunResult(status="error", reason=talk.error, talk=talk, observed=observed)
    judged = await judge(platform, job, observed, talk.conversation_id)
    found = verdict(
        job.scenario,
        replace(observed.evidence, judged=judged),
        talk.turns,
        job.options.max_turn_latency_ms,
    )
    return RunResult(
        status="passed" if found.passed else "failed",
        reason=found.reason,
        talk=talk,
        observed=observed,
        checks=found.checks,
    )


def record_run(
    db: Database, job: ProbeJob, started_at: datetime, result: RunResult
) -> p.ProbeRun | None:
    """The run row, the alert change and the probe's next run, in one transaction; None when
    the probe was deleted during the run."""
    observed = result.observed
    with db.tenant_session(job.workspace_id) as session:
        probe = session.get(t.Probe, job.probe_id)
        if probe is None:
            return None
        finished = utcnow()
        run = t.ProbeRun(
            id=new_id("prr"),
            workspace_id=job.workspace_id,
            probe_id=job.probe_id,
            agent_id=job.agent_id,
            agent_version=observed.agent_version if observed else None,
            conversation_id=result.talk.conversation_id,
            status=result.status,
            latency_ms=result.latency_ms,
            details={
                "reason": result.reason,
                "channel": job.channel,
                "deployment_arm": observed.deployment_arm if observed else None,
                "outcome": observed.outcome if observed else None,
                "turns": [turn.model_dump(mode="json") for turn in result.talk.turns],
                "checks": [check.model_dump(mode="json") for check in result.checks],
            },
            started_at=started_at,
            finished_at=finished,
        )
        session.add(run)
        session.flush()
        alert = update_alert(session, job, run)
        run.details = {**run.details, "alert": alert}
        next_run = finished + timedelta(seconds=probe.interval_seconds)
        release_lease(session, job.probe_id, job.owner, next_run_at=next_run)
        session.flush()
        return run_resource(run)


async def _keep_lease(db: Database, job: ProbeJob) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            held = await db.run(renew_lease, db, job.workspace_id, job.probe_id, job.owner)
        except Exception:
            log.warning("could not renew a probe's lease", exc_info=True)
            continue
        if not held:
            log.warning("a probe's lease was lost during its run", extra={"probe": job.probe_id})
            return


async def run_probe(platform: Platform, job: ProbeJob) -> p.ProbeRun | None:
    """Run a claimed probe (its lease renewed meanwhile) and record the run; the lease is
    released in any case. None when the probe was deleted during the run."""
    renewing = asyncio.create_task(_keep_lease(platform.db, job))
    recorded = False
    try:
        started_at = utcnow()
        result = await evaluate_probe(platform, job)
        run = await run_db(platform.db, record_run, platform.db, job, started_at, result)
        recorded = True
        return run
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        if not recorded:
            await run_db(
                platform.db, release, platform.db, job.workspace_id, job.probe_id, job.owner
            )
