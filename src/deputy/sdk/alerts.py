"""Alerts, alert targets and SLOs, for `DeputyClient` (`client.alerts`, `client.slos`) and
`AsyncDeputyClient` (the same, awaited). Target secrets are write-only.

hook = client.alerts.targets.create("ops", "webhook", {"url": "https://ops.example.com/deputy"},
                                    secret=signing_secret)
client.alerts.test(hook.id).sent                      # a test notification, now
for alert in client.alerts.iter_all(status="firing"):
    client.alerts.silence(alert.id, 60, "known outage")
print(client.slos.status(agent.id).health.state)      # ok | degraded | down | idle
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from deputy.domain import alerts as a
from deputy.domain import resources as r
from deputy.sdk import _alert_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP


class AlertTargetsAPI:
    """Where the workspace's alerts go: signed webhooks and email."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        name: str,
        kind: a.TargetKind,
        config: Mapping[str, Any],
        *,
        secret: str | None = None,
        min_severity: a.Severity = "ticket",
        enabled: bool = True,
        idempotency_key: str | None = None,
    ) -> a.AlertTarget:
        """`config` follows the kind's settings; `secret` (a webhook's signing secret, an
        email target's SMTP password) is encrypted at rest and never returned."""
        return self._http.run(
            calls.create_target(name, kind, config, secret, min_severity, enabled, idempotency_key)
        )

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> r.Page[a.AlertTarget]:
        return self._http.run(calls.list_targets(limit, cursor))

    def iter_all(self, *, page_size: int | None = None) -> Iterator[a.AlertTarget]:
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, target_id: str) -> a.AlertTarget:
        return self._http.run(calls.get_target(target_id))

    def update(
        self,
        target_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        secret: str | None = None,
        min_severity: a.Severity | None = None,
        enabled: bool | None = None,
    ) -> a.AlertTarget:
        """What is given changes; `secret=""` removes the secret (email targets only)."""
        return self._http.run(calls.update_target(target_id, config, secret, min_severity, enabled))

    def delete(self, target_id: str) -> None:
        self._http.run(calls.delete_target(target_id))


class AlertsAPI:
    """The workspace's alerts: list, read, silence, resolve; test a target."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http
        self.targets = AlertTargetsAPI(http)

    def list(
        self,
        *,
        status: a.AlertStatus | None = None,
        agent_id: str | None = None,
        kind: a.AlertKind | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[a.Alert]:
        """Newest first."""
        return self._http.run(calls.list_alerts(status, agent_id, kind, limit, cursor))

    def iter_all(
        self,
        *,
        status: a.AlertStatus | None = None,
        agent_id: str | None = None,
        kind: a.AlertKind | None = None,
        page_size: int | None = None,
    ) -> Iterator[a.Alert]:
        cursor: str | None = None
        while True:
            page = self.list(
                status=status, agent_id=agent_id, kind=kind, limit=page_size, cursor=cursor
            )
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get(self, alert_id: str) -> a.Alert:
        return self._http.run(calls.get_alert(alert_id))

    def silence(
        self, alert_id: str, minutes: int, reason: str, *, idempotency_key: str | None = None
    ) -> a.Alert:
        """No one hears of the alert for `minutes` (it stays firing and still resolves)."""
        return self._http.run(calls.silence_alert(alert_id, minutes, reason, idempotency_key))

    def resolve(self, alert_id: str, reason: str, *, idempotency_key: str | None = None) -> a.Alert:
        """Resolve now; a condition that still holds opens a new alert at its next check."""
        return self._http.run(calls.resolve_alert(alert_id, reason, idempotency_key))

    def test(self, target_id: str, *, idempotency_key: str | None = None) -> a.AlertTestResult:
        """Send a test notification to a target now; whether it went through."""
        return self._http.run(calls.send_test(target_id, idempotency_key))


class SlosAPI:
    """An agent's SLOs and status."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def get(self, agent_id: str) -> a.AgentSlos:
        return self._http.run(calls.agent_slos(agent_id))

    def status(self, agent_id: str) -> a.AgentStatus:
        return self._http.run(calls.agent_status(agent_id))


class AsyncAlertTargetsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        name: str,
        kind: a.TargetKind,
        config: Mapping[str, Any],
        *,
        secret: str | None = None,
        min_severity: a.Severity = "ticket",
        enabled: bool = True,
        idempotency_key: str | None = None,
    ) -> a.AlertTarget:
        return await self._http.run(
            calls.create_target(name, kind, config, secret, min_severity, enabled, idempotency_key)
        )

    async def list(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[a.AlertTarget]:
        return await self._http.run(calls.list_targets(limit, cursor))

    async def iter_all(self, *, page_size: int | None = None) -> AsyncIterator[a.AlertTarget]:
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor)
            for target in page.data:
                yield target
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, target_id: str) -> a.AlertTarget:
        return await self._http.run(calls.get_target(target_id))

    async def update(
        self,
        target_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        secret: str | None = None,
        min_severity: a.Severity | None = None,
        enabled: bool | None = None,
    ) -> a.AlertTarget:
        return await self._http.run(
            calls.update_target(target_id, config, secret, min_severity, enabled)
        )

    async def delete(self, target_id: str) -> None:
        await self._http.run(calls.delete_target(target_id))


class AsyncAlertsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http
        self.targets = AsyncAlertTargetsAPI(http)

    async def list(
        self,
        *,
        status: a.AlertStatus | None = None,
        agent_id: str | None = None,
        kind: a.AlertKind | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[a.Alert]:
        return await self._http.run(calls.list_alerts(status, agent_id, kind, limit, cursor))

    async def iter_all(
        self,
        *,
        status: a.AlertStatus | None = None,
        agent_id: str | None = None,
        kind: a.AlertKind | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[a.Alert]:
        cursor: str | None = None
        while True:
            page = await self.list(
                status=status, agent_id=agent_id, kind=kind, limit=page_size, cursor=cursor
            )
            for alert in page.data:
                yield alert
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def get(self, alert_id: str) -> a.Alert:
        return await self._http.run(calls.get_alert(alert_id))

    async def silence(
        self, alert_id: str, minutes: int, reason: str, *, idempotency_key: str | None = None
    ) -> a.Alert:
        return await self._http.run(calls.silence_alert(alert_id, minutes, reason, idempotency_key))

    async def resolve(
        self, alert_id: str, reason: str, *, idempotency_key: str | None = None
    ) -> a.Alert:
        return await self._http.run(calls.resolve_alert(alert_id, reason, idempotency_key))

    async def test(
        self, target_id: str, *, idempotency_key: str | None = None
    ) -> a.AlertTestResult:
        return await self._http.run(calls.send_test(target_id, idempotency_key))


class AsyncSlosAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def get(self, agent_id: str) -> a.AgentSlos:
        return await self._http.run(calls.agent_slos(agent_id))

    async def status(self, agent_id: str) -> a.AgentStatus:
        return await self._http.run(calls.agent_status(agent_id))
