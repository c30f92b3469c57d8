"""Scaffold: the email channel's listener and poller (filled in by this issue's email work)."""

from __future__ import annotations

from deputy.services.platform import Platform


async def keep_serving_email(platform: Platform) -> None:
    """The built-in SMTP listener (when `DEPUTY_SMTP_LISTEN` is set) and the IMAP pollers of
    every enabled email connection, until cancelled."""
    del platform
