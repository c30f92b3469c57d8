"""Synthetic probes as a platform capability: define a scripted scenario that runs on a schedule
against an agent's production deployment, run it now, read its runs.

Scopes: `agents:write` to create, change, delete and run a probe; `agents:read` to read them. A
probe is part of what an agent is expected to do (a scenario, like a sandbox run's) and it
talks to the agent as a customer: the builders who write scenarios define it, every reader of
the agent sees its results. The alerts it raises are managed with `alerts:write`.

A scenario is accepted only when a production conversation can be checked against it: a
scripted customer (a `script`), no end state of a tool world (`reference_actions`, a `DB`
reward), natural-language assertions only when the judge model can run here, and no expected
call of a tool that the versions answering on the probe's channel mark irreversible unless
`allow_irreversible` is set. Runs are in `deputy.services.probe_runner`."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deputy.domain import probes as p
from deputy.domain.errors import Conflict, DeputyError, NotFound, ValidationFailed
from deputy.domain.ids import new_id
from deputy.domain.lifecycle import ALL_CHANNELS
from deputy.domain.resources import Page
from deputy.domain.scenarios import Scenario
from deputy.domain.spec import spec_from_data
from deputy.domain.tenancy import Principal
from deputy.llm.registry import RemoteModelsBlocked
from deputy.sandbox.evaluate import judge_assertions
from deputy.services.access import require, tenant
from deputy.services.alerts import resolve_alert
from deputy.services.leased_jobs import run_db
from deputy.services.models import resolve_model
from deputy.services.pagination import paginate
from deputy.services.platform import Platform
from deputy.services.probe_alerts import alert_key
from deputy.services.probe_runner import run_probe
from deputy.services.probe_store import (
    ProbeJob,
    ProbeOptions,
    claim_probe,
    options_of,
    probe_resource,
    probe_row,
    run_resource,
    scenario_of,
    stored_scenario,
)
from deputy.store import tables as t
from deputy.store.tables import utcnow


def scenario_problems(scenario: Scenario) -> list[str]:
    """Why a production conversation cannot be checked against `scenario` (empty: it can)."""
    problems = []
    script = scenario.script
    if not script:
        problems.append(
            "a probe needs a scripted customer: give the scenario a `script` (the customer's "
            "messages); probes never simulate a customer"
        )
    if len(script) > p.MAX_SCRIPT_MESSAGES:
        problems.append(f"a probe's script has at most {p.MAX_SCRIPT_MESSAGES} messages")
    if len(script) > scenario.max_turns:
        problems.append(f"the script has more messages than max_turns ({scenario.max_turns})")
    if any(not message.strip() for message in script):
        problems.append("a scripted message is empty")
    if any(len(message) > p.MAX_MESSAGE_CHARS for message in script):
        problems.append(f"a scripted message is longer than {p.MAX_MESSAGE_CHARS} characters")
    assertions = scenario.assertions
    if assertions.reference_actions or "DB" in assertions.reward_basis:
        problems.append(
            "`reference_actions` and a DB reward compare a simulated tool world's end state: "
            "a probe runs against the real tools and cannot; use expected_tool_calls"
        )
    return problems


def _answering_versions(session: Session, agent: t.Agent, channel: str) -> list[int]:
    """The versions a new conversation on `channel` may get: the deployment's live and canary
    versions, or the latest when the agent was never deployed."""
    rows = {
        row.channel: row
        for row in session.scalars(select(t.Deployment).where(t.Deployment.agent_id == agent.id))
    }
    row = rows.get(channel) or rows.get(ALL_CHANNELS)
    if row is not None:
        return [v for v in (row.live_version, row.canary_version) if v is not None]
    return [agent.latest_version] if not rows and agent.latest_version > 0 else []


def irreversible_expectations(
    session: Session, agent: t.Agent, channel: str, scenario: Scenario
) -> list[str]:
    """The expected calls of tools that a version answering on `channel` marks irreversible."""
    expected = {call.tool for call in scenario.assertions.expected_tool_calls}
    found: set[str] = set()
    for number in _answering_versions(session, agent, channel):
        version = session.scalar(
            select(t.AgentVersion).where(
                t.AgentVersion.agent_id == agent.id, t.AgentVersion.number == number
            )
        )
        if version is not None:
            spec = spec_from_data(version.spec)
            found |= {tool.name for tool in spec.tools if tool.effect == "irreversible"}
    return sorted(expected & found)


def _check_interval(platform: Platform, seconds: int) -> None:
    least = platform.settings.probe_min_interval_seconds
    if seconds < least:
        raise ValidationFailed(
            f"a probe runs at most every {least} s: interval_seconds must be at least {least}",
            details={"interval_seconds": seconds, "minimum": least},
        )


def _check_scenario(scenario: Scenario) -> None:
    if problems := scenario_problems(scenario):
        raise ValidationFailed(
            "the scenario cannot be run as a probe: " + "; ".join(problems),
            details={"problems": problems},
        )


def _check_agent(
    session: Session, agent_id: str, channel: str, scenario: Scenario, options: ProbeOptions
) -> t.Agent:
    agent = session.get(t.Agent, agent_id)
    if agent is None:
        raise NotFound("agent", agent_id)
    risky = irreversible_expectations(session, agent, channel, scenario)
    if risky and not options.allow_irreversible:
        raise ValidationFailed(
            f"the scenario expects calls of irreversible tools ({', '.join(risky)}): a probe's "
            "calls are real; set allow_irreversible to run it anyway",
            details={"irreversible_tools": risky},
        )
    return agent


def _check_judge(
    platform: Platform, workspace_id: str, agent: t.Agent, scenario: Scenario, options: ProbeOptions
) -> None:
    """Natural-language assertions need a judge model this platform can run."""
    if not judge_assertions(scenario):
        return
    name = options.judge_model or agent.model
    try:
        resolve_model(platform, workspace_id, name)
    except (DeputyError, RemoteModelsBlocked) as exc:
        raise ValidationFailed(
            "the scenario's natural-language assertions (judge, must_not) need a judge model "
            f"this platform can run, and {name or 'the default model'} cannot: {exc}. "
            "Give judge_model, or leave those assertions out",
            details={"judge_model": name},
        ) from None


def _validated(
    platform: Platform,
    principal: Principal,
    agent_id: str,
    channel: str,
    scenario: Scenario,
    options: ProbeOptions,
    interval_seconds: int,
) -> None:
    _check_scenario(scenario)
    _check_interval(platform, interval_seconds)
    with tenant(platform, principal, "agents:write") as session:
        agent = _check_agent(session, agent_id, channel, scenario, options)
    _check_judge(platform, principal.workspace_id, agent, scenario, options)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a probe named {name!r} exists", details={"name": name})


def create_probe(platform: Platform, principal: Principal, body: p.ProbeCreate) -> p.Probe:
    """Store a probe; an enabled one is due at once."""
    require(principal, "agents:write")
    options = ProbeOptions(
        allow_irreversible=body.allow_irreversible,
        judge_model=body.judge_model,
        turn_timeout_seconds=body.turn_timeout_seconds,
        max_turn_latency_ms=body.max_turn_latency_ms,
    )
    _validated(
        platform,
        principal,
        body.agent_id,
        body.channel,
        body.scenario,
        options,
        body.interval_seconds,
    )
    try:
        with tenant(platform, principal, "agents:write") as session:
            if session.scalar(select(t.Probe.id).where(t.Probe.name == body.name)):
                raise _name_taken(body.name)
            now = utcnow()
            row = t.Probe(
                id=new_id("prb"),
                workspace_id=principal.workspace_id,
                agent_id=body.agent_id,
                name=body.name,
                channel=body.channel,
                scenario=stored_scenario(body.scenario, options),
                interval_seconds=body.interval_seconds,
                enabled=body.enabled,
                next_run_at=now,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return probe_resource(row)
    except IntegrityError as exc:
        raise _name_taken(body.name) from exc


def list_probes(
    platform: Platform,
    principal: Principal,
    *,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[p.Probe]:
    query = select(t.Probe)
    if agent_id is not None:
        query = query.where(t.Probe.agent_id == agent_id)
    with tenant(platform, principal, "agents:read") as session:
        return paginate(
            session, query, t.Probe.id, limit=limit, cursor=cursor, to_resource=probe_resource
        )


def get_probe(platform: Platform, principal: Principal, probe_id: str) -> p.Probe:
    with tenant(platform, principal, "agents:read") as session:
        return probe_resource(probe_row(session, probe_id))


def _changed_options(current: ProbeOptions, body: p.ProbeUpdate) -> ProbeOptions:
    given = body.model_fields_set
    values: dict[str, Any] = current.as_json()
    for name in ("allow_irreversible", "turn_timeout_seconds"):
        if getattr(body, name) is not None:
            values[name] = getattr(body, name)
    for name in ("judge_model", "max_turn_latency_ms"):  # null: back to none
        if name in given:
            values[name] = getattr(body, name)
    return ProbeOptions(**values)


def update_probe(
    platform: Platform, principal: Principal, probe_id: str, body: p.ProbeUpdate
) -> p.Probe:
    """Change what is given; the whole probe is checked again. Enabling a probe makes it due
    at once; a shorter interval brings its next run forward."""
    with tenant(platform, principal, "agents:write") as session:
        row = probe_row(session, probe_id)
        scenario = body.scenario or scenario_of(row)
        options = _changed_options(options_of(row), body)
        channel = body.channel or row.channel
        interval = body.interval_seconds or row.interval_seconds
        agent_id, was_enabled = row.agent_id, row.enabled
    _validated(platform, principal, agent_id, channel, scenario, options, interval)
    try:
        with tenant(platform, principal, "agents:write") as session:
            row = probe_row(session, probe_id)
            if body.name is not None and body.name != row.name:
                if session.scalar(select(t.Probe.id).where(t.Probe.name == body.name)):
                    raise _name_taken(body.name)
                row.name = body.name
            now = utcnow()
            row.channel, row.scenario = channel, stored_scenario(scenario, options)
            if interval != row.interval_seconds:
                row.interval_seconds = interval
                row.next_run_at = min(row.next_run_at, now + timedelta(seconds=interval))
            if body.enabled is not None:
                row.enabled = body.enabled
                if body.enabled and not was_enabled:
                    row.next_run_at = now
            session.flush()
            return probe_resource(row)
    except IntegrityError as exc:
        raise _name_taken(body.name or "") from exc


def delete_probe(platform: Platform, principal: Principal, probe_id: str) -> None:
    """Remove a probe with its runs; its firing alert is resolved (nothing watches it now)."""
    with tenant(platform, principal, "agents:write") as session:
        row = probe_row(session, probe_id)
        resolve_alert(session, alert_key(row.id), by=principal.key_id)
        session.delete(row)


def _claim(platform: Platform, principal: Principal, probe_id: str, owner: str) -> ProbeJob:
    with tenant(platform, principal, "agents:write") as session:
        job = claim_probe(session, probe_id, owner)
    if job is None:
        raise Conflict(
            f"probe {probe_id} is running now: wait for its run to finish",
            details={"probe_id": probe_id},
        )
    return job


async def run_now(platform: Platform, principal: Principal, probe_id: str) -> p.ProbeRun:
    """Run the probe now (enabled or not) and return the run; its schedule starts again from
    here."""
    require(principal, "agents:write")
    owner = f"{os.getpid()}:{uuid.uuid4().hex}"
    job = await run_db(platform.db, _claim, platform, principal, probe_id, owner)
    run = await run_probe(platform, job)
    if run is None:
        raise NotFound("probe", probe_id)
    return run


def list_runs(
    platform: Platform,
    principal: Principal,
    probe_id: str,
    *,
    status: p.ProbeStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[p.ProbeRun]:
    """The probe's runs, newest first."""
    query = select(t.ProbeRun).where(t.ProbeRun.probe_id == probe_id)
    if status is not None:
        query = query.where(t.ProbeRun.status == status)
    with tenant(platform, principal, "agents:read") as session:
        probe_row(session, probe_id)
        return paginate(
            session, query, t.ProbeRun.id, limit=limit, cursor=cursor, to_resource=run_resource
        )
