"""Channel connections, for `DeputyClient` (`client.channels`) and `AsyncDeputyClient` (the
same, awaited): an agent's mailbox, Slack app, Telegram bot, WhatsApp number or Twilio number.
Secrets are write-only: a connection shows only the names of the ones that are set.

bot = client.channels.create(agent.id, "telegram", "support-bot", {},
                             secrets={"bot_token": token, "secret_token": webhook_secret})
print(bot.inbound_path)                      # where Telegram posts (behind the public URL)
client.channels.update(bot.id, enabled=False)
for connection in client.channels.iter_all(agent_id=agent.id):
    print(connection.kind, connection.name, connection.secrets_set)
client.channels.delete(bot.id)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from deputy.domain import channels as c
from deputy.domain import resources as r
from deputy.sdk import _channel_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP


class ChannelsAPI:
    """Connect agents to email, Slack, Telegram, WhatsApp and Twilio (SMS and voice)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: str,
        kind: c.ChannelKind,
        name: str,
        config: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> c.ChannelConnection:
        """Connect the agent; `config` follows the kind's settings, `secrets` are encrypted
        at rest and never returned."""
        return self._http.run(
            calls.create_connection(agent_id, kind, name, config, secrets or {}, idempotency_key)
        )

    def list(
        self,
        *,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[c.ChannelConnection]:
        return self._http.run(calls.list_connections(agent_id, limit, cursor))

    def iter_all(
        self, *, agent_id: str | None = None, page_size: int | None = None
    ) -> Iterator[c.ChannelConnection]:
        cursor: str | None = None
        while True:
            page = self.list(agent_id=agent_id, limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, connection_id: str) -> c.ChannelConnection:
        return self._http.run(calls.get_connection(connection_id))

    def update(
        self,
        connection_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        enabled: bool | None = None,
    ) -> c.ChannelConnection:
        """Replace the settings, set secrets (an empty string removes one), enable or
        disable; what is not given stays."""
        return self._http.run(calls.update_connection(connection_id, config, secrets, enabled))

    def delete(self, connection_id: str) -> None:
        """Remove the connection; its conversations stay."""
        self._http.run(calls.delete_connection(connection_id))


class AsyncChannelsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: str,
        kind: c.ChannelKind,
        name: str,
        config: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> c.ChannelConnection:
        return await self._http.run(
            calls.create_connection(agent_id, kind, name, config, secrets or {}, idempotency_key)
        )

    async def list(
        self,
        *,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[c.ChannelConnection]:
        return await self._http.run(calls.list_connections(agent_id, limit, cursor))

    async def iter_all(
        self, *, agent_id: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[c.ChannelConnection]:
        cursor: str | None = None
        while True:
            page = await self.list(agent_id=agent_id, limit=page_size, cursor=cursor)
            for connection in page.data:
                yield connection
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, connection_id: str) -> c.ChannelConnection:
        return await self._http.run(calls.get_connection(connection_id))

    async def update(
        self,
        connection_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        enabled: bool | None = None,
    ) -> c.ChannelConnection:
        return await self._http.run(
            calls.update_connection(connection_id, config, secrets, enabled)
        )

    async def delete(self, connection_id: str) -> None:
        await self._http.run(calls.delete_connection(connection_id))
