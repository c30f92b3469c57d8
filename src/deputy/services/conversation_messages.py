"""The customer's messages: each one stored with its turn in one transaction (the
acknowledgement), then answered by the agent through `deputy.services.conversation_turns`, or
left for the member who has the conversation."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from deputy.domain import resources as r
from deputy.domain.errors import Unavailable
from deputy.domain.ids import new_id
from deputy.domain.tenancy import Principal
from deputy.guardrails import redact_for_storage, resolve_guardrails
from deputy.runtime.journal import INBOUND_KEY, Entry, RecordedEntry
from deputy.runtime.ports import EventSink
from deputy.services.access import require, tenant
from deputy.services.conversation_journal import publish_entry
from deputy.services.conversation_lease import TURN_WAIT_SECONDS
from deputy.services.conversation_store import (
    add_entry,
    agent_spec,
    entry_resource,
    load_conversation,
    next_seq,
    not_closed,
    shows,
    turn_result,
)
from deputy.services.conversation_turn_records import OPEN_STATUSES, RAW_INBOUND, LeaseLost
from deputy.services.conversation_turns import TurnRun, run_open_turns
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.conversations")


@dataclass(frozen=True)
class _Accepted:
    """A customer message on record: its turn (`number`, `status`) and, when it is new, the
    stored message."""

    turn_id: str
    number: int
    status: str
    inbound: r.TranscriptEntry | None


def _earlier(
    platform: Platform, principal: Principal, conversation_id: str, client_message_id: str
) -> _Accepted | None:
    with tenant(platform, principal, "conversations:write") as session:
        load_conversation(session, principal, conversation_id)
        turn = session.scalar(
            select(t.Turn).where(
                t.Turn.conversation_id == conversation_id,
                t.Turn.client_message_id == client_message_id,
            )
        )
        return _Accepted(turn.id, turn.number, turn.status, None) if turn else None


def _accept(
    platform: Platform, principal: Principal, conversation_id: str, body: r.MessageCreate
) -> _Accepted:
    """Store the customer message and its turn in one transaction (the acknowledgement). The
    turn is `pending` for the agent, or answered already when a human has the conversation."""
    repeat = body.client_message_id
    if repeat and (earlier := _earlier(platform, principal, conversation_id, repeat)):
        return earlier
    try:
        with tenant(platform, principal, "conversations:write") as session:
            seq = next_seq(session, conversation_id)  # locks the conversation first
            row = load_conversation(session, principal, conversation_id)
            not_closed(row)
            spec = agent_spec(session, row.current_agent_id, row.current_agent_version)
            number = 1 + (
                session.scalar(
                    select(func.max(t.Turn.number)).where(t.Turn.conversation_id == row.id)
                )
                or 0
            )
            for_agent = row.status == "active"
            turn = t.Turn(
                id=new_id("turn"),
                workspace_id=row.workspace_id,
                conversation_id=row.id,
                number=number,
                status="pending" if for_agent else "completed",
                client_message_id=repeat,
                attempts=0,
                finished_at=None if for_agent else utcnow(),
            )
            session.add(turn)
            session.flush()
            message = Entry(
                "customer_message",
                INBOUND_KEY,
                text=redact_for_storage(body.text, resolve_guardrails(spec)),
                data={"client_message_id": repeat} if repeat else {},
            )
            entry = add_entry(session, row, message, seq=seq, turn_id=turn.id)
            turn.inbound_entry_id = entry.id
            return _Accepted(turn.id, number, turn.status, entry_resource(entry))
    except IntegrityError:  # the same client message id, posted concurrently
        if repeat and (earlier := _earlier(platform, principal, conversation_id, repeat)):
            return earlier
        raise


def _result(
    platform: Platform, principal: Principal, conversation_id: str, turn_id: str
) -> r.TurnResult:
    with tenant(platform, principal, "conversations:read") as session:
        row = load_conversation(session, principal, conversation_id)
        result = turn_result(session, row, session.get_one(t.Turn, turn_id))
    shown = [e for e in result.entries if shows(principal, e.kind)]
    return result.model_copy(update={"entries": shown})


class _CustomerView:
    """A live sink that passes on only the entries `principal` may see (reply pieces are
    what the customer will be told, so they pass)."""

    def __init__(self, sink: EventSink, principal: Principal) -> None:
        self._sink = sink
        self._principal = principal

    async def entry(self, entry: RecordedEntry) -> None:
        if shows(self._principal, entry.kind):
            await self._sink.entry(entry)

    async def reply_delta(self, text: str) -> None:
        await self._sink.reply_delta(text)


async def _answer(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    accepted: _Accepted,
    raw_text: str | None,
    sink: EventSink | None,
) -> TurnRun | None:
    """Run the conversation's open turns through the accepted one; that turn's run."""
    if raw_text is not None:
        RAW_INBOUND[accepted.turn_id] = raw_text
    try:
        runs = await run_open_turns(
            platform,
            principal.workspace_id,
            conversation_id,
            through=accepted.number,
            own_turn_id=accepted.turn_id,
            sink=sink,
            wait_seconds=TURN_WAIT_SECONDS,
        )
    finally:
        RAW_INBOUND.pop(accepted.turn_id, None)
    return next((run for run in runs if run.turn_id == accepted.turn_id), None)


def _retrieve(task: asyncio.Task[TurnRun | None]) -> None:
    """Collect the outcome of an answering task whose caller went away."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("a turn's caller went away and the turn could not run: %s", task.exception())


def inbound_entry(entry: r.TranscriptEntry) -> RecordedEntry:
    """The stored customer message as the runtime's journal knows it."""
    return RecordedEntry(
        id=entry.id,
        seq=entry.seq,
        turn_id=entry.turn_id,
        kind=entry.kind,
        key=INBOUND_KEY,
        text=entry.text,
        data=dict(entry.data),
        created_at=entry.created_at,
        agent_id=entry.agent_id,
    )


async def post_message(
    platform: Platform,
    principal: Principal,
    conversation_id: str,
    body: r.MessageCreate,
    *,
    sink: EventSink | None = None,
) -> r.TurnResult:
    """The customer's message: stored and acknowledged before the agent works on it, then
    answered by the agent (turns of a conversation run one at a time, in order) unless a human
    has the conversation. A repeated `client_message_id` returns that message's turn. Once
    stored, the turn runs to its end even when the caller is cancelled (a client that went
    away). Raises `Unavailable` when the agent's turn failed (the message stays on record)."""
    require(principal, "conversations:write")
    if sink is not None and principal.conversation_id is not None:
        sink = _CustomerView(sink, principal)
    accepted = await platform.db.run(_accept, platform, principal, conversation_id, body)
    raw_text = None
    if accepted.inbound is not None:
        publish_entry(platform.events, conversation_id, accepted.inbound)
        raw_text = body.text if accepted.inbound.text != body.text else None
        if sink is not None:
            try:
                await sink.entry(inbound_entry(accepted.inbound))
            except Exception:  # the caller went away: the turn goes on without its stream
                log.warning("a live event sink failed", exc_info=True)
                sink = None
    if accepted.status in OPEN_STATUSES:
        answering = asyncio.create_task(
            _answer(platform, principal, conversation_id, accepted, raw_text, sink)
        )
        answering.add_done_callback(_retrieve)
        own = await asyncio.shield(answering)
        if own is not None and isinstance(own.error, LeaseLost):
            raise own.error
        if own is not None and own.error is not None:
            raise Unavailable(
                "the agent could not answer this message; the message is on record and its "
                "turn is marked failed",
                details={
                    "conversation_id": conversation_id,
                    "turn_id": accepted.turn_id,
                    "error": type(own.error).__name__,
                },
            ) from own.error
    return await platform.db.run(_result, platform, principal, conversation_id, accepted.turn_id)
