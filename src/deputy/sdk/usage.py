"""Usage, for `DeputyClient` (`client.usage`) and `AsyncDeputyClient` (the same, awaited):
what the workspace consumed, summed, listed and exported, and what each outcome cost in
model spend. Quantities and costs are exact decimal strings (`Decimal(total.quantity)`).

summary = client.usage.summary(group_by="agent")          # this calendar month, UTC
for total in summary.totals:
    print(total.kind, total.events, total.quantity, total.unit, total.cost_usd)
for event in client.usage.events(kind="outcome", start=datetime(2026, 11, 1)):
    print(event.event_id, event.subject)
client.usage.export("usage.csv", "csv")                    # or "cloudevents" (a JSON batch)
for outcome in client.usage.outcomes(agent_id=agent.id):
    print(outcome.conversation_id, outcome.outcome, outcome.provider_cost_usd)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx

from deputy.domain import resources as r
from deputy.domain.billing import UsageKind
from deputy.domain.usage import (
    ExportFormat,
    OutcomeCost,
    UsageEventInfo,
    UsageGroupBy,
    UsageSummary,
)
from deputy.sdk import _usage_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP
from deputy.sdk.errors import DeputyConnectionError
from deputy.sdk.transfer import Destination, DownloadSink, Progress


def _broke_off(exc: httpx.TransportError) -> DeputyConnectionError:
    return DeputyConnectionError(f"the usage export broke off: {exc}")


class UsageAPI:
    """The workspace's usage (a key with `billing:read`). Windows are half-open, `[start,
    end)`; by default the current calendar month (UTC)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def summary(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        group_by: UsageGroupBy = "kind",
    ) -> UsageSummary:
        """Event counts, quantities and provider cost per group (kind, agent, day or
        channel) and kind, and per kind overall."""
        return self._http.run(calls.summary(start, end, agent_id, group_by))

    def events_page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[UsageEventInfo]:
        """One page of raw events, oldest first."""
        return self._http.run(
            calls.list_events(start, end, kind, agent_id, conversation_id, limit, cursor)
        )

    def events(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[UsageEventInfo]:
        """Every event of the window, oldest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.events_page(
                start=start,
                end=end,
                kind=kind,
                agent_id=agent_id,
                conversation_id=conversation_id,
                limit=page_size,
                cursor=cursor,
            )
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def export(
        self,
        destination: Destination,
        export_format: ExportFormat = "csv",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Stream the window's events to a path (written whole or not at all) or a binary
        file, as CSV or a CloudEvents JSON batch. Returns the bytes written."""
        call = calls.export_events(export_format, start, end, kind, agent_id)
        with self._http.stream(call) as response:
            sink = DownloadSink(destination, None, progress)
            try:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                sink.finish(None)
            except httpx.TransportError as exc:
                sink.abort()
                raise _broke_off(exc) from exc
            except BaseException:
                sink.abort()
                raise
        return sink.written

    def outcomes_page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[OutcomeCost]:
        """One page of outcomes, oldest first, each with its conversation's model spend."""
        return self._http.run(calls.list_outcomes(start, end, agent_id, limit, cursor))

    def outcomes(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[OutcomeCost]:
        """Every outcome of the window with its provider cost, oldest first."""
        cursor: str | None = None
        while True:
            page = self.outcomes_page(
                start=start, end=end, agent_id=agent_id, limit=page_size, cursor=cursor
            )
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor


class AsyncUsageAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def summary(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        group_by: UsageGroupBy = "kind",
    ) -> UsageSummary:
        return await self._http.run(calls.summary(start, end, agent_id, group_by))

    async def events_page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[UsageEventInfo]:
        return await self._http.run(
            calls.list_events(start, end, kind, agent_id, conversation_id, limit, cursor)
        )

    async def events(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[UsageEventInfo]:
        cursor: str | None = None
        while True:
            page = await self.events_page(
                start=start,
                end=end,
                kind=kind,
                agent_id=agent_id,
                conversation_id=conversation_id,
                limit=page_size,
                cursor=cursor,
            )
            for event in page.data:
                yield event
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def export(
        self,
        destination: Destination,
        export_format: ExportFormat = "csv",
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        kind: UsageKind | None = None,
        agent_id: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        call = calls.export_events(export_format, start, end, kind, agent_id)
        async with self._http.stream(call) as response:
            sink = DownloadSink(destination, None, progress)
            try:
                async for chunk in response.aiter_bytes():
                    sink.write(chunk)
                sink.finish(None)
            except httpx.TransportError as exc:
                sink.abort()
                raise _broke_off(exc) from exc
            except BaseException:
                sink.abort()
                raise
        return sink.written

    async def outcomes_page(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[OutcomeCost]:
        return await self._http.run(calls.list_outcomes(start, end, agent_id, limit, cursor))

    async def outcomes(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        agent_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[OutcomeCost]:
        cursor: str | None = None
        while True:
            page = await self.outcomes_page(
                start=start, end=end, agent_id=agent_id, limit=page_size, cursor=cursor
            )
            for outcome in page.data:
                yield outcome
            if not page.next_cursor:
                return
            cursor = page.next_cursor
