"""Sending alert notifications: the outbox `deputy.services.alerts` writes, delivered to each
target (`deputy.services.alert_messages`) with retries.

A due `pending` notification is claimed by pushing its next attempt a lease ahead in one
conditional update (so another process leaves it alone, and a crashed sender's claim expires),
then sent: `sent` on success; on failure retried with exponential backoff (2 s, 4 s, 8 s... at
most five minutes apart) until `MAX_ATTEMPTS`, or `failed` at once when retrying cannot help
(a 4xx refusal, a refused address, a target without its secret).

A notification of a silenced alert waits for the end of the silence (no attempt is counted);
an `opened` one whose alert resolved meanwhile is dropped then (`failed`, saying so), since
nobody was told and there is nothing left to tell. One whose target was disabled meanwhile is
dropped too. `keep_delivering_alerts` sweeps every
`SWEEP_SECONDS` and at once when `wake_alert_delivery` is called (the SLO evaluator does after
opening or resolving alerts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from deputy.channels.base import DeliveryFailed
from deputy.domain import alerts as a
from deputy.domain.tenancy import Principal
from deputy.services.alert_messages import notification_payload, post_webhook, send_email
from deputy.services.alert_targets import LoadedTarget, load_target, loaded_target
from deputy.services.alerts import alert_resource, is_silenced
from deputy.services.channel_outbox import backoff_seconds
from deputy.services.platform import Platform
from deputy.store import tables as t
from deputy.store.tables import utcnow

log = logging.getLogger("deputy.alerts")

MAX_ATTEMPTS = 10
SEND_LEASE_SECONDS = 300.0
"""A claim's length: longer than the slowest send (an email target's SMTP sessions)."""
SWEEP_SECONDS = 2.0
CLAIM_BATCH = 50


def next_attempt(attempts: int, permanent: bool, now: datetime) -> datetime | None:
    """When to try again after the `attempts`-th failed attempt; None: give up."""
    if permanent or attempts >= MAX_ATTEMPTS:
        return None
    return now + timedelta(seconds=backoff_seconds(attempts))


@dataclass(frozen=True)
class Claimed:
    """A notification claimed for sending, with what sending it needs."""

    id: str
    event: a.NotificationEvent
    alert: a.Alert
    target: LoadedTarget


def claim_due(platform: Platform, limit: int = CLAIM_BATCH) -> list[tuple[str, str]]:
    """Due notifications claimed for this process: (workspace id, notification id)."""
    now = utcnow()
    claimed: list[tuple[str, str]] = []
    row = t.AlertNotification
    with platform.db.session() as session:
        due = session.execute(
            select(row.workspace_id, row.id, row.next_attempt_at)
            .where(row.status == "pending", row.next_attempt_at <= now)
            .order_by(row.next_attempt_at)
            .limit(limit)
        ).all()
        for workspace_id, notification_id, at in due:
            taken = session.execute(
                update(row)
                .where(row.id == notification_id, row.next_attempt_at == at)
                .values(next_attempt_at=now + timedelta(seconds=SEND_LEASE_SECONDS))
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                claimed.append((workspace_id, notification_id))
    return claimed


def _load(platform: Platform, workspace_id: str, notification_id: str) -> Claimed | None:
    """What to send, or None when nothing is to be sent now (the alert is silenced: the
    notification waits for the silence's end, or is dropped if its alert resolved)."""
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.AlertNotification, notification_id)
        alert = session.get_one(t.Alert, row.alert_id)
        if alert.silenced_until is not None and is_silenced(alert):
            row.next_attempt_at = alert.silenced_until
            return None
        if alert.silenced_until is not None and row.event == "opened" and alert.status != "firing":
            row.status = "failed"
            row.last_error = "the alert was silenced and resolved before this was sent"
            return None
        target = session.get_one(t.AlertTarget, row.target_id)
        if not target.enabled:
            row.status, row.last_error = "failed", "the target was disabled before this was sent"
            return None
        event: a.NotificationEvent = row.event  # type: ignore[assignment]  # opened | resolved
        return Claimed(row.id, event, alert_resource(alert), loaded_target(platform, target))


def _finish(
    platform: Platform, workspace_id: str, notification_id: str, error: DeliveryFailed | None
) -> None:
    with platform.db.tenant_session(workspace_id) as session:
        row = session.get_one(t.AlertNotification, notification_id)
        if row.status != "pending":  # another process finished it after our claim expired
            return
        row.attempts += 1
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), None
            return
        row.last_error = str(error)[:2000]
        retry_at = next_attempt(row.attempts, error.permanent, utcnow())
        if retry_at is None:
            row.status = "failed"
        else:
            row.next_attempt_at = retry_at


async def send(
    platform: Platform,
    client: httpx.AsyncClient,
    target: LoadedTarget,
    alert: a.Alert,
    event: a.NotificationEvent,
    notification_id: str,
) -> None:
    """Send one notification to one target (raises `DeliveryFailed`)."""
    public_url = platform.settings.public_url
    payload = notification_payload(alert, event, notification_id, public_url)
    if isinstance(target.config, a.WebhookTargetConfig):
        await post_webhook(client, str(target.config.url), target.secret, payload)
    else:
        await send_email(target.config, target.secret, alert, event, payload["url"])


async def _deliver_one(
    platform: Platform, client: httpx.AsyncClient, workspace_id: str, notification_id: str
) -> None:
    claimed = await platform.db.run(_load, platform, workspace_id, notification_id)
    if claimed is None:
        return
    error: DeliveryFailed | None = None
    try:
        await send(platform, client, claimed.target, claimed.alert, claimed.event, claimed.id)
    except DeliveryFailed as exc:
        error = exc
    except Exception as exc:  # a bug or an unexpected transport error: retried
        log.warning("an alert notification failed unexpectedly", exc_info=True)
        error = DeliveryFailed(f"{type(exc).__name__}: {exc}")
    if error is not None:
        log.warning("alert notification %s to %s failed: %s", claimed.id, claimed.target.id, error)
    await platform.db.run(_finish, platform, workspace_id, notification_id, error)


async def deliver_due(platform: Platform, client: httpx.AsyncClient | None = None) -> int:
    """Send every due notification (claimed batch by batch); how many were tried."""
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient())
        tried = 0
        while claimed := await platform.db.run(claim_due, platform):
            await asyncio.gather(*(_deliver_one(platform, client, w, n) for w, n in claimed))
            tried += len(claimed)
        return tried


def _test_alert(target: LoadedTarget, principal: Principal) -> a.Alert:
    now = utcnow()
    return a.Alert(
        id="alr_test",
        workspace_id=target.workspace_id,
        agent_id=None,
        key=f"test:{target.id}",
        kind="slo_burn",
        severity="ticket",
        status="firing",
        title=f"Test notification to {target.name}",
        details={"requested_by": principal.key_id, "note": "A test: nothing is wrong."},
        silenced_until=None,
        silenced_by=None,
        opened_at=now,
        resolved_at=None,
        resolved_by=None,
    )


async def send_test(
    platform: Platform, principal: Principal, body: a.AlertTest
) -> a.AlertTestResult:
    """Send a test notification to a target now (`alerts:write`), disabled or not; the answer
    says whether it went through (nothing is stored or retried)."""
    target = await platform.db.run(load_target, platform, principal, body.target_id)
    alert = _test_alert(target, principal)
    async with httpx.AsyncClient() as client:
        try:
            await send(platform, client, target, alert, "test", f"test-{utcnow().timestamp()}")
        except DeliveryFailed as exc:
            return a.AlertTestResult(target_id=target.id, sent=False, error=str(exc))
    return a.AlertTestResult(target_id=target.id, sent=True)


# ---- the sweeper --------------------------------------------------------------------------

_wakeups: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def wake_alert_delivery() -> None:
    """Send now instead of at the next sweep (from any thread)."""
    for loop, event in list(_wakeups):
        loop.call_soon_threadsafe(event.set)


@contextlib.contextmanager
def _wakeup_event() -> Iterator[asyncio.Event]:
    wakeup = (asyncio.get_running_loop(), asyncio.Event())
    _wakeups.add(wakeup)
    try:
        yield wakeup[1]
    finally:
        _wakeups.discard(wakeup)


async def keep_delivering_alerts(platform: Platform) -> None:
    """This process's alert notification sender (runs until cancelled)."""
    async with httpx.AsyncClient() as client:
        with _wakeup_event() as wakeup:
            while True:
                try:
                    await deliver_due(platform, client)
                except Exception:
                    log.warning("the alert notification sweep failed; trying again", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), SWEEP_SECONDS)
                wakeup.clear()
