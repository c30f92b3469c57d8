"""Running a conversation's turns durably.

A turn is acknowledged once its customer message and its `pending` row are committed
(`deputy.services.conversation_messages`). It then runs under the conversation's lease
(`deputy.services.conversation_lease`), earlier open turns first: `running`, attempts + 1, the
runtime with a `SqlTurnJournal`, and, in one transaction at the end, the new conversation state,
its status (a handoff queues it, an end closes it) and the turn `completed`. The conversation
state is only ever written with a completed turn, so a turn that fails or dies leaves the state
it started from.

A turn left `pending` or `running` by a process that died is run again by
`resume_pending_turns` (or before the next turn of its conversation) from the same inbound
message and the same starting state: the journal hands back its recorded model steps and tool
calls, and the tool ledger never repeats an irreversible call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from sqlalchemy import or_, select

from deputy.domain import resources as r
from deputy.domain.errors import Unavailable
from deputy.runtime.context import TurnInput
from deputy.runtime.journal import RecordedEntry, TurnJournal
from deputy.runtime.ports import EventSink
from deputy.runtime.turn import TurnResult
from deputy.services.conversation_events import ConversationEvents
from deputy.services.conversation_journal import publish_entry
from deputy.services.conversation_lease import (
    ConversationBusy,
    ConversationLease,
    hold_conversation,
)
from deputy.services.conversation_routes import RouteFollower
from deputy.services.conversation_runtime import conversation_runtime
from deputy.services.conversation_turn_records import (
    MAX_TURN_ATTEMPTS,
    OPEN_STATUSES,
    Ended,
    LeaseLost,
    PreparedTurn,
    complete_turn,
    fail_turn,
    open_turn_ids,
    start_turn,
)
from deputy.services.platform import Platform
from deputy.services.turn_observation import (
    agent_run_span,
    end_agent_run_span,
    entry_recorded,
    turn_ended,
)
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.conversations")


@dataclass(frozen=True)
class TurnRun:
    """What running one turn came to: `ran` False when it needed no run (done, or the
    conversation had left the agent); `error` when it failed."""

    turn_id: str
    ran: bool
    error: Exception | None = None


class _LiveSink:
    """Publishes the reply's pieces and forwards the turn's live events to the caller's sink. A
    caller's sink that fails (its client went away) is dropped: it never fails the turn."""

    def __init__(
        self,
        events: ConversationEvents,
        conversation_id: str,
        inner: EventSink | None,
        observe: Callable[[RecordedEntry], None],
    ) -> None:
        self._events = events
        self._conversation_id = conversation_id
        self._inner = inner
        self._observe = observe

    async def _forward(self, send: Callable[[EventSink], Awaitable[None]]) -> None:
        if self._inner is None:
            return
        try:
            await send(self._inner)
        except Exception:
            log.warning(
                "a live event sink failed; it gets no more events",
                extra={"conversation_id": self._conversation_id},
                exc_info=True,
            )
            self._inner = None

    async def entry(self, entry: RecordedEntry) -> None:
        self._observe(entry)
        await self._forward(lambda sink: sink.entry(entry))

    async def reply_delta(self, text: str) -> None:
        self._events.publish(
            self._conversation_id, r.ConversationEvent(type="reply.delta", text=text)
        )
        await self._forward(lambda sink: sink.reply_delta(text))


def _publish_end(
    events: ConversationEvents, ended: Ended, done: Literal["turn.completed", "turn.failed"]
) -> None:
    conversation_id = ended.conversation.id
    for entry in ended.entries:
        publish_entry(events, conversation_id, entry)
    if ended.status_changed:
        events.publish(
            conversation_id, r.ConversationEvent(type="status", conversation=ended.conversation)
        )
    events.publish(
        conversation_id,
        r.ConversationEvent(type=done, conversation=ended.conversation),
    )


async def run_turn(
    platform: Platform, lease: ConversationLease, turn_id: str, sink: EventSink | None
) -> TurnRun:
    """Run one open turn (the caller holds the lease), following the routes its agents take to
    other agents (`deputy.services.conversation_routes`). A failure is recorded and returned."""
    db, events = platform.db, platform.events
    prepared = await db.run(start_turn, db, lease.workspace_id, turn_id)
    if prepared is None:
        return TurnRun(turn_id, ran=False)
    live = _LiveSink(
        events, lease.conversation_id, sink, partial(entry_recorded, platform, prepared)
    )
    routes = RouteFollower(db, events, prepared, live)

    async def run_agent(running: PreparedTurn, journal: TurnJournal) -> TurnResult:
        with agent_run_span(platform, running) as span:
            async with conversation_runtime(
                platform,
                workspace_id=lease.workspace_id,
                agent_id=running.ref.agent_id,
                agent_version=running.agent_version,
                agent_model=running.agent_model,
                spec=running.spec,
            ) as runtime:
                result = await runtime.run_turn(
                    TurnInput(
                        conversation=running.ref,
                        spec=running.spec,
                        state=running.state,
                        inbound=running.inbound,
                        turn_id=turn_id,
                        history=running.history,
                        memory=running.memory,
                    ),
                    journal,
                    live,
                )
            end_agent_run_span(span, running, result)
            return result

    try:
        if prepared.attempts > MAX_TURN_ATTEMPTS:
            raise Unavailable(f"the turn was abandoned after {MAX_TURN_ATTEMPTS} attempts")
        result = await run_agent(prepared, routes.journal(prepared, 0))
        answered, result = await routes.follow(result, run_agent)
        ended = await db.run(complete_turn, db, lease, answered, result)
    except LeaseLost as lost:
        return TurnRun(turn_id, ran=True, error=lost)
    except Exception as exc:  # the turn failed: record it, keep the state it started from
        log.exception(
            "turn failed", extra={"conversation_id": lease.conversation_id, "turn_id": turn_id}
        )
        error = f"{type(exc).__name__}: {exc}"[:2000]
        failed = await db.run(fail_turn, db, lease.workspace_id, turn_id, error)
        if failed is not None:
            _publish_end(events, failed, "turn.failed")
            turn_ended(platform, prepared, None, failed)
        return TurnRun(turn_id, ran=True, error=exc)
    _publish_end(events, ended, "turn.completed")
    turn_ended(platform, prepared, result, ended)
    return TurnRun(turn_id, ran=True)


async def run_open_turns(
    platform: Platform,
    workspace_id: str,
    conversation_id: str,
    *,
    through: int | None,
    own_turn_id: str | None = None,
    sink: EventSink | None = None,
    wait_seconds: float,
) -> list[TurnRun]:
    """Under the conversation's lock and lease, run its open turns up to number `through`
    (all when None) in order; `sink` follows `own_turn_id` only."""
    async with hold_conversation(
        platform.db,
        workspace_id,
        conversation_id,
        wait_seconds=wait_seconds,
        lease_seconds=platform.settings.turn_lease_seconds,
    ) as lease:
        turn_ids = await platform.db.run(
            open_turn_ids, platform.db, workspace_id, conversation_id, through
        )
        runs: list[TurnRun] = []
        for turn_id in turn_ids:
            run = await run_turn(platform, lease, turn_id, sink if turn_id == own_turn_id else None)
            runs.append(run)
            if isinstance(run.error, LeaseLost):  # the new holder runs the rest
                break
        return runs


def _orphaned(db: Database) -> list[tuple[str, str]]:
    """(workspace, conversation) of every open turn whose conversation nobody holds."""
    now = utcnow()
    query = (
        select(t.Turn.workspace_id, t.Turn.conversation_id)
        .join(t.Conversation, t.Conversation.id == t.Turn.conversation_id)
        .where(
            t.Turn.status.in_(OPEN_STATUSES),
            or_(t.Conversation.lease_owner.is_(None), t.Conversation.lease_until < now),
        )
        .distinct()
    )
    with db.session() as session:
        return [(str(ws), str(cid)) for ws, cid in session.execute(query)]


async def resume_pending_turns(platform: Platform) -> int:
    """Run every turn a dead process left pending or running (its conversation's lease free or
    expired); conversations another process is working on are left to it. Returns how many
    turns were run. Never raises: failures are recorded on their turns and logged."""
    resumed = 0
    try:
        orphaned = await platform.db.run(_orphaned, platform.db)
    except Exception:
        log.exception("could not look for turns to resume")
        return 0
    for workspace_id, conversation_id in orphaned:
        try:
            runs = await run_open_turns(
                platform, workspace_id, conversation_id, through=None, wait_seconds=0
            )
        except ConversationBusy:
            continue
        except Exception:
            log.exception("could not resume turns", extra={"conversation_id": conversation_id})
            continue
        resumed += sum(1 for run in runs if run.ran)
    if resumed:
        log.info("resumed turns", extra={"turns": resumed})
    return resumed


async def keep_resuming(platform: Platform) -> None:
    """Resume orphaned turns now and then every lease period, for as long as the process runs:
    a turn left by a process that died (or by a caller that gave up waiting) is picked up once
    its conversation's lease expires, without waiting for the next message or a restart."""
    while True:
        await resume_pending_turns(platform)
        await asyncio.sleep(platform.settings.turn_lease_seconds)
