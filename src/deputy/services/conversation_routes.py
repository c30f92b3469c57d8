"""Routes between agents: a turn whose agent passed the conversation on (`TurnResult.transfer`)
is answered, in the same turn, by the target agent of the same workspace.

The target starts from a fresh `AgentState` (only the turn counter carries over), its own spec,
tools, knowledge and memory, every message of the transcript but only its own tool calls: each
agent's context and data stay bounded. Its entries carry its agent id and live under their own
key prefix in the turn (`route<n>/`), and every switch is an `agent_switch` entry recorded
before the target runs: a turn run again after a crash replays the same switches and reuses
what each agent recorded. A turn follows at most `MAX_TRANSFERS` routes; a target that is not an
agent of the workspace with a version is refused (an `agent_switch` entry with `failed`) and the
current agent keeps the conversation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from deputy.runtime.journal import Entry, NamespacedJournal, RecordedEntry, TurnJournal
from deputy.runtime.ports import EventSink
from deputy.runtime.state import AgentState
from deputy.runtime.turn import TurnResult
from deputy.services.conversation_events import ConversationEvents
from deputy.services.conversation_journal import SqlTurnJournal
from deputy.services.conversation_turn_records import PreparedTurn, agent_turn, with_memory
from deputy.services.deployment_routing import live_version
from deputy.store import tables as t
from deputy.store.db import Database

MAX_TRANSFERS = 2
"""Routes one turn may follow (a chain beyond is refused)."""
SWITCH_KEY = "agent_switch"

RunAgent = Callable[[PreparedTurn, TurnJournal], Awaitable[TurnResult]]
"""Runs one agent's part of the turn on its journal (the caller's runtime, sink...)."""


@dataclass(frozen=True)
class _Target:
    agent_id: str
    version: int


def find_target(db: Database, workspace_id: str, agent: str, current: str) -> _Target | str:
    """The route target `agent` (an id or a name) among the workspace's agents, or why not.
    It answers with its version live on `all` channels, or its latest when never deployed."""
    with db.tenant_session(workspace_id) as session:
        row = session.scalar(select(t.Agent).where(or_(t.Agent.id == agent, t.Agent.name == agent)))
        if row is None:
            return f"no agent {agent!r} in this workspace"
        if row.id == current:
            return "the agent is already answering"
        if not row.latest_version:
            return f"agent {agent!r} has no version yet"
        return _Target(row.id, live_version(session, row.id) or row.latest_version)


def routed_turn(
    db: Database, workspace_id: str, prepared: PreparedTurn, target: _Target, started: AgentState
) -> PreparedTurn:
    """What the target agent starts the turn from: a fresh state, its own context."""
    with db.tenant_session(workspace_id) as session:
        conversation = session.get_one(t.Conversation, prepared.ref.conversation_id)
        turn = session.get_one(t.Turn, prepared.turn_id)
        routed = agent_turn(
            session,
            conversation,
            turn,
            prepared.inbound,
            agent_id=target.agent_id,
            agent_version=target.version,
            state=AgentState(turn=started.turn),
        )
    return with_memory(db, routed)


class RouteFollower:
    """Follows the routes a turn takes (see the module doc)."""

    def __init__(
        self,
        db: Database,
        events: ConversationEvents,
        prepared: PreparedTurn,
        sink: EventSink | None,
    ) -> None:
        self._db = db
        self._events = events
        self._first = prepared
        self._sink = sink

    def journal(self, running: PreparedTurn, hop: int) -> TurnJournal:
        """The journal of the agent answering after `hop` switches (0: the current agent)."""
        journal = SqlTurnJournal(
            self._db,
            self._events,
            workspace_id=running.ref.workspace_id,
            conversation_id=running.ref.conversation_id,
            turn_id=running.turn_id,
            agent_id=running.ref.agent_id,
            recorded=self._first.recorded,
        )
        return NamespacedJournal(journal, f"route{hop}/") if hop else journal

    async def follow(
        self, result: TurnResult, run_agent: RunAgent
    ) -> tuple[PreparedTurn, TurnResult]:
        """The agent that answers the turn last and its result (the first one's when no route
        was taken or the route was refused)."""
        running, hop = self._first, 0
        while result.transfer is not None and result.handoff is None:
            journal = self.journal(running, hop)
            switch = journal.recorded(SWITCH_KEY) or await self._switch(
                journal, running, result, hop
            )
            if "failed" in switch.data:
                break
            hop += 1
            target = _Target(str(switch.data["to_agent"]), int(switch.data["to_version"]))
            running = await self._db.run(
                routed_turn,
                self._db,
                running.ref.workspace_id,
                running,
                target,
                self._first.state,
            )
            result = await run_agent(running, self.journal(running, hop))
        return running, result

    async def _switch(
        self, journal: TurnJournal, running: PreparedTurn, result: TurnResult, hop: int
    ) -> RecordedEntry:
        """Resolve the route's target and record the switch (or why it was refused)."""
        transfer = result.transfer
        assert transfer is not None
        data: dict[str, Any] = {
            "from_agent": running.ref.agent_id,
            "route_id": transfer.route_id,
            "reason": transfer.reason,
        }
        found: _Target | str = f"a turn follows at most {MAX_TRANSFERS} routes"
        if hop < MAX_TRANSFERS:
            found = await self._db.run(
                find_target,
                self._db,
                running.ref.workspace_id,
                transfer.agent,
                running.ref.agent_id,
            )
        if isinstance(found, str):
            data |= {"agent": transfer.agent, "failed": found}
        else:
            data |= {"to_agent": found.agent_id, "to_version": found.version}
        recorded = await journal.append(Entry("agent_switch", SWITCH_KEY, data=data))
        if self._sink is not None:
            await self._sink.entry(recorded)
        return recorded
