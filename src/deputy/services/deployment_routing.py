"""Which version of an agent answers a new conversation: the channel's deployment (else the
`all` one), and within it the canary for the share of conversations whose bucket (a hash of the
conversation id, so the choice is sticky and the same on every process) falls under its
percentage, unless it is paused."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import InvalidRequest
from deputy.store import tables as t

Choice = tuple[int, str | None, str | None]


def bucket(conversation_id: str) -> int:
    """The conversation's traffic bucket, 0-99: the same id always lands in the same one."""
    digest = hashlib.sha256(conversation_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def live_version(session: Session, agent_id: str, channel: str = lc.ALL_CHANNELS) -> int | None:
    """The version live on exactly `channel` (None: not deployed there)."""
    return session.scalar(
        select(t.Deployment.live_version).where(
            t.Deployment.agent_id == agent_id, t.Deployment.channel == channel
        )
    )


def choose_version(
    session: Session, agent_id: str, channel: str, conversation_id: str
) -> Choice | None:
    """(version, deployment id, arm) for a new conversation on `channel`: the channel's own
    deployment, else the `all` one; the canary when the conversation's bucket falls under its
    percentage and it is not paused. None: the agent was never deployed (its latest version
    answers). An agent deployed elsewhere but not on this channel nor `all` is refused."""
    rows = {
        row.channel: row
        for row in session.scalars(select(t.Deployment).where(t.Deployment.agent_id == agent_id))
    }
    if not rows:
        return None
    row = rows.get(channel) or rows.get(lc.ALL_CHANNELS)
    if row is None:
        raise InvalidRequest(
            f"the agent is not deployed on channel {channel!r}",
            details={"agent_id": agent_id, "channel": channel, "deployed_on": sorted(rows)},
        )
    canary = row.canary_version
    if (
        canary is not None
        and not row.canary_paused
        and bucket(conversation_id) < row.canary_percent
    ):
        return canary, row.id, "canary"
    return row.live_version, row.id, "live"
