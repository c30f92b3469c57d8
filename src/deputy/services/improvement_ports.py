"""What the improvement loop (`deputy.improve`) reads and does on the platform: the agent's
production conversations of the window, the live version and its scenario suite, the sandbox
A/B of a candidate (`SandboxValidator`) and the proposal filed for one (`ProposalFiler`).

**Production only**: the conversations are `conversations` rows (sandbox trials run in memory
and never write there), those the agent started in the run's window, at most
`max_conversations`, newest first; one in which the customer said nothing is left out (there is
nothing to judge). Their transcript is made from the stored entries by
`deputy.improve.conversations.transcript_from_entries` (messages, tool calls with how they went,
and as events: handoffs, guardrails that stopped a turn, procedure events, outcomes, failed
turns). The customer's explicit feedback (`POST /v1/conversations/{id}/feedback`: a 1-5 rating
and/or a comment) comes as `feedback` lines ("rating 2/5: …"); phrases in the customer's
messages count as signals too.
The previous period is the evaluations of the agent's last succeeded run.

**The live version** is the one live on channel `all`, else the latest. **The suite** is the
scenarios `deputy.builder.scenarios.scenario_suite` writes for the live spec, after those of the
build the agent came from (the newest of its versions whose note names a succeeded build, as
`create_agent_from_build` writes it) when there is one, less the scenarios of procedures the
live spec no longer has; a scenario id in both keeps the build's.

The loop runs as the platform itself (`system:improvement`, a non-human principal): a candidate
is stored as a new, undeployed version and proven by two sandbox runs (live and candidate, the
same suite and seed); a proposal is filed only through `services.proposals.file_proposal`, then
offered to autonomy (`services.autopilot.autopilot_canary`, which only ever starts a canary for
a gate-passed, non-widening change under `auto_with_rollback`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.builder.scenarios import scenario_suite
from deputy.builder.sources import ToolDescription
from deputy.domain.errors import Conflict, NotFound
from deputy.domain.improvement import (
    ConversationEvaluation,
    ImprovementReport,
    ImprovementRunCreate,
)
from deputy.domain.lifecycle import SYSTEM_IMPROVEMENT
from deputy.domain.sandbox_results import TranscriptMessage
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import AgentSpec, spec_from_data
from deputy.domain.tenancy import Principal, Scope
from deputy.improve.conversations import ProductionConversation, transcript_from_entries
from deputy.llm.types import Model
from deputy.sandbox.models import AttributedModel
from deputy.services.access import system_principal
from deputy.services.build_runs import source_tools
from deputy.services.deployment_routing import live_version
from deputy.services.leased_jobs import run_db
from deputy.services.models import resolve_model
from deputy.services.platform import Platform
from deputy.store import tables as t

log = logging.getLogger("deputy.improvement")

_FROM_BUILD = re.compile(r"\bbuild (bld_[0-9A-Za-z]+)")


@dataclass(frozen=True)
class RunInputs:
    """An improvement run's inputs, as claimed for one start (`attempts`: this one included)."""

    workspace_id: str
    run_id: str
    attempts: int
    agent_id: str
    request: ImprovementRunCreate
    window_start: datetime
    window_end: datetime
    model: str

    def principal(self) -> Principal:
        """The loop acting in its workspace: it stores versions and runs the sandbox."""
        scopes: frozenset[Scope] = frozenset({"agents:read", "agents:write"})
        return system_principal(self.workspace_id, SYSTEM_IMPROVEMENT, scopes)


@dataclass(frozen=True)
class LiveAgent:
    version: int
    spec: AgentSpec


@dataclass(frozen=True)
class Collected:
    """What one run works on."""

    live: LiveAgent
    suite: ScenarioSuite
    conversations: tuple[ProductionConversation, ...]
    previous: tuple[ConversationEvaluation, ...]
    tool_source_ids: tuple[str, ...]


# ---- the live version and its suite -------------------------------------------------------


def live_agent(session: Session, agent_id: str) -> LiveAgent:
    """The version live on `all` channels, else the latest (`NotFound` for a missing agent,
    `Conflict` for one with no version)."""
    agent = session.scalar(select(t.Agent).where(t.Agent.id == agent_id))
    if agent is None:
        raise NotFound("agent", agent_id)
    number = live_version(session, agent_id) or agent.latest_version
    if not number:
        raise Conflict(
            f"agent {agent_id} has no version to improve", details={"agent_id": agent_id}
        )
    spec = session.scalars(
        select(t.AgentVersion.spec).where(
            t.AgentVersion.agent_id == agent_id, t.AgentVersion.number == number
        )
    ).one()
    return LiveAgent(number, spec_from_data(spec))


def _build_suite(session: Session, agent_id: str) -> ScenarioSuite | None:
    """The scenarios of the build the agent came from (see the module), if any."""
    notes = session.scalars(
        select(t.AgentVersion.note)
        .where(t.AgentVersion.agent_id == agent_id)
        .order_by(t.AgentVersion.number.desc())
    )
    for note in notes:
        if match := _FROM_BUILD.search(note):
            build = session.scalar(select(t.Build).where(t.Build.id == match[1]))
            if build is not None and build.status == "succeeded" and build.scenarios:
                return ScenarioSuite.model_validate(build.scenarios)
    return None


def agent_suite(session: Session, agent_id: str, spec: AgentSpec) -> ScenarioSuite:
    """The live spec's scenarios after its build's (see the module)."""
    fresh = scenario_suite(spec)
    built = _build_suite(session, agent_id)
    if built is None:
        return fresh
    procedures = {procedure.id for procedure in spec.procedures}
    kept = [sc for sc in built.scenarios if sc.procedure is None or sc.procedure in procedures]
    ids = {scenario.id for scenario in kept}
    merged = (*kept, *(scenario for scenario in fresh.scenarios if scenario.id not in ids))
    return fresh.model_copy(update={"scenarios": merged})


def _tool_source_ids(session: Session, spec: AgentSpec) -> tuple[str, ...]:
    """The workspace's OpenAPI and MCP tool sources the spec's tools are bound to."""
    names = {tool.binding.source for tool in spec.tools if tool.binding.kind in ("openapi", "mcp")}
    query = select(t.ToolSource.id).where(
        t.ToolSource.name.in_(names), t.ToolSource.kind.in_(("openapi", "mcp"))
    )
    return tuple(session.scalars(query.order_by(t.ToolSource.id)))


# ---- production conversations -------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    transcript: tuple[TranscriptMessage, ...]
    feedback: tuple[str, ...]


def feedback_line(entry: t.ConversationEntry) -> str:
    """A `feedback` entry as the loop reads it: "rating 2/5: the comment"."""
    rating = entry.data.get("rating")
    said = entry.text.strip()
    if rating is None:
        return said
    return f"rating {rating}/5" + (f": {said}" if said else "")


def _read(session: Session, conversation_ids: Sequence[str]) -> dict[str, _Read]:
    entries: dict[str, list[t.ConversationEntry]] = {cid: [] for cid in conversation_ids}
    query = (
        select(t.ConversationEntry)
        .where(t.ConversationEntry.conversation_id.in_(conversation_ids))
        .order_by(t.ConversationEntry.conversation_id, t.ConversationEntry.seq)
    )
    for entry in session.scalars(query):
        entries[entry.conversation_id].append(entry)
    return {
        cid: _Read(
            transcript_from_entries(rows),
            tuple(feedback_line(e) for e in rows if e.kind == "feedback"),
        )
        for cid, rows in entries.items()
    }


def production_conversations(
    session: Session, inputs: RunInputs
) -> tuple[ProductionConversation, ...]:
    """The agent's conversations of the window, newest first (see the module)."""
    rows = session.scalars(
        select(t.Conversation)
        .where(
            t.Conversation.agent_id == inputs.agent_id,
            t.Conversation.created_at >= inputs.window_start,
            t.Conversation.created_at < inputs.window_end,
        )
        .order_by(t.Conversation.created_at.desc(), t.Conversation.id.desc())
        .limit(inputs.request.max_conversations)
    ).all()
    read = _read(session, [row.id for row in rows])
    return tuple(
        ProductionConversation(
            id=row.id,
            agent_version=row.agent_version,
            channel=row.channel,
            status=row.status,
            outcome=row.outcome,
            created_at=row.created_at,
            transcript=read[row.id].transcript,
            feedback=read[row.id].feedback,
        )
        for row in rows
        if any(line.role == "customer" for line in read[row.id].transcript)
    )


def previous_evaluations(session: Session, agent_id: str) -> tuple[ConversationEvaluation, ...]:
    """The evaluations of the agent's last succeeded run: the previous period."""
    report = session.scalar(
        select(t.ImprovementRun.report)
        .where(t.ImprovementRun.agent_id == agent_id, t.ImprovementRun.status == "succeeded")
        .order_by(t.ImprovementRun.window_end.desc(), t.ImprovementRun.id.desc())
        .limit(1)
    )
    return ImprovementReport.model_validate(report).evaluations if report else ()


def _collect(platform: Platform, inputs: RunInputs) -> Collected:
    with platform.db.tenant_session(inputs.workspace_id) as session:
        live = live_agent(session, inputs.agent_id)
        return Collected(
            live=live,
            suite=agent_suite(session, inputs.agent_id, live.spec),
            conversations=production_conversations(session, inputs),
            previous=previous_evaluations(session, inputs.agent_id),
            tool_source_ids=_tool_source_ids(session, live.spec),
        )


async def collect(platform: Platform, inputs: RunInputs) -> Collected:
    return await run_db(platform.db, _collect, platform, inputs)


async def change_tools(
    platform: Platform, inputs: RunInputs, collected: Collected
) -> list[ToolDescription]:
    """The tools of the live spec's tool sources, which a change may bind; none (logged) when
    a source cannot be read now: a change can still add procedures, policies and rules."""
    try:
        return await source_tools(platform, inputs.workspace_id, collected.tool_source_ids)
    except Exception:
        log.warning(
            "improvement run: the tool sources could not be read; changes get no new tools",
            extra={"improvement_run_id": inputs.run_id},
            exc_info=True,
        )
        return []


async def loop_model(platform: Platform, inputs: RunInputs) -> Model:
    """The run's model, its usage metered to the workspace, the agent and the run."""
    model = await anyio.to_thread.run_sync(
        resolve_model, platform, inputs.workspace_id, inputs.model
    )
    metadata = {
        "workspace_id": inputs.workspace_id,
        "agent_id": inputs.agent_id,
        "conversation_id": inputs.run_id,
    }
    return AttributedModel(model, metadata)


# ---- validation: the sandbox A/B ----------------------------------------------------------
