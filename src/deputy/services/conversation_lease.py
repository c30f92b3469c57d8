"""One turn at a time per conversation: an `asyncio.Lock` per conversation within a process, and
a lease on the conversation row across processes.

The lease is taken with a conditional update (free, or expired), renewed while a turn runs, and
released after. A process that dies holding it loses it when it expires, and the next process
resumes the turn it left (`deputy.services.conversation_turns`). Writes that end a turn check
they still hold the lease (`owner`), so a process that stalled past its lease cannot overwrite
the work of the one that took over.

The lease length is the `turn_lease_seconds` setting (`DEPUTY_TURN_LEASE_SECONDS`, 30 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
from sqlalchemy import or_, update

from deputy.domain.errors import Unavailable
from deputy.store import tables as t
from deputy.store.db import Database
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.conversations")

TURN_WAIT_SECONDS = 120.0
"""How long a new message waits for the turn before it (in another process) to finish."""
_FIRST_POLL = 0.05
_MAX_POLL = 1.0


class ConversationBusy(Unavailable):
    """Another turn of the conversation is running and did not finish in time."""


@dataclass
class ConversationLease:
    """The right to run a conversation's turns, held by `owner` until `seconds` after the last
    renewal."""

    db: Database
    workspace_id: str
    conversation_id: str
    seconds: float
    owner: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex}")

    def _set(self, owner: str | None, *, only_if_free: bool) -> bool:
        now = utcnow()
        condition = (
            or_(t.Conversation.lease_owner.is_(None), t.Conversation.lease_until < now)
            if only_if_free
            else t.Conversation.lease_owner == self.owner
        )
        until = now + timedelta(seconds=self.seconds) if owner is not None else None
        with self.db.tenant_session(self.workspace_id) as session:
            result = session.execute(
                update(t.Conversation)
                .where(t.Conversation.id == self.conversation_id, condition)
                .values(lease_owner=owner, lease_until=until)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def try_acquire(self) -> bool:
        return self._set(self.owner, only_if_free=True)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken by another)."""
        return self._set(self.owner, only_if_free=False)

    def release(self) -> None:
        self._set(None, only_if_free=False)


@dataclass
class _Local:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


_LOCAL: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Local]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _local_lock(conversation_id: str, *, wait: bool) -> AsyncIterator[None]:
    """The conversation's lock in this process (per event loop: locks are bound to one)."""
    locks = _LOCAL.setdefault(asyncio.get_running_loop(), {})
    local = locks.setdefault(conversation_id, _Local())
    if not wait and local.lock.locked():
        raise ConversationBusy(f"conversation {conversation_id} is running a turn")
    local.users += 1
    try:
        async with local.lock:
            yield
    finally:
        local.users -= 1
        if local.users == 0:
            locks.pop(conversation_id, None)


async def _acquire(lease: ConversationLease, wait_seconds: float) -> None:
    deadline = anyio.current_time() + wait_seconds
    delay = _FIRST_POLL
    while not await lease.db.run(lease.try_acquire):
        if anyio.current_time() + delay > deadline:
            raise ConversationBusy(
                f"conversation {lease.conversation_id} is busy with another turn; the message "
                "is stored and will be answered",
                details={"conversation_id": lease.conversation_id},
            )
        await anyio.sleep(delay)
        delay = min(delay * 2, _MAX_POLL)


async def _keep_renewed(lease: ConversationLease) -> None:
    while True:
        await anyio.sleep(lease.seconds / 3)
        if not await lease.db.run(lease.renew):
            log.warning("conversation lease lost", extra={"conversation_id": lease.conversation_id})
            return


@contextlib.asynccontextmanager
async def hold_conversation(
    db: Database,
    workspace_id: str,
    conversation_id: str,
    *,
    wait_seconds: float,
    lease_seconds: float,
) -> AsyncIterator[ConversationLease]:
    """Run a conversation's turns alone: the process lock, then the lease (waiting up to
    `wait_seconds` for either; 0: one try), renewed until the block ends, then released.
    Raises `ConversationBusy` when it could not be had in time."""
    async with _local_lock(conversation_id, wait=wait_seconds > 0):
        lease = ConversationLease(db, workspace_id, conversation_id, lease_seconds)
        await _acquire(lease, wait_seconds)
        renewing = asyncio.create_task(_keep_renewed(lease))
        try:
            yield lease
        finally:
            renewing.cancel()
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
                await lease.db.run(lease.release)
