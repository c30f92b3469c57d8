"""Which deployed agents an API key can talk to on a key-authenticated channel (the
OpenAI-compatible endpoint, A2A): agents of the key's workspace (a channel key: its own agent
only) with a deployment on that channel or on `all`, each with the spec of its live version.

An agent that was never deployed is not reachable here, although the REST API lets a builder
talk to its latest version: these channels are front doors for callers outside the team, and
only a reviewed, deployed version faces them. Talking needs `conversations:write`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from deputy.domain import lifecycle as lc
from deputy.domain.errors import NotFound, PermissionDenied
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import Principal
from deputy.services.access import tenant
from deputy.services.conversation_store import agent_spec
from deputy.services.platform import Platform
from deputy.store import tables as t


@dataclass(frozen=True)
class ReachableAgent:
    """A deployed agent as a channel presents it: `version` is the live one on the channel
    (a canary may still answer a share of new conversations), `spec` that version's spec."""

    id: str
    name: str
    description: str
    version: int
    spec: AgentSpec
    created_at: float
    """Seconds since the epoch (what OpenAI's `created` and A2A cards want)."""


def _live_versions(session: Session, channel: str, agent_ids: list[str]) -> dict[str, int]:
    """Each agent's live version on `channel`, else on `all`; agents deployed on neither are
    left out."""
    rows = session.execute(
        select(t.Deployment.agent_id, t.Deployment.channel, t.Deployment.live_version).where(
            t.Deployment.agent_id.in_(agent_ids),
            t.Deployment.channel.in_((channel, lc.ALL_CHANNELS)),
        )
    ).all()
    live: dict[str, int] = {}
    for agent_id, deployed_on, version in rows:
        if deployed_on == channel or agent_id not in live:
            live[agent_id] = version
    return live


def _not_a_session(principal: Principal) -> None:
    """A token bound to one conversation (a web widget's session) starts none here."""
    if getattr(principal, "conversation_id", None) is not None:
        raise PermissionDenied("a conversation's session token cannot use this channel")


def _reachable(
    session: Session, principal: Principal, channel: str, agent_ref: str | None
) -> list[ReachableAgent]:
    _not_a_session(principal)
    query = select(t.Agent).where(t.Agent.latest_version >= 1).order_by(t.Agent.name)
    if principal.agent_id is not None:
        query = query.where(t.Agent.id == principal.agent_id)
    if agent_ref is not None:
        query = query.where((t.Agent.id == agent_ref) | (t.Agent.name == agent_ref))
    agents = list(session.scalars(query))
    live = _live_versions(session, channel, [a.id for a in agents]) if agents else {}
    return [
        ReachableAgent(
            id=agent.id,
            name=agent.name,
            description=agent.description,
            version=live[agent.id],
            spec=agent_spec(session, agent.id, live[agent.id]),
            created_at=agent.created_at.timestamp(),
        )
        for agent in agents
        if agent.id in live
    ]


def reachable_agents(
    platform: Platform, principal: Principal, channel: str
) -> list[ReachableAgent]:
    """The agents the key can talk to on `channel`, by name."""
    with tenant(platform, principal, "conversations:write") as session:
        return _reachable(session, principal, channel, None)


def reachable_agent(
    platform: Platform, principal: Principal, channel: str, agent_ref: str
) -> ReachableAgent:
    """The agent named or identified by `agent_ref` if the key can talk to it on `channel`;
    otherwise `NotFound` (the same answer whether it does not exist, belongs to another
    workspace or agent key, or is not deployed on the channel)."""
    with tenant(platform, principal, "conversations:write") as session:
        found = _reachable(session, principal, channel, agent_ref)
        if found:
            return found[0]
        exists = principal.agent_id in (None, agent_ref) and session.scalar(
            select(t.Agent.id).where((t.Agent.id == agent_ref) | (t.Agent.name == agent_ref))
        )
    error = NotFound("agent", agent_ref)
    if exists:
        error.message = (
            f"agent {agent_ref!r} has no version deployed on the {channel!r} channel: deploy "
            f"one on {channel!r} or on 'all'"
        )
    raise error
