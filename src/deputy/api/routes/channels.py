"""Channel connections: an agent's accounts on email, Slack, Telegram, WhatsApp and Twilio
(SMS and voice). Secrets are write-only; a connection shows the path its platform posts to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from deputy.api.deps import CursorQuery, LimitQuery, PlatformDep, PrincipalDep
from deputy.domain import channels as c
from deputy.domain.resources import Page
from deputy.services import channel_connections as svc

router = APIRouter(tags=["channels"])


@router.post(
    "/channel-connections", status_code=status.HTTP_201_CREATED, response_model=c.ChannelConnection
)
def create_connection(
    body: c.ChannelConnectionCreate, platform: PlatformDep, principal: PrincipalDep
) -> c.ChannelConnection:
    """Connect an agent to a mailbox, a messaging app or a phone number. `config` follows the
    kind's settings; `secrets` are encrypted at rest and never returned."""
    return svc.create_connection(platform, principal, body)


@router.get("/channel-connections", response_model=Page[c.ChannelConnection])
def list_connections(
    platform: PlatformDep,
    principal: PrincipalDep,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[c.ChannelConnection]:
    return svc.list_connections(platform, principal, agent_id=agent_id, limit=limit, cursor=cursor)


@router.get("/channel-connections/{connection_id}", response_model=c.ChannelConnection)
def get_connection(
    connection_id: str, platform: PlatformDep, principal: PrincipalDep
) -> c.ChannelConnection:
    return svc.get_connection(platform, principal, connection_id)


@router.patch("/channel-connections/{connection_id}", response_model=c.ChannelConnection)
def update_connection(
    connection_id: str,
    body: c.ChannelConnectionUpdate,
    platform: PlatformDep,
    principal: PrincipalDep,
) -> c.ChannelConnection:
    """Replace the settings, set or remove secrets (an empty string removes one), enable or
    disable the connection (a disabled one refuses its platform's deliveries)."""
    return svc.update_connection(platform, principal, connection_id, body)


@router.delete("/channel-connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_connection(connection_id: str, platform: PlatformDep, principal: PrincipalDep) -> None:
    svc.delete_connection(platform, principal, connection_id)
