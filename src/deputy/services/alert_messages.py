"""What an alert notification says and how it is sent: a signed JSON POST to a webhook, or an
email (plain text and HTML) through SMTP. No database here.

Webhook: the body is the notification as JSON (`notification_payload`); the headers say what it
is and prove who sent it:

    X-Deputy-Event: alert.opened | alert.resolved | alert.test
    X-Deputy-Delivery: <notification id> (the same on every retry: deduplicate on it)
    X-Deputy-Timestamp: <unix seconds>
    X-Deputy-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A receiver recomputes the signature over the raw body and refuses old timestamps. A 2xx answer
is sent; 408, 429, 5xx and transport errors are retried; any other 4xx is permanent.

Email: one message per address (`[FIRING page] <title>`, `[RESOLVED] <title>`), through
`deputy.channels.email.send.deliver` (its SMTP security, login and error mapping)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx

from deputy.channels.base import DeliveryFailed
from deputy.channels.email.send import deliver
from deputy.domain import alerts as a
from deputy.domain.channels import EmailConfig

WEBHOOK_TIMEOUT_SECONDS = 10.0
RETRIED_CLIENT_ERRORS = frozenset({408, 429})
ERROR_BODY_CHARS = 300


def status_path(agent_id: str | None) -> str | None:
    """Where the console reads the alert's agent (relative to the API's public URL)."""
    return f"/v1/agents/{agent_id}/status" if agent_id else None


def notification_payload(
    alert: a.Alert, event: a.NotificationEvent, notification_id: str, public_url: str | None
) -> dict[str, Any]:
    path = status_path(alert.agent_id)
    return {
        "event": event,
        "notification_id": notification_id,
        "workspace_id": alert.workspace_id,
        "id": alert.id,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "details": alert.details,
        "agent_id": alert.agent_id,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "resolved_by": alert.resolved_by,
        "link": path,
        "url": f"{public_url.rstrip('/')}{path}" if public_url and path else None,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_request(
    payload: Mapping[str, Any], secret: str, now: datetime
) -> tuple[dict[str, str], bytes]:
    """The headers and the exact body of a webhook POST."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Deputy-Alerts",
        "X-Deputy-Event": f"alert.{payload['event']}",
        "X-Deputy-Delivery": str(payload["notification_id"]),
        "X-Deputy-Timestamp": timestamp,
        "X-Deputy-Signature": signature(secret, timestamp, body),
    }
    return headers, body


def permanent_status(status: int) -> bool:
    """A refusal retrying cannot change (4xx but 408 and 429)."""
    return 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS


async def post_webhook(
    client: httpx.AsyncClient, url: str, secret: str | None, payload: Mapping[str, Any]
) -> None:
    if not secret:
        raise DeliveryFailed("the webhook target has no signing secret", permanent=True)
    headers, body = signed_request(payload, secret, datetime.now(UTC))
    try:
        response = await client.post(
            url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"the webhook is unreachable: {type(exc).__name__}") from None
    if 200 <= response.status_code < 300:
        return
    said = response.text[:ERROR_BODY_CHARS].strip()
    raise DeliveryFailed(
        f"the webhook answered {response.status_code}" + (f": {said}" if said else ""),
        permanent=permanent_status(response.status_code),
    )


def subject(alert: a.Alert, event: a.NotificationEvent) -> str:
    if event == "test":
        return f"[TEST] {alert.title}"
    if event == "resolved":
        return f"[RESOLVED] {alert.title}"
    return f"[FIRING {alert.severity}] {alert.title}"


def _lines(alert: a.Alert, event: a.NotificationEvent, url: str | None) -> list[str]:
    lines = [
        subject(alert, event),
        "",
        f"Alert: {alert.id} ({alert.kind}, {alert.severity})",
        f"Key: {alert.key}",
        f"Status: {alert.status}",
        f"Opened: {alert.opened_at.isoformat()}",
    ]
    if alert.resolved_at:
        lines.append(f"Resolved: {alert.resolved_at.isoformat()} by {alert.resolved_by}")
    if alert.agent_id:
        lines.append(f"Agent: {alert.agent_id}")
    if url:
        lines.append(f"Status page: {url}")
    lines += ["", "Details:", json.dumps(alert.details, indent=2, sort_keys=True, default=str)]
    return lines


def compose_email(
    config: a.EmailTargetConfig,
    to: str,
    alert: a.Alert,
    event: a.NotificationEvent,
    url: str | None,
) -> EmailMessage:
    lines = _lines(alert, event, url)
    email = EmailMessage()
    email["From"] = Address(display_name="Deputy alerts", addr_spec=str(config.from_address))
    email["To"] = Address(addr_spec=to)
    email["Subject"] = subject(alert, event)
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=str(config.from_address).rsplit("@", 1)[1])
    email["Auto-Submitted"] = "auto-generated"
    email.set_content("\n".join(lines) + "\n")
    heading, *rest = lines
    body = "<br>\n".join(html.escape(line) for line in rest[:-1])
    details = html.escape(rest[-1])
    email.add_alternative(
        '<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n'
        f"<h2>{html.escape(heading)}</h2>\n<p>{body}</p>\n<pre>{details}</pre>\n"
        "</body></html>\n",
        subtype="html",
    )
    return email


async def send_email(
    config: a.EmailTargetConfig,
    password: str | None,
    alert: a.Alert,
    event: a.NotificationEvent,
    url: str | None,
) -> None:
    """One message per address, each in its own SMTP session (a retry sends to all again)."""
    smtp = EmailConfig(
        address=config.from_address,
        smtp_host=config.smtp_host,
        smtp_port=config.smtp_port,
        smtp_security=config.smtp_security,
        smtp_username=config.smtp_username,
    )
    for to in config.to:
        email = compose_email(config, str(to), alert, event, url)
        await asyncio.to_thread(deliver, smtp, password, email)
